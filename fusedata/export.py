"""The ``export`` stage: selected records -> training-ready files in ``OUT/``.

Formats are TRL's conversational ones, so ``SFTTrainer`` / ``DPOTrainer``,
alignment-handbook and LLaMA-Factory read them without conversion:

* ``OUT/sft/train-*.parquet``: ``messages`` (prompt turns + the chosen
  assistant turn), ``prompt_id``, ``prompt`` (last user text), ``score``,
  ``source_model``, ``category``, ``source``, ``source_dataset``.
* ``OUT/dpo/train-*.parquet``: ``prompt`` (message list without the answer),
  ``chosen`` / ``rejected`` (one assistant message each), ``prompt_id``,
  ``score_chosen``, ``score_rejected``, ``margin``, ``source_model``,
  ``category``, ``source``, ``source_dataset``.

Export is keyed by the selection it writes: a finished export is not redone.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl

from .engine import Dataset, atomic_write_parquet, atomic_write_text, stable_hash

MARKER = ".fusedata-export.json"


def _assistant(col: str) -> pl.Expr:
    return pl.concat_list(pl.struct(role=pl.lit("assistant"), content=pl.col(col)))


def build_tables(sel: dict[str, pl.DataFrame], prompts: pl.DataFrame) -> dict[str, pl.DataFrame]:
    p = prompts.select("prompt_id", "messages", "source_dataset",
                       prompt_text=pl.col("messages").list.last().struct.field("content"))
    out: dict[str, pl.DataFrame] = {}
    sft = sel["sft"].join(p, on="prompt_id", how="left")
    out["sft"] = sft.select(
        "prompt_id", prompt=pl.col("prompt_text"),
        messages=pl.concat_list("messages", _assistant("response")),
        score=pl.col("score"), source_model=pl.col("model"), category=pl.col("category"),
        source=pl.col("source"), source_dataset=pl.col("source_dataset"))
    dpo = sel["dpo"].join(p, on="prompt_id", how="left")
    out["dpo"] = dpo.select(
        "prompt_id", prompt=pl.col("messages"), chosen=_assistant("chosen"),
        rejected=_assistant("rejected"), score_chosen="score_chosen",
        score_rejected="score_rejected", margin="margin", source_model=pl.col("model"),
        category="category", source="source", source_dataset="source_dataset")
    return out


def export(selection: dict[str, Dataset], prompts: Dataset, out_dir: Path,
           rows_per_file: int = 50_000) -> dict[str, list[Path]]:
    """Write the SFT/DPO sets; returns table name -> files.  Idempotent per selection key."""
    key = stable_hash({"selection": {k: v.key for k, v in selection.items()},
                       "rows_per_file": rows_per_file, "version": 1})
    marker = out_dir / MARKER
    names = ("sft", "dpo")
    if marker.exists():
        meta = json.loads(marker.read_text())
        if meta.get("key") == key and all((out_dir / f).exists() for t in names
                                          for f in meta["files"].get(t, [])):
            return {t: [out_dir / f for f in meta["files"][t]] for t in names}
    sel = {k: v.read() for k, v in selection.items()}
    tables = build_tables(sel, prompts.read())
    files: dict[str, list[str]] = {}
    for t in names:
        df = tables[t]
        folder = out_dir / t
        if folder.exists():
            shutil.rmtree(folder)
        n_files = max(1, -(-df.height // rows_per_file))
        files[t] = []
        for i in range(n_files):
            rel = f"{t}/train-{i:05d}-of-{n_files:05d}.parquet"
            atomic_write_parquet(df.slice(i * rows_per_file, rows_per_file), out_dir / rel)
            files[t].append(rel)
    drops = sel.get("drops")
    if drops is not None:
        atomic_write_parquet(drops, out_dir / "drops.parquet")
    atomic_write_text(json.dumps({"key": key, "files": files}, indent=1), marker)
    return {t: [out_dir / f for f in files[t]] for t in names}
