"""The ``export`` stage: selected records -> a Hugging Face dataset repository in ``OUT/``.

``OUT/`` is laid out so that ``datasets.load_dataset(OUT, "sft")`` works
locally and ``fusedata push OUT --repo ORG/NAME`` publishes it as is::

    OUT/README.md                         dataset card (configs, features, composition)
    OUT/data/sft/train-*.parquet          TRL conversational SFT
    OUT/data/dpo/train-*.parquet          TRL conversational preference (explicit prompt)
    OUT/data/wrpo/train-*.parquet         WRPO triplets (only when selection made any)
                                          (a set without records gets no files)
    OUT/drops.parquet                     every prompt without a record, with the reason
    OUT/dataset_info.json                 LLaMA-Factory registry (``--format llamafactory``)
    OUT/llamafactory/{dpo}/...            LLaMA-Factory's pairwise shape (same option)

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
the selection they hold: a finished export is not rewritten (their mtimes stay),
while the card is re-rendered whenever its inputs (recipe, report) changed.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from .engine import Dataset, atomic_write_text, stable_hash

MARKER = ".fusedata-export.json"
#: exported record sets, in the order configs appear in the card
TABLES = ("sft", "dpo", "wrpo")
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


_LOCAL_PATH = r"^(/|~|\.\.|[A-Za-z]:[\\/])"


def public_path(s: str) -> str:
    """A local filesystem path shortened to ``<local>/NAME`` (published files must not
    reveal home folders or user names); Hub ids and relative paths are kept."""
    if re.match(_LOCAL_PATH, s):
        name = re.split(r"[\\/]", s.rstrip("/\\"))[-1]
        return f"<local>/{name}"
    return s


def _public_path_expr(col: str) -> pl.Expr:
    c = pl.col(col)
    return (pl.when(c.str.contains(_LOCAL_PATH))
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


def table_files(out_dir: Path, name: str) -> list[Path]:
    """The parquet files of one exported set: ``data/NAME/`` first, else the legacy ``NAME/``."""
    files = sorted((out_dir / "data" / name).glob("*.parquet"))
    return files or sorted((out_dir / name).glob("*.parquet"))


def _plain_type(tp: Any) -> Any:
    import pyarrow as pa

    if pa.types.is_large_string(tp) or pa.types.is_string_view(tp):
        return pa.string()
    if pa.types.is_large_list(tp) or pa.types.is_list_view(tp) or pa.types.is_list(tp):
        return pa.list_(_plain_type(tp.value_type))
    if pa.types.is_struct(tp):
        return pa.struct([pa.field(f.name, _plain_type(f.type), f.nullable) for f in tp])
    return tp


def write_parquet(df: pl.DataFrame, path: Path) -> None:
    """Atomically write ``df`` with plain Arrow types (``string``, ``list``).

    polars writes ``large_string`` / ``large_list``; ``datasets`` then declares the
    features as ``large_string``, which the Hub viewer and older ``datasets`` versions
    read badly.  Plain types keep the card's ``dataset_info`` conventional.  A column
    too large for 32-bit offsets (> 2 GiB in one file) keeps the large type.
    """
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = df.to_arrow()
    schema = pa.schema([pa.field(f.name, _plain_type(f.type), f.nullable)
                        for f in table.schema])
    try:
        table = table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowCapacityError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd")
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_table(df: pl.DataFrame, out_dir: Path, name: str, rows_per_file: int) -> list[str]:
    folder = out_dir / "data" / name
    if folder.exists():
        shutil.rmtree(folder)
    n_files = max(1, -(-df.height // rows_per_file))
    rels = []
    for i in range(n_files):
        rel = f"data/{name}/train-{i:05d}-of-{n_files:05d}.parquet"
        write_parquet(df.slice(i * rows_per_file, rows_per_file), out_dir / rel)
        rels.append(rel)
    return rels


def _remove_stale(out_dir: Path, old: Iterable[str], keep: set[str]) -> None:
    """Delete files a previous export wrote that this one does not (e.g. the legacy
    ``OUT/sft/`` layout, or a WRPO set that is now empty), then their empty folders."""
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
           rows_per_file: int = 50_000, recipe: Any = None,
           formats: Iterable[str] = ()) -> dict[str, list[Path]]:
    """Write the record sets, drops and the dataset card; returns table name -> files.

    ``recipe`` (a :class:`fusedata.recipe.Recipe` or its JSON dict) is embedded in the
    card; ``formats`` may add ``"llamafactory"`` (see :func:`write_llamafactory`).
    """
    key = stable_hash({"selection": {k: v.key for k, v in selection.items()},
                       "rows_per_file": rows_per_file, "version": 3})
    marker = out_dir / MARKER
    meta: dict[str, Any] = json.loads(marker.read_text()) if marker.exists() else {}
    files: dict[str, list[str]] | None = None
    cached = False
    if meta.get("key") == key and all((out_dir / f).exists()
                                      for fs in meta["files"].values() for f in fs):
        files = meta["files"]
        cached = True
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
            write_parquet(normalize_drops(drops, p), out_dir / "drops.parquet")
        new = {f for fs in files.values() for f in fs}
        _remove_stale(out_dir, (f for fs in meta.get("files", {}).values() for f in fs), new)
        sources = (p.select("source", source_dataset=_public_path_expr("source_dataset"))
                   .unique().sort("source").rows())
        for t in empty:
            shutil.rmtree(out_dir / "data" / t, ignore_errors=True)
        atomic_write_text(json.dumps({"key": key, "files": files, "empty": empty,
                                      "sources": dict(sources)}, indent=1), marker)
    from .card import write_card

    if "llamafactory" in formats:
        write_llamafactory(out_dir)
    if not cached or formats or not (out_dir / "README.md").exists():
        # last: it mentions dataset_info.json when present.  A cached export keeps its
        # card (the build re-renders it only when the report or the recipe changed).
        write_card(out_dir, recipe=recipe)
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
    if table_files(out_dir, "sft"):
        info[f"{prefix}_sft"] = {"file_name": "data/sft", "formatting": "sharegpt",
                                 "columns": {"messages": "messages"}, "tags": _LF_TAGS}
    dpo_files = table_files(out_dir, "dpo")
    lf_dir = out_dir / "llamafactory" / "dpo"
    if lf_dir.exists():
        shutil.rmtree(lf_dir)
    if dpo_files:
        df = pl.read_parquet(dpo_files).select(
            "prompt", chosen=pl.col("chosen").list.first(),
            rejected=pl.col("rejected").list.first(), prompt_id="prompt_id")
        write_parquet(df, lf_dir / "train-00000-of-00001.parquet")
        info[f"{prefix}_dpo"] = {
            "file_name": "llamafactory/dpo", "formatting": "sharegpt", "ranking": True,
            "columns": {"messages": "prompt", "chosen": "chosen", "rejected": "rejected"},
            "tags": _LF_TAGS}
    path = out_dir / "dataset_info.json"
    atomic_write_text(json.dumps(info, indent=2) + "\n", path)
    return path


# ----------------------------------------------------------------------- re-export a folder


def relayout(out_dir: Path) -> list[str]:
    """Move a pre-Hub export (``OUT/sft/``, ``OUT/dpo/``) into ``OUT/data/``; returns the
    tables moved.  Files are rewritten with plain Arrow types and the old ones removed."""
    moved = []
    files: dict[str, list[str]] = {}
    sources: dict[str, str] = {}
    for t in TABLES:
        new = sorted((out_dir / "data" / t).glob("*.parquet"))
        old = sorted((out_dir / t).glob("train-*.parquet"))
        if old and not new:
            df = pl.read_parquet(old)
            files[t] = _write_table(df, out_dir, t, max(1, -(-df.height // len(old))))
            for f in old:
                f.unlink()
            try:
                (out_dir / t).rmdir()
            except OSError:
                pass
            moved.append(t)
        else:
            files[t] = [f.relative_to(out_dir).as_posix() for f in new]
        for f in table_files(out_dir, t):
            sources.update(pl.read_parquet(f, columns=["source", "source_dataset"]).unique().rows())
    marker = out_dir / MARKER
    if moved or not marker.exists():
        atomic_write_text(json.dumps({"key": None, "files": {t: f for t, f in files.items() if f},
                                      "sources": dict(sorted(sources.items()))}, indent=1),
                          marker)
    return moved


def export_folder(out_dir: Path, formats: Iterable[str] = ("hf",)) -> None:
    """Bring a built ``OUT`` up to date without rebuilding: Hub layout, card, extra formats."""
    from .card import write_card

    if not any(table_files(out_dir, t) for t in TABLES):
        raise ValueError(f"{out_dir}: no sft/dpo/wrpo parquet files (data/NAME/ or NAME/)")
    relayout(out_dir)
    if "llamafactory" in formats:
        write_llamafactory(out_dir)
    write_card(out_dir)


def _export_cli() -> Any:
    import click

    @click.command("export")
    @click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
    @click.option("--format", "formats", type=click.Choice(FORMATS), multiple=True,
                  default=("hf",), show_default=True,
                  help="hf: the Hub dataset layout and card (always); llamafactory: also "
                       "dataset_info.json (+ DPO in LLaMA-Factory's pairwise shape).")
    def export_cmd(out: Path, formats: tuple[str, ...]) -> None:
        """Refresh a built OUT folder for publishing, without rebuilding.

        Moves an old-layout export (OUT/sft, OUT/dpo) to OUT/data/, re-renders the
        dataset card OUT/README.md (it picks up OUT/report.json from `fusedata report`)
        and, with --format llamafactory, writes OUT/dataset_info.json.
        """
        try:
            export_folder(out, formats)
        except ValueError as e:
            raise click.ClickException(str(e)) from None
        click.echo(f"{out}: card {out / 'README.md'}"
                   + (f", LLaMA-Factory {out / 'dataset_info.json'}"
                      if "llamafactory" in formats else ""))

    return export_cmd


export_command = _export_cli()
