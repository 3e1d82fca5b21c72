"""The ``export`` stage: selected records -> the data files of ``OUT/`` (nothing else).

It writes the record sets and ``drops.parquet`` where :mod:`fusedata.layout` says
(``OUT/data/{sft,dpo,wrpo}/train-*.parquet``; a set without records gets no files)
and the export marker.  The report (:mod:`fusedata.report`) and the dataset card
(:mod:`fusedata.card`) are written after it, by the build, from these files.
``--format llamafactory`` adds ``OUT/dataset_info.json`` and ``OUT/llamafactory/dpo/``.

Columns:

* SFT: ``messages`` (prompt turns + the selected assistant turn), ``prompt_id``,
  ``prompt_text`` (last user text), ``score``, ``source_model``, ``category``,
  ``source``, ``source_dataset``.  No column is named ``prompt``: TRL's
  ``SFTTrainer`` reads a ``prompt`` column as prompt-completion data.
* DPO: ``prompt`` (message list without the answer), ``chosen`` / ``rejected``
  (one assistant message each, as lists), ``prompt_id``, ``score_chosen``,
  ``score_rejected``, ``margin``, ``source_model``, ``category``, ``source``,
  ``source_dataset``.
* WRPO (the shape WRPO's released ``run_wrpo.py`` templates): ``prompt_id``,
  ``prompt`` (the last user message, one ``{role, content}`` struct),
  ``chosen`` = ``[y_ws, y_wt]`` (the best source-model response, the target's
  best), ``rejected`` = ``[y_l]`` (assistant messages), then ``prompt_messages``
  (all prompt turns: WRPO's shape holds one user message, so earlier turns and a
  system prompt live only here; fusedata's trainer reads this column),
  ``score_chosen_source``, ``score_chosen_target``, ``score_rejected``, ``margin``,
  ``source_model``, ``target_model``, ``category``, ``source``, ``source_dataset``.

SFT and DPO are TRL's conversational formats, so ``SFTTrainer`` / ``DPOTrainer``
and alignment-handbook read them as published.  The data files are keyed by
the selection they hold: a finished export is not rewritten (their mtimes stay).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from .engine import Dataset, atomic_write_parquet, atomic_write_text, stable_hash
from .layout import (
    DROPS,
    LLAMAFACTORY_DIR,
    LLAMAFACTORY_INFO,
    LOCAL_PATH,
    MARKER,
    read_marker,
    set_dir,
    set_files,
    shard_name,
)

__all__ = ["build_tables", "export", "normalize_drops", "write_llamafactory",
           "write_parquet"]

FORMATS = ("hf", "llamafactory")
DROP_COLUMNS: dict[str, pl.DataType] = {"prompt_id": pl.String, "category": pl.String,
                                        "source": pl.String, "split": pl.String,
                                        "model": pl.String, "reason": pl.String}


def _message(col: str) -> pl.Expr:
    """One assistant message ``{role: assistant, content: col}``."""
    return pl.struct(role=pl.lit("assistant"), content=pl.col(col))


def _assistant(col: str) -> pl.Expr:
    """A one-message list ``[{role: assistant, content: col}]`` (TRL's completion shape)."""
    return pl.concat_list(_message(col))


def _public_path_expr(col: str) -> pl.Expr:
    c = pl.col(col)
    return (pl.when(c.str.contains(LOCAL_PATH))
            .then(pl.lit("<local>/") + c.str.strip_chars_end("/\\").str.extract(r"([^/\\]+)$"))
            .otherwise(c))


def _join_prompts(table: pl.DataFrame, p: pl.DataFrame, name: str) -> pl.DataFrame:
    """Attach the prompt's messages; a selected record whose prompt is unknown is an error."""
    out = table.join(p, on="prompt_id", how="left")
    missing = out.filter(pl.col("messages").is_null())["prompt_id"]
    if len(missing):
        raise ValueError(f"export: {len(missing)} {name} record(s) reference prompt ids absent "
                         f"from the prompts table, e.g. {missing[0]!r}")
    return out


def build_tables(sel: Mapping[str, pl.DataFrame], prompts: pl.DataFrame
                 ) -> dict[str, pl.DataFrame]:
    """Selection tables (+ prompts) -> the exported record sets, in the agreed column order.

    ``wrpo`` is produced only when the selection has a non-empty ``wrpo`` table (a
    selection without a target model makes none).
    """
    p = prompts.select("prompt_id", "messages",
                       source_dataset=_public_path_expr("source_dataset"))
    out: dict[str, pl.DataFrame] = {}
    sft = _join_prompts(sel["sft"], p, "sft")
    out["sft"] = sft.select(
        messages=pl.concat_list("messages", _assistant("response")),
        prompt_id="prompt_id",
        prompt_text=pl.col("messages").list.last().struct.field("content"),
        score="score", source_model="model", category="category", source="source",
        source_dataset="source_dataset")
    dpo = _join_prompts(sel["dpo"], p, "dpo")
    out["dpo"] = dpo.select(
        prompt="messages", chosen=_assistant("chosen"), rejected=_assistant("rejected"),
        prompt_id="prompt_id", score_chosen="score_chosen", score_rejected="score_rejected",
        margin="margin", source_model="model", category="category", source="source",
        source_dataset="source_dataset")
    w = sel.get("wrpo")
    if w is not None and w.height:
        w = _join_prompts(w, p, "wrpo")
        out["wrpo"] = w.select(
            prompt_id="prompt_id", prompt=pl.col("messages").list.last(),
            chosen=pl.concat_list(_message("chosen_source"), _message("chosen_target")),
            rejected=_assistant("rejected"), prompt_messages="messages",
            score_chosen_source="score_chosen_source",
            score_chosen_target="score_chosen_target", score_rejected="score_rejected",
            margin="margin", source_model="chosen_source_model", target_model="target_model",
            category="category", source="source", source_dataset="source_dataset")
    return out


def normalize_drops(drops: pl.DataFrame, prompts: pl.DataFrame) -> pl.DataFrame:
    """The drops table in the agreed shape; ``source`` is recovered from the prompts if absent."""
    if "source" not in drops.columns:
        drops = drops.join(prompts.select("prompt_id", "source"), on="prompt_id", how="left")
    extra = [c for c in drops.columns if c not in DROP_COLUMNS]
    return drops.with_columns(
        [pl.lit(None, t).alias(c) for c, t in DROP_COLUMNS.items() if c not in drops.columns]
    ).select(*DROP_COLUMNS, *extra)


def write_parquet(df: pl.DataFrame, path: Path) -> None:
    """Atomically write ``df`` as a published file, with plain Arrow types.

    polars records ``large_string`` / ``large_list`` in the file's Arrow schema;
    ``datasets`` then declares the features as ``large_string``, which the Hub viewer
    and older ``datasets`` versions read badly.  Written without the Arrow schema
    (pyarrow's ``store_schema=False``), readers take the Parquet logical types, i.e.
    plain ``string`` / ``list``, and the card's ``dataset_info`` stays conventional.
    """
    atomic_write_parquet(df, path, use_pyarrow=True, pyarrow_options={"store_schema": False})


def _write_table(df: pl.DataFrame, out_dir: Path, name: str, rows_per_file: int) -> list[str]:
    folder = set_dir(out_dir, name)
    if folder.exists():
        shutil.rmtree(folder)
    n_files = max(1, -(-df.height // rows_per_file))
    rels = []
    for i in range(n_files):
        rel = shard_name(name, i, n_files)
        write_parquet(df.slice(i * rows_per_file, rows_per_file), out_dir / rel)
        rels.append(rel)
    return rels


def _remove_stale(out_dir: Path, old: Iterable[str], keep: set[str]) -> None:
    """Delete files a previous export wrote that this one does not (e.g. a WRPO set
    that is now empty), then their empty folders."""
    for rel in old:
        if rel in keep:
            continue
        path = out_dir / rel
        path.unlink(missing_ok=True)
        for parent in path.parents:
            if parent == out_dir or not parent.is_relative_to(out_dir):
                break
            try:
                parent.rmdir()
            except OSError:
                break


def export(selection: Mapping[str, Dataset], prompts: Dataset, out_dir: Path,
           rows_per_file: int = 50_000, formats: Iterable[str] = ()) -> dict[str, list[Path]]:
    """Write the record sets, drops and the marker; returns table name -> files.

    ``formats`` may add ``"llamafactory"`` (see :func:`write_llamafactory`).  The card
    and the report are not written here: the build writes them once, after this.
    """
    key = stable_hash({"selection": {k: v.key for k, v in selection.items()},
                       "rows_per_file": rows_per_file, "version": 3})
    meta = read_marker(out_dir)
    files: dict[str, list[str]]
    if meta.get("key") == key and all((out_dir / f).exists()
                                      for fs in meta["files"].values() for f in fs):
        files = meta["files"]
    else:
        sel = {k: v.read() for k, v in selection.items()}
        p = prompts.read()
        tables = build_tables(sel, p)
        # an empty set gets no files and no config: `datasets` cannot load a split without
        # rows (and the Hub viewer shows an error); the card lists it as empty instead
        files = {t: _write_table(df, out_dir, t, rows_per_file) for t, df in tables.items()
                 if df.height}
        empty = [t for t, df in tables.items() if not df.height]
        drops = sel.get("drops")
        if drops is not None:
            write_parquet(normalize_drops(drops, p), out_dir / DROPS)
        new = {f for fs in files.values() for f in fs}
        _remove_stale(out_dir, (f for fs in meta.get("files", {}).values() for f in fs), new)
        sources = (p.select("source", source_dataset=_public_path_expr("source_dataset"))
                   .unique().sort("source").rows())
        for t in empty:
            shutil.rmtree(set_dir(out_dir, t), ignore_errors=True)
        atomic_write_text(json.dumps({"key": key, "files": files, "empty": empty,
                                      "sources": dict(sources)}, indent=1), out_dir / MARKER)
    if "llamafactory" in formats:
        write_llamafactory(out_dir)
    return {t: [out_dir / f for f in fs] for t, fs in files.items()}


# ----------------------------------------------------------------------- LLaMA-Factory

_LF_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user",
            "assistant_tag": "assistant", "system_tag": "system"}


def write_llamafactory(out_dir: Path, prefix: str | None = None) -> Path:
    """Write ``OUT/dataset_info.json`` so LLaMA-Factory trains on ``OUT`` directly.

    SFT is read in place (``sharegpt`` formatting over ``messages``).  LLaMA-Factory's
    pairwise format wants ``chosen`` / ``rejected`` as single message *dicts*, not the
    one-message lists TRL uses, so the DPO set is also written (by polars, one pass) to
    ``OUT/llamafactory/dpo/`` in that shape.  WRPO has no LLaMA-Factory trainer and is
    not registered.  Entries are named ``{prefix}_sft`` / ``{prefix}_dpo`` (prefix: the
    folder name).
    """
    prefix = prefix or out_dir.resolve().name
    info: dict[str, Any] = {}
    if set_files(out_dir, "sft"):
        info[f"{prefix}_sft"] = {"file_name": set_dir(out_dir, "sft").relative_to(out_dir).as_posix(), "formatting": "sharegpt",
                                 "columns": {"messages": "messages"}, "tags": _LF_TAGS}
    dpo_files = set_files(out_dir, "dpo")
    lf_dir = out_dir / LLAMAFACTORY_DIR / "dpo"
    if lf_dir.exists():
        shutil.rmtree(lf_dir)
    if dpo_files:
        df = pl.read_parquet(dpo_files).select(
            "prompt", chosen=pl.col("chosen").list.first(),
            rejected=pl.col("rejected").list.first(), prompt_id="prompt_id")
        write_parquet(df, lf_dir / "train-00000-of-00001.parquet")
        info[f"{prefix}_dpo"] = {
            "file_name": f"{LLAMAFACTORY_DIR}/dpo", "formatting": "sharegpt", "ranking": True,
            "columns": {"messages": "prompt", "chosen": "chosen", "rejected": "rejected"},
            "tags": _LF_TAGS}
    path = out_dir / LLAMAFACTORY_INFO
    atomic_write_text(json.dumps(info, indent=2) + "\n", path)
    return path
