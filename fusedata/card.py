"""The dataset card (``OUT/README.md``) of an exported build.

The card is what makes ``OUT/`` a Hugging Face dataset repository: its YAML front
matter declares one config per record set (``sft``, ``dpo``, ``wrpo``) with its
``data_files`` and ``dataset_info`` features, so ``datasets.load_dataset(OUT, "dpo")``
(locally or from the Hub) returns exactly the exported records, and the Hub shows
license, task tags and ``source_datasets``.  The body says what a reader needs
before training on it: how many records came from which source (the composition
table, from ``OUT/report.json`` when ``fusedata report`` wrote one, else computed
from the exported tables and ``OUT/drops.parquet``), the recipe that built it,
the source/target and reward models, and how to load it.

Everything is derived from files in ``OUT/`` (plus the recipe), so re-rendering is
cheap and deterministic: the same inputs give a byte-identical card.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from .engine import atomic_write_text
from .export import MARKER, TABLES, table_files
from .export import public_path as _public_path

#: composition columns, in display order
COMPOSITION_COLUMNS = ("source", "source_dataset", "category", "prompts", "sft", "dpo", "wrpo",
                       "dropped")
_DESCRIPTIONS = {
    "sft": "TRL conversational SFT: `messages` = prompt turns + the best-scoring eligible "
           "response across source models.",
    "dpo": "TRL conversational preference data (explicit prompt): `prompt` message list, "
           "`chosen` / `rejected` one assistant message each, from the same source model, "
           "reward margin inside the recipe's window.",
    "wrpo": "WRPO triplets in WRPO's record shape: `prompt` (the user message), `chosen` = "
            "[y_ws: best source-model response, y_wt: the target model's best], `rejected` = "
            "[y_l: the target model's lowest-scored response]; `prompt_messages` holds every "
            "prompt turn.",
}


def _hub_like(s: str) -> bool:
    """True for strings shaped like a Hub dataset id (``org/name``), not a local path."""
    return bool(re.fullmatch(r"[A-Za-z0-9][\w.\-]*/[\w.\-]+", s)) and not Path(s).suffix


def _sanitize(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _sanitize(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_sanitize(v) for v in obj]
    if isinstance(obj, str):
        return _public_path(obj)
    return obj


def _recipe_dict(out: Path, recipe: Any) -> dict[str, Any] | None:
    if recipe is None:
        p = out / "recipe.json"
        return json.loads(p.read_text()) if p.exists() else None
    if hasattr(recipe, "model_dump"):
        return recipe.model_dump(mode="json")
    return dict(recipe)


def _source_datasets(out: Path) -> dict[str, str]:
    m = out / MARKER
    if m.exists():
        return dict(json.loads(m.read_text()).get("sources", {}))
    return {}


def composition(out: Path) -> pl.DataFrame:
    """Per prompt source and category: prompts, SFT/DPO/WRPO records and dropped prompts.

    Every prompt is in exactly one of ``sft``, ``dpo`` or ``drops`` (split sft/dpo), so
    ``prompts`` counts the distinct ids over those three; WRPO triplets are built on
    DPO-split prompts and are counted separately.  Ends with a ``total`` row.
    """
    parts = []
    for t in TABLES:
        files = table_files(out, t)
        if files:
            parts.append(pl.scan_parquet(files).select("source", "category", "prompt_id",
                                                       kind=pl.lit(t)))
    drops = out / "drops.parquet"
    if drops.exists():
        d = pl.scan_parquet(drops)
        names = d.collect_schema().names()
        if "split" in names:
            d = d.filter(pl.col("split").is_in(["sft", "dpo"]))
        src = pl.col("source") if "source" in names else pl.lit(None, pl.String)
        parts.append(d.select(source=src, category="category", prompt_id="prompt_id",
                              kind=pl.lit("dropped")))
    if not parts:
        return pl.DataFrame(schema=dict.fromkeys(COMPOSITION_COLUMNS, pl.String))
    long = pl.concat(parts, how="vertical_relaxed").with_columns(
        pl.col("source").fill_null("(unknown)"))
    counted = pl.col("kind").is_in(["sft", "dpo", "dropped"])
    agg = [pl.col("prompt_id").filter(counted).n_unique().alias("prompts"),
           *[(pl.col("kind") == k).sum().alias(k) for k in ("sft", "dpo", "wrpo")],
           pl.col("prompt_id").filter(pl.col("kind") == "dropped").n_unique().alias("dropped")]
    rows = long.group_by("source", "category").agg(agg).sort("source", "category").collect()
    total = long.select(agg).collect().with_columns(source=pl.lit("total"),
                                                    category=pl.lit(""))
    table = pl.concat([rows, total.select(rows.columns)], how="vertical_relaxed")
    sources = _source_datasets(out)
    table = table.with_columns(source_dataset=pl.col("source").replace_strict(
        {k: (v if _hub_like(v) else "local file") for k, v in sources.items()},
        default=pl.lit(""), return_dtype=pl.String))
    return table.select(COMPOSITION_COLUMNS)


def _report_table(out: Path) -> tuple[list[str], list[list[Any]]] | None:
    """The composition table from ``OUT/report.json`` (written by ``fusedata report``).

    Accepted shapes: a top-level list of row dicts, or a dict holding one under
    ``composition`` / ``by_source`` / ``sources`` / ``table`` (with an optional
    ``totals`` dict, rendered as a last ``total`` row): what ``fusedata report`` writes.
    """
    p = out / "report.json"
    if not p.exists():
        return None
    rep = json.loads(p.read_text())
    rows = rep
    if isinstance(rep, dict):
        rows = next((rep[k] for k in ("composition", "by_source", "sources", "table")
                     if isinstance(rep.get(k), list)), None)
    if not rows or not all(isinstance(r, dict) for r in rows):
        return None
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    totals = rep.get("totals") if isinstance(rep, dict) else None
    if isinstance(totals, dict):
        rows = [*rows, {cols[0]: "total", **{c: v for c, v in totals.items() if c in cols}}]
    return cols, [[r.get(c, "") for c in cols] for r in rows]


def _md_table(cols: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            v = f"{v:.4g}"
        return str(v if v is not None else "").replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(" --- " for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def _features(files: list[Path]) -> list[dict[str, Any]]:
    import datasets
    import pyarrow.parquet as pq

    return datasets.Features.from_arrow_schema(pq.read_schema(files[0]))._to_yaml_list()


def _size_category(n: int) -> str:
    for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < bound:
            return label
    return "10M<n<100M"


def _sizes(files: list[Path]) -> tuple[int, int]:
    """(rows, uncompressed bytes) from the parquet footers alone (no data read)."""
    import pyarrow.parquet as pq

    rows = nbytes = 0
    for f in files:
        md = pq.ParquetFile(f).metadata
        rows += md.num_rows
        nbytes += sum(md.row_group(i).total_byte_size for i in range(md.num_row_groups))
    return rows, nbytes


def front_matter(out: Path, recipe: dict[str, Any] | None) -> dict[str, Any]:
    """The card's YAML metadata: configs, features, license, tags, source datasets."""
    card = (recipe or {}).get("card") or {}
    configs, infos, total = [], [], 0
    for t in TABLES:
        files = table_files(out, t)
        if not files:
            continue
        folder = files[0].parent.relative_to(out).as_posix()
        n, nbytes = _sizes(files)
        total += n
        configs.append({"config_name": t,
                        "data_files": [{"split": "train", "path": f"{folder}/train-*"}]})
        infos.append({"config_name": t, "features": _features(files),
                      "splits": [{"name": "train", "num_bytes": nbytes, "num_examples": n}],
                      "download_size": sum(f.stat().st_size for f in files),
                      "dataset_size": nbytes})
    configs[0:1] = [{**configs[0], "default": True}] if configs else []
    srcs = sorted({v for v in _source_datasets(out).values() if _hub_like(v)})
    tags = ["fusedata", "synthetic", "sft", "dpo", "preference"]
    tags += ["wrpo"] if any(c["config_name"] == "wrpo" for c in configs) else []
    meta: dict[str, Any] = {
        "license": card.get("license", "other"),
        "task_categories": ["text-generation"],
        "tags": tags + [t for t in card.get("tags", []) if t not in tags],
        "size_categories": [_size_category(total)],
    }
    if card.get("language"):
        meta["language"] = list(card["language"])
    if card.get("pretty_name") or (recipe or {}).get("name"):
        meta["pretty_name"] = card.get("pretty_name") or recipe["name"]  # type: ignore[index]
    if srcs:
        meta["source_datasets"] = srcs
    meta["configs"] = configs
    meta["dataset_info"] = infos
    return meta


