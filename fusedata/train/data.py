"""Locate and load the exported SFT / DPO / WRPO sets of a build output folder.

Two layouts exist: the publish layout ``OUT/data/NAME/*.parquet`` and the
foundation's ``OUT/NAME/*.parquet``; the first found wins.  Only the columns
a trainer consumes are kept: SFT's export also has a plain-text ``prompt``
column, and TRL's ``SFTTrainer`` would mistake a row holding both ``prompt``
and ``messages`` for a prompt-completion example.
"""

from __future__ import annotations

from pathlib import Path

#: Columns each trainer reads, per set.
COLUMNS: dict[str, tuple[str, ...]] = {
    "sft": ("messages",),
    "dpo": ("prompt", "chosen", "rejected"),
    "wrpo": ("prompt", "chosen_source", "chosen_target", "rejected"),
}


class TrainDataError(ValueError):
    """A set is missing, empty or lacks a column; the message names the folder/file."""


def find_set(out: str | Path, name: str) -> list[Path]:
    """Parquet files of set ``name`` under ``out`` (``data/NAME/`` first, else ``NAME/``)."""
    if name not in COLUMNS:
        raise TrainDataError(f"unknown set {name!r}; expected one of {', '.join(COLUMNS)}")
    root = Path(out)
    if not root.is_dir():
        raise TrainDataError(f"{root}: output folder not found")
    for pattern in (f"data/{name}/*.parquet", f"{name}/*.parquet"):
        files = sorted(root.glob(pattern))
        if files:
            return files
    raise TrainDataError(f"{root}: no {name} set (looked for data/{name}/*.parquet and "
                         f"{name}/*.parquet); was it built and exported?")


def load_set(out: str | Path, name: str, files: list[Path] | None = None):
    """The set as an in-memory ``datasets.Dataset`` holding only the trainer's columns."""
    import datasets
    import polars as pl

    files = files if files is not None else find_set(out, name)
    frames = []
    for f in files:
        schema = pl.read_parquet_schema(f)
        missing = [c for c in COLUMNS[name] if c not in schema]
        if missing:
            raise TrainDataError(f"{f}: {name} file lacks column(s) {', '.join(missing)} "
                                 f"(has {', '.join(schema)})")
        frames.append(pl.read_parquet(f, columns=list(COLUMNS[name])))
    df = pl.concat(frames, how="vertical_relaxed")
    if df.height == 0:
        raise TrainDataError(f"{files[0].parent}: the {name} set is empty; nothing to train on")
    return datasets.Dataset.from_polars(df)
