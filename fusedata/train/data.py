"""Locate and load the exported SFT / DPO / WRPO sets of a build output folder.

The files are found through :mod:`fusedata.layout` (``OUT/data/NAME/*.parquet``).
Only the columns a trainer consumes are kept.

The WRPO set is published in WRPO's own shape (``prompt`` one user message,
``chosen`` = [y_ws, y_wt], ``rejected`` = [y_l], plus ``prompt_messages`` with all
prompt turns); :func:`load_set` turns it into the columns
:class:`fusedata.train.wrpo.WRPOTrainer` tokenises (``prompt`` message list,
``chosen_source``, ``chosen_target``, ``rejected`` one-message lists).  Files
written by WRPO's pipeline (no ``prompt_messages``) and fusedata's earlier
``chosen_source`` / ``chosen_target`` files load too.
"""

from __future__ import annotations

from pathlib import Path

from ..layout import set_dir, set_files

#: Columns each trainer reads, per set.
COLUMNS: dict[str, tuple[str, ...]] = {
    "sft": ("messages",),
    "dpo": ("prompt", "chosen", "rejected"),
    "wrpo": ("prompt", "chosen", "rejected"),
}
#: the trainer-side WRPO columns, and the columns of fusedata's earlier WRPO files
WRPO_TRAIN = ("prompt", "chosen_source", "chosen_target", "rejected")


class TrainDataError(ValueError):
    """A set is missing, empty or lacks a column; the message names the folder/file."""


def find_set(out: str | Path, name: str) -> list[Path]:
    """Parquet files of set ``name`` under ``out``."""
    if name not in COLUMNS:
        raise TrainDataError(f"unknown set {name!r}; expected one of {', '.join(COLUMNS)}")
    root = Path(out)
    if not root.is_dir():
        raise TrainDataError(f"{root}: output folder not found")
    files = set_files(root, name)
    if files:
        return files
    raise TrainDataError(f"{root}: no {name} set (looked for "
                         f"{set_dir(root, name).relative_to(root)}/*.parquet); was it built "
                         "and exported?")


def load_set(out: str | Path, name: str, files: list[Path] | None = None):
    """The set as an in-memory ``datasets.Dataset`` holding only the trainer's columns."""
    import datasets
    import polars as pl

    files = files if files is not None else find_set(out, name)
    frames = []
    for f in files:
        schema = pl.read_parquet_schema(f)
        if name == "wrpo" and all(c in schema for c in WRPO_TRAIN):
            frames.append(pl.read_parquet(f, columns=list(WRPO_TRAIN)))  # earlier layout
            continue
        missing = [c for c in COLUMNS[name] if c not in schema]
        if missing:
            raise TrainDataError(f"{f}: {name} file lacks column(s) {', '.join(missing)} "
                                 f"(has {', '.join(schema)})")
        cols = list(COLUMNS[name]) + (["prompt_messages"] if name == "wrpo"
                                      and "prompt_messages" in schema else [])
        df = pl.read_parquet(f, columns=cols)
        frames.append(_wrpo_for_training(df, f) if name == "wrpo" else df)
    df = pl.concat(frames, how="vertical_relaxed")
    if df.height == 0:
        raise TrainDataError(f"{files[0].parent}: the {name} set is empty; nothing to train on")
    return datasets.Dataset.from_polars(df)


def _wrpo_for_training(df, path: Path):
    """WRPO's published shape -> the trainer's (prompt list, y_ws, y_wt, y_l one-message lists)."""
    import polars as pl

    bad = df.with_row_index("row").filter(
        (pl.col("chosen").list.len() != 2) | (pl.col("rejected").list.len() < 1))
    if bad.height:
        raise TrainDataError(f"{path}: row {bad['row'][0]}: a WRPO record needs chosen = "
                             "[y_ws, y_wt] (2 messages) and rejected = [y_l] (>= 1 message)")
    if "prompt_messages" in df.columns:
        prompt = pl.col("prompt_messages")
    elif isinstance(df.schema["prompt"], pl.List):
        prompt = pl.col("prompt")
    else:  # WRPO's shape: one user message
        prompt = pl.concat_list(pl.col("prompt"))
    return df.select(prompt=prompt, chosen_source=pl.col("chosen").list.slice(0, 1),
                     chosen_target=pl.col("chosen").list.slice(1, 1),
                     rejected=pl.col("rejected").list.slice(0, 1))
