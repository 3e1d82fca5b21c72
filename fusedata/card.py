"""The dataset card (``OUT/README.md``) of an exported build.

The card is what makes ``OUT/`` a Hugging Face dataset repository: its YAML front
matter declares one config per record set (``sft``, ``dpo``, ``wrpo``) with its
``data_files`` and ``dataset_info`` features, so ``datasets.load_dataset(OUT, "dpo")``
(locally or from the Hub) returns exactly the exported records, and the Hub shows
license, task tags and ``source_datasets``.  The front matter is built with
``huggingface_hub.DatasetCardData`` (``dataset_info`` through ``datasets``'
``DatasetInfosDict``) and the card text with ``huggingface_hub.DatasetCard``, so its
YAML is what the Hub itself writes and reads.

The body says what a reader needs before training on it: the composition table and
per-model record counts, rendered from the report (:mod:`fusedata.report`, the one
place they are computed), the recipe that built it, the reward model, and how to
load it.  Feature schemas and sizes come from the parquet footers (no data is read).
The same inputs give a byte-identical card; the build writes it once, after the report.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from .engine import atomic_write_text
from .layout import (
    CARD,
    LLAMAFACTORY_INFO,
    RECIPE_JSON,
    exported_sets,
    public_path,
    set_glob,
)

#: record-count columns of the composition table
_COUNTS = ("total", "sft", "dpo", "wrpo", "dropped")
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
        return public_path(obj)
    return obj


def _recipe_dict(out: Path, recipe: Any) -> dict[str, Any] | None:
    if recipe is None:
        p = out / RECIPE_JSON
        return json.loads(p.read_text()) if p.exists() else None
    if hasattr(recipe, "model_dump"):
        return recipe.model_dump(mode="json")
    return dict(recipe)


def _load_report(out: Path, report: dict[str, Any] | None) -> dict[str, Any]:
    """The report to render: given, else ``OUT/report.json``, else computed (not written)."""
    from .report import compute, read_report

    if report is not None:
        return report
    rep = read_report(out)
    return rep if rep is not None else compute(out)


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


def _dataset_info(name: str, files: list[Path]) -> Any:
    """``datasets.DatasetInfo`` of one set from its parquet footers alone (no data read)."""
    import datasets
    import pyarrow.parquet as pq

    rows = nbytes = 0
    for f in files:
        md = pq.ParquetFile(f).metadata
        rows += md.num_rows
        nbytes += sum(md.row_group(i).total_byte_size for i in range(md.num_row_groups))
    splits = datasets.SplitDict()
    splits.add(datasets.SplitInfo(name="train", num_bytes=nbytes, num_examples=rows))
    return datasets.DatasetInfo(
        features=datasets.Features.from_arrow_schema(pq.read_schema(files[0])), splits=splits,
        download_size=sum(f.stat().st_size for f in files), dataset_size=nbytes,
        config_name=name)


def card_data(out: Path, recipe: dict[str, Any] | None, report: dict[str, Any]) -> Any:
    """The card's metadata (``huggingface_hub.DatasetCardData``): configs, features,
    license, tags, size category, source datasets."""
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCardData

    card = (recipe or {}).get("card") or {}
    sets = exported_sets(out)
    infos = DatasetInfosDict({t: _dataset_info(t, fs) for t, fs in sets.items()})
    configs = [{"config_name": t, "data_files": [{"split": "train", "path": set_glob(t)}]}
               for t in sets]
    if configs:
        configs[0] = {**configs[0], "default": True}
    total = sum(i.splits["train"].num_examples for i in infos.values())
    tags = ["fusedata", "synthetic", "sft", "dpo", "preference"]
    tags += ["wrpo"] if "wrpo" in sets else []
    srcs = sorted({r["source_dataset"] for r in report["composition"]
                   if _hub_like(r["source_dataset"] or "")})
    data = DatasetCardData(
        license=card.get("license", "other"),
        language=list(card["language"]) if card.get("language") else None,
        task_categories=["text-generation"],
        size_categories=[_size_category(total)],
        source_datasets=srcs or None,
        pretty_name=card.get("pretty_name") or (recipe or {}).get("name") or None,
        tags=tags + [t for t in card.get("tags", []) if t not in tags],
        configs=configs)
    infos.to_dataset_card_data(data)
    return data


def _composition(report: dict[str, Any]) -> str:
    """The report's composition table, its columns in the report's order, plus a total row."""
    rows = report["composition"]
    cols = list(rows[0]) if rows else ["source", "source_dataset", *_COUNTS, "category"]
    total = {"source": "total", **report["totals"]}
    return _md_table(cols, [[r.get(c, "") for c in cols] for r in [*rows, total]])


def _models_section(recipe: dict[str, Any] | None, report: dict[str, Any]) -> str:
    """Recipe models with the records each contributed (SFT + DPO + WRPO chosen_source)."""
    used: dict[str, int] = {}
    for key in ("sft_by_model", "dpo_by_model", "wrpo_by_source_model"):
        for d in report[key]:
            used[d["model"]] = used.get(d["model"], 0) + d["count"]
    lines = ["| model | role | backend | path | records |", "| --- | --- | --- | --- | --- |"]
    for m in (recipe or {}).get("models", []):
        lines.append(f"| {m.get('name', '?')} | {m.get('role', 'source')} | {m.get('backend', '')} | "
                     f"{public_path(str(m.get('path', '')))} | {used.get(m.get('name'), 0)} |")
    if not (recipe or {}).get("models"):
        lines += [f"| {m} |  |  |  | {n} |" for m, n in sorted(used.items())]
    rm = (recipe or {}).get("reward_model")
    rm_line = (f"Reward model: `{public_path(str(rm['path']))}` (output `{rm.get('output')}`, "
               f"max_length {rm.get('max_length')})." if rm else "Reward model: not recorded.")
    return "\n".join(lines) + "\n\n" + rm_line


def render_card(out: Path, recipe: Any = None, report: dict[str, Any] | None = None) -> str:
    """The full ``README.md`` text for the exported folder ``out``.

    ``report`` defaults to ``OUT/report.json`` (computed in memory when absent);
    ``recipe`` (a :class:`fusedata.recipe.Recipe` or its JSON dict) to ``OUT/recipe.json``.
    """
    from huggingface_hub import DatasetCard

    out = Path(out)
    rec = _recipe_dict(out, recipe)
    rep = _load_report(out, report)
    data = card_data(out, rec, rep)
    configs = data.get("configs", [])
    infos = data.get("dataset_info")
    infos = infos if isinstance(infos, list) else [infos] if infos else []
    name = data.get("pretty_name") or out.resolve().name
    parts = [f"# {name}", ""]
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
    for c in configs:
        n = next(i["splits"][0]["num_examples"] for i in infos
                 if i.get("config_name", c["config_name"]) == c["config_name"])
        parts.append(f"* `{c['config_name']}` ({n} records, `{c['data_files'][0]['path']}`): "
                     f"{_DESCRIPTIONS[c['config_name']]}")
    parts += [f"* `{t}`: no records in this build (no config; reasons in `drops.parquet`)"
              for t in rep["empty"]]
    parts += ["", "## Composition", "",
              "From `report.json` (`fusedata report`): per prompt source, the prompts that "
              "reached selection, records per subset and prompts without a record (reasons "
              "in `drops.parquet` and `report.md`).", "", _composition(rep)]
    parts += ["", "## Models", "", _models_section(rec, rep), ""]
    parts += ["## Loading", "", "```python", "import datasets", ""]
    for c in configs:
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
    if (out / LLAMAFACTORY_INFO).exists():
        parts += ["", "LLaMA-Factory: point `dataset_dir` at this folder; `dataset_info.json` "
                      "registers the SFT and DPO sets."]
    if rec:
        parts += ["", "## Recipe", "", "The recipe this data was built with "
                  "(local paths shortened to `<local>/NAME`):", "", "```yaml",
                  yaml.safe_dump(_sanitize(rec), sort_keys=False, allow_unicode=True).rstrip(),
                  "```"]
    body = "\n".join(parts) + "\n"
    return str(DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{body}"))


def write_card(out: Path, recipe: Any = None, report: dict[str, Any] | None = None) -> Path:
    """Render and write ``OUT/README.md``; untouched when the text is unchanged."""
    path = Path(out) / CARD
    text = render_card(Path(out), recipe, report)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        atomic_write_text(text, path)
    return path
