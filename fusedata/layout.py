"""Where every published file of a build output folder ``OUT/`` lives.

This is the only module that knows the layout; ``export`` writes it, ``report``,
``card``, ``publish``, ``train`` and ``fusedata inspect`` read it through here::

    OUT/README.md                         dataset card (:mod:`fusedata.card`)
    OUT/data/{sft,dpo,wrpo}/train-*.parquet  the record sets (:mod:`fusedata.export`)
    OUT/drops.parquet                     every prompt without a record, with the reason
    OUT/report.json, report.md, report/   the composition report (:mod:`fusedata.report`)
    OUT/view.html                         the record viewer (:mod:`fusedata.view`)
    OUT/.fusedata-view-drops.parquet      dropped prompts' text and responses, for the viewer
    OUT/.fusedata-view-verdicts.parquet   verdicts of the records' math/code responses, ditto
    OUT/dataset_info.json, llamafactory/  LLaMA-Factory files (``--format llamafactory``)
    OUT/.fusedata-export.json             export marker: data files, empty sets, sources
    OUT/recipe.json                       the recipe (local paths; never published)

There is one layout: the Hub's ``data/NAME/`` (``datasets.load_dataset(OUT, NAME)``
reads it through the card's configs).  The pre-Hub ``OUT/NAME/`` layout is not read.

It also holds :func:`public_path`, the one rule by which published files name local
paths, because export (``source_dataset``), report and card all apply it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

#: exported record sets, in the order configs appear in the card
TABLES = ("sft", "dpo", "wrpo")
#: the export marker: which data files the export wrote, empty sets, source datasets
MARKER = ".fusedata-export.json"
#: folder of the record sets (``DATA_DIR/NAME/``), the Hub's convention
DATA_DIR = "data"
CARD = "README.md"
DROPS = "drops.parquet"
REPORT_JSON = "report.json"
REPORT_MD = "report.md"
#: folder of the report's PNG plots
PLOT_DIR = "report"
#: the self-contained record viewer page
VIEW_HTML = "view.html"
#: what the viewer shows of dropped prompts beyond drops.parquet (prompt text, each
#: response's score and verdict); written by the build, local only (never published)
VIEW_DROPS = ".fusedata-view-drops.parquet"
#: verdict and detail of every math/code response in a record, keyed by prompt id and a
#: hash of the text (the record sets carry no verdicts); written by the build, local only
VIEW_VERDICTS = ".fusedata-view-verdicts.parquet"
RECIPE_JSON = "recipe.json"
LLAMAFACTORY_INFO = "dataset_info.json"
LLAMAFACTORY_DIR = "llamafactory"


def set_dir(out: Path, name: str) -> Path:
    """The folder holding set ``name``'s parquet files."""
    return Path(out) / DATA_DIR / name


def set_glob(name: str) -> str:
    """The card's ``data_files`` pattern of set ``name`` (relative to OUT)."""
    return f"{DATA_DIR}/{name}/train-*"


def shard_name(name: str, i: int, n: int) -> str:
    """Relative path of shard ``i`` of ``n`` of set ``name`` (the Hub's naming)."""
    return f"{DATA_DIR}/{name}/train-{i:05d}-of-{n:05d}.parquet"


def set_files(out: Path, name: str) -> list[Path]:
    """The parquet files of one exported set, sorted (empty when the set was not written)."""
    return sorted(set_dir(out, name).glob("*.parquet"))


def exported_sets(out: Path) -> dict[str, list[Path]]:
    """Set name -> files, for every set that has files, in :data:`TABLES` order."""
    return {t: fs for t in TABLES if (fs := set_files(out, t))}


def read_marker(out: Path) -> dict[str, Any]:
    """The export marker's content (``{}`` when OUT was never exported)."""
    p = Path(out) / MARKER
    return json.loads(p.read_text()) if p.exists() else {}


LOCAL_PATH = r"^(/|~|\.\.|[A-Za-z]:[\\/])"


def public_path(s: str) -> str:
    """A local filesystem path shortened to ``<local>/NAME`` (published files must not
    reveal home folders or user names); Hub ids and relative paths are kept."""
    if re.match(LOCAL_PATH, s):
        name = re.split(r"[\\/]", s.rstrip("/\\"))[-1]
        return f"<local>/{name}"
    return s