def _models_section(out: Path, recipe: dict[str, Any] | None) -> str:
    used: dict[str, int] = {}
    for t in TABLES:
        files = table_files(out, t)
        if files:
            c = pl.scan_parquet(files).group_by("source_model").len().collect()
            for m, n in c.iter_rows():
                used[m] = used.get(m, 0) + n
    lines = ["| model | role | backend | path | records |", "| --- | --- | --- | --- | --- |"]
    for m in (recipe or {}).get("models", []):
        lines.append(f"| {m.get('name', '?')} | {m.get('role', 'source')} | {m.get('backend', '')} | "
                     f"{_public_path(str(m.get('path', '')))} | {used.get(m.get('name'), 0)} |")
    if not (recipe or {}).get("models"):
        lines += [f"| {m} |  |  |  | {n} |" for m, n in sorted(used.items())]
    rm = (recipe or {}).get("reward_model")
    rm_line = (f"Reward model: `{_public_path(str(rm['path']))}` (output `{rm.get('output')}`, "
               f"max_length {rm.get('max_length')})." if rm else "Reward model: not recorded.")
    return "\n".join(lines) + "\n\n" + rm_line


def render_card(out: Path, recipe: Any = None) -> str:
    """The full ``README.md`` text for the exported folder ``out``."""
    out = Path(out)
    rec = _recipe_dict(out, recipe)
    meta = front_matter(out, rec)
    name = meta.get("pretty_name", out.resolve().name)
    parts = ["---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(), "---",
             "", f"# {name}", ""]
    desc = (rec or {}).get("description")
    parts += [desc, ""] if desc else []
    parts += ["SFT and preference data built with `fusedata` in the style "
              "of FuseChat-3.0: responses sampled from several source LLMs, scored by a reward "
              "model, math answers checked against gold labels and code run against tests, then "
              "selected into SFT records and same-model chosen/rejected pairs.", ""]
    if rec and rec.get("demo"):
        parts += ["> **Demo build**: the models are random-weight stand-ins; the text is "
                  "gibberish.  Use it to test pipelines, not to train.", ""]
    parts += ["## Subsets", ""]
    for c in meta["configs"]:
        n = next(i["splits"][0]["num_examples"] for i in meta["dataset_info"]
                 if i["config_name"] == c["config_name"])
        parts.append(f"* `{c['config_name']}` ({n} records, `{c['data_files'][0]['path']}`): "
                     f"{_DESCRIPTIONS[c['config_name']]}")
    marker = out / MARKER
    empty = json.loads(marker.read_text()).get("empty", []) if marker.exists() else []
    parts += [f"* `{t}`: no records in this build (no config; reasons in `drops.parquet`)"
              for t in empty]
    parts += ["", "## Composition", ""]
    rep = _report_table(out)
    if rep is not None:
        parts += ["From `report.json` (`fusedata report`).", "", _md_table(*rep)]
    else:
        comp = composition(out)
        parts += ["Per prompt source: prompts, records per subset and prompts without a record "
                  "(reasons in `drops.parquet`).", "",
                  _md_table(list(comp.columns), [list(r) for r in comp.iter_rows()])]
    parts += ["", "## Models", "", _models_section(out, rec), ""]
    parts += ["## Loading", "", "```python", "import datasets", ""]
    for c in meta["configs"]:
        parts.append(f'{c["config_name"]} = datasets.load_dataset("REPO_OR_PATH", '
                     f'"{c["config_name"]}", split="train")')
    parts += ["```", "",
              "`sft` and `dpo` are TRL's conversational formats: `SFTTrainer` and "
              "`DPOTrainer` take them as they are (the SFT prompt's plain text is "
              "`prompt_text`, not `prompt`, which TRL would read as prompt-completion data).  "
              "`wrpo` is the record shape of WRPO's training code (`prompt` = the user "
              "message, `chosen` = [y_ws, y_wt], `rejected` = [y_l]; all prompt turns in "
              "`prompt_messages`).  `score*`, `margin`, `source_model`, `category` and "
              "`source_dataset` travel along for filtering."]
    if (out / "dataset_info.json").exists():
        parts += ["", "LLaMA-Factory: point `dataset_dir` at this folder; `dataset_info.json` "
                      "registers the SFT and DPO sets."]
    if rec:
        parts += ["", "## Recipe", "", "The recipe this data was built with "
                  "(local paths shortened to `<local>/NAME`):", "", "```yaml",
                  yaml.safe_dump(_sanitize(rec), sort_keys=False, allow_unicode=True).rstrip(),
                  "```"]
    return "\n".join(parts) + "\n"


def write_card(out: Path, recipe: Any = None) -> Path:
    """Render and write ``OUT/README.md``; untouched when the text is unchanged."""
    path = Path(out) / "README.md"
    text = render_card(Path(out), recipe)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        atomic_write_text(text, path)
    return path
