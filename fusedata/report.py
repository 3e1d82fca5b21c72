"""The composition report of a built output folder: ``OUT/report.md`` + ``OUT/report.json``.

It mirrors FuseChat-3.0's composition table (per source dataset: total, SFT,
DPO, category) and adds what a data builder needs to trust the numbers: WRPO
triplets, dropped prompts by split and reason, unusable responses by model and
reason, each source model's share of SFT picks and DPO pairs, and histograms of
DPO/WRPO margins and response lengths (PNG files under ``OUT/report/``, linked
from the markdown).  This is the one place the composition table is computed: the
dataset card (:mod:`fusedata.card`) renders it from ``report.json``.

It reads only the exported files (located through :mod:`fusedata.layout`), so
``fusedata report OUT`` regenerates it for any finished build.  Per-source
totals come from the selection's accounting rule: every prompt is in the SFT
set, in the DPO set, or in ``drops`` with split ``sft``/``dpo`` (see
:mod:`fusedata.select`), so total = distinct prompt ids over those three.
Lengths are in characters (no tokenizer is needed to read a report).

``report.json`` schema (version :data:`SCHEMA_VERSION`; every key always present)::

    schema_version    int
    out               str   the output folder as given
    composition       list of {source, source_dataset, total, sft, dpo, wrpo, dropped,
                      category}, sorted by category then source; ints are counts
                      (total = distinct prompts, dropped = prompts without a record)
    totals            {total, sft, dpo, wrpo, dropped}: sums over ``composition``
    empty             sets the export made without records (no files, no config)
    drop_reasons      list of {split, reason, count}  (prompt drops and WRPO drops)
    response_drops    list of {model, reason, count}  (unusable responses)
    sft_by_model, dpo_by_model, wrpo_by_source_model
                      list of {model, count, share}  (share of the set, 4 decimals)
    margins           {dpo|wrpo: summary}; lengths {"SET COLUMN": summary}, where a
                      summary is {count} or {count, min, median, mean, max}
    plots             {margins|lengths: path relative to OUT} for the PNGs drawn
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import polars as pl

from .engine import atomic_write_text
from .layout import (
    DROPS,
    PLOT_DIR,
    REPORT_JSON,
    REPORT_MD,
    TABLES,
    public_path,
    read_marker,
    set_files,
)
from .storage import OutFolder, is_url, local_out, shown

SCHEMA_VERSION = 1
CATEGORY_NAMES = {"instruction": "Instruction following", "math": "Mathematics",
                  "code": "Coding", "chinese": "Chinese Language"}


def read_outputs(out: Path) -> dict[str, pl.DataFrame | None]:
    """``sft``/``dpo``/``wrpo``/``drops`` of OUT (None where a set was not written)."""
    res: dict[str, pl.DataFrame | None] = {}
    for name in TABLES:
        files = set_files(out, name)
        res[name] = pl.read_parquet(files) if files else None
    drops = out / DROPS
    res["drops"] = pl.read_parquet(drops) if drops.exists() else None
    return res


def _content(col: str, last: bool = True) -> pl.Expr:
    """Text of the last (or only) message of a message-list column."""
    msg = pl.col(col).list.last() if last else pl.col(col).list.first()
    return msg.struct.field("content")


def _counts(df: pl.DataFrame | None, key: str) -> list[dict[str, Any]]:
    if df is None or df.height == 0 or key not in df.columns:
        return []
    c = df.group_by(key).len().sort(["len", key], descending=[True, False])
    n = df.height
    return [{"model": k, "count": v, "share": round(v / n, 4)} for k, v in c.iter_rows()]


def _summary(values: pl.Series) -> dict[str, Any]:
    v = values.drop_nulls()
    if v.len() == 0:
        return {"count": 0}
    return {"count": v.len(), "min": float(v.min()), "median": float(v.median()),
            "mean": round(float(v.mean()), 6), "max": float(v.max())}


def compute(out: Path) -> dict[str, Any]:
    """Everything the report shows, as JSON-able data."""
    t = read_outputs(out)
    if all(t[n] is None for n in TABLES):
        raise FileNotFoundError(f"{out}: no exported sft/dpo/wrpo parquet files "
                                "(looked in data/NAME/)")
    empty = pl.DataFrame(schema={"prompt_id": pl.String, "source": pl.String,
                                 "category": pl.String, "source_dataset": pl.String})
    sets = {n: (t[n] if t[n] is not None else empty) for n in TABLES}
    drops = t["drops"] if t["drops"] is not None else pl.DataFrame(
        schema={"prompt_id": pl.String, "category": pl.String, "source": pl.String,
                "split": pl.String, "model": pl.String, "reason": pl.String})
    prompt_drops = drops.filter(pl.col("split").is_in(["sft", "dpo"]))

    keys = ["source", "category"]
    accounted = pl.concat([sets["sft"].select("prompt_id", *keys),
                           sets["dpo"].select("prompt_id", *keys),
                           prompt_drops.select("prompt_id", *keys)]).unique("prompt_id")
    marker = read_marker(out)
    # the marker knows every source's dataset, also of a source whose prompts all dropped
    known = pl.DataFrame(list(marker.get("sources", {}).items()),
                         schema={"source": pl.String, "source_dataset": pl.String}, orient="row")
    names = pl.concat([known, *(sets[n].select("source", "source_dataset") for n in TABLES)]
                      ).unique("source", keep="first")
    per = [accounted.group_by(keys).agg(total=pl.len())]
    for n in TABLES:
        per.append(sets[n].group_by(keys).agg(pl.len().alias(n)))
    per.append(prompt_drops.group_by(keys).agg(dropped=pl.col("prompt_id").n_unique()))
    comp = per[0]
    for x in per[1:]:
        comp = comp.join(x, on=keys, how="full", coalesce=True)
    comp = (comp.join(names, on="source", how="left")
            .with_columns(pl.col("total", *TABLES, "dropped").fill_null(0))
            .sort("category", "source"))
    composition = [{"source": r["source"],
                    "source_dataset": public_path(r["source_dataset"] or ""),
                    "total": r["total"],
                    "sft": r["sft"], "dpo": r["dpo"], "wrpo": r["wrpo"],
                    "dropped": r["dropped"], "category": r["category"]}
                   for r in comp.iter_rows(named=True)]
    totals = {k: sum(r[k] for r in composition)
              for k in ("total", "sft", "dpo", "wrpo", "dropped")}

    reasons = (drops.filter(pl.col("split") != "responses").group_by("split", "reason").len()
               .sort(["split", "len", "reason"], descending=[False, True, False]))
    resp = (drops.filter(pl.col("split") == "responses").group_by("model", "reason").len()
            .sort(["model", "len", "reason"], descending=[False, True, False]))

    margins = {n: _summary(sets[n]["margin"]) for n in ("dpo", "wrpo") if "margin" in sets[n]}
    lengths: dict[str, pl.Series] = {}
    if "messages" in sets["sft"].columns:
        lengths["sft response"] = sets["sft"].select(
            _content("messages").str.len_chars()).to_series()
    for n, cols in (("dpo", ("chosen", "rejected")),
                    ("wrpo", ("chosen_source", "chosen_target", "rejected"))):
        for c in cols:
            if c in sets[n].columns:
                lengths[f"{n} {c}"] = sets[n].select(
                    _content(c, last=False).str.len_chars()).to_series()
    w = sets["wrpo"]
    if "chosen" in w.columns and "chosen_source" not in w.columns:
        # WRPO's record shape: chosen = [y_ws, y_wt]
        for i, name in enumerate(("chosen_source", "chosen_target")):
            lengths[f"wrpo {name}"] = w.select(
                pl.col("chosen").list.get(i, null_on_oob=True).struct.field("content")
                .str.len_chars()).to_series()
    return {
        "schema_version": SCHEMA_VERSION,
        "out": str(out),
        "composition": composition,
        "totals": totals,
        "empty": list(marker.get("empty", [])),
        "drop_reasons": [{"split": s, "reason": r, "count": c} for s, r, c in reasons.iter_rows()],
        "response_drops": [{"model": m, "reason": r, "count": c} for m, r, c in resp.iter_rows()],
        "sft_by_model": _counts(sets["sft"], "source_model"),
        "dpo_by_model": _counts(sets["dpo"], "source_model"),
        "wrpo_by_source_model": _counts(sets["wrpo"], "source_model"),
        "margins": margins,
        "lengths": {k: _summary(v) for k, v in lengths.items()},
        "_series": {"margins": {n: sets[n]["margin"].drop_nulls().to_list()
                                for n in ("dpo", "wrpo") if "margin" in sets[n]},
                    "lengths": {k: v.drop_nulls().to_list() for k, v in lengths.items()}},
    }


def _plot(series: dict[str, list[float]], title: str, xlabel: str, path: Path) -> bool:
    """One overlaid histogram; returns False (no file) when there is nothing to draw."""
    series = {k: v for k, v in series.items() if v}
    if not series:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for name, vals in series.items():
        ax.hist(vals, bins=40, alpha=0.55, label=f"{name} (n={len(vals):,})")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, metadata={"Software": None})
    plt.close(fig)
    tmp.replace(path)
    return True


def _md_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    def fmt(x: Any) -> str:
        return f"{x:,}" if isinstance(x, int) else str(x)

    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(fmt(x) for x in r) + " |" for r in rows]
    return out


def _dataset_cell(source: str, dataset: str | None) -> str:
    """The recipe's source name, linked to the Hub when its dataset is a Hub id."""
    if dataset and "/" in dataset and not dataset.startswith((".", "/", "~")) \
            and not Path(dataset).suffix and dataset.count("/") == 1:
        return f"[{source}](https://huggingface.co/datasets/{dataset})"
    if dataset and dataset != source:
        local = dataset.startswith(("/", "<local>/"))  # export writes local paths as <local>/NAME
        return f"{source} (`{Path(dataset).name if local else dataset}`)"
    return source


def render_markdown(rep: dict[str, Any]) -> str:
    has_wrpo = rep["totals"]["wrpo"] > 0
    lines = ["# Data composition", "",
             f"Output: `{rep['out']}`.  {rep['totals']['sft']:,} SFT records, "
             f"{rep['totals']['dpo']:,} DPO pairs"
             + (f", {rep['totals']['wrpo']:,} WRPO triplets" if has_wrpo else "")
             + f" from {rep['totals']['total']:,} prompts; "
             f"{rep['totals']['dropped']:,} dropped (reasons below).", ""]
    head = ["Dataset", "Total Count", "SFT Count", "DPO Count"] + (
        ["WRPO Count"] if has_wrpo else []) + ["Dropped", "Category"]
    rows = []
    for r in rep["composition"]:
        rows.append([_dataset_cell(r["source"], r["source_dataset"]), r["total"], r["sft"],
                     r["dpo"]]
                    + ([r["wrpo"]] if has_wrpo else [])
                    + [r["dropped"], CATEGORY_NAMES.get(r["category"], r["category"])])
    tot = rep["totals"]
    rows.append(["**Total**", tot["total"], tot["sft"], tot["dpo"]]
                + ([tot["wrpo"]] if has_wrpo else []) + [tot["dropped"], "All"])
    lines += _md_table(head, rows)
    lines += ["", "Total = distinct prompts that reached selection; DPO counts pairs "
              "(one per prompt unless `pairing: all`).", ""]

    lines += ["## Dropped prompts", ""]
    if rep["drop_reasons"]:
        lines += _md_table(["Split", "Reason", "Prompts"],
                           [[d["split"], f"`{d['reason']}`", d["count"]]
                            for d in rep["drop_reasons"]])
    else:
        lines.append("None.")
    lines += ["", "## Unusable responses", ""]
    if rep["response_drops"]:
        lines += _md_table(["Model", "Reason", "Responses"],
                           [[d["model"], f"`{d['reason']}`", d["count"]]
                            for d in rep["response_drops"]])
    else:
        lines.append("None.")
    for key, title, what in (("sft_by_model", "Source models of SFT records", "SFT records"),
                             ("dpo_by_model", "Source models of DPO pairs", "DPO pairs"),
                             ("wrpo_by_source_model", "Source models of WRPO chosen_source",
                              "WRPO triplets")):
        if rep[key]:
            lines += ["", f"## {title}", ""]
            lines += _md_table(["Model", what, "Share"],
                               [[d["model"], d["count"], f"{100 * d['share']:.1f}%"]
                                for d in rep[key]])
    lines += ["", "## Margins and lengths", ""]
    for name, s in rep["margins"].items():
        if s["count"]:
            lines.append(f"- {name.upper()} margin: min {s['min']:.4f}, median "
                         f"{s['median']:.4f}, max {s['max']:.4f} (n={s['count']:,})")
    for name, s in rep["lengths"].items():
        if s["count"]:
            lines.append(f"- {name} length (chars): median {s['median']:.0f}, "
                         f"max {s['max']:.0f} (n={s['count']:,})")
    for key, title in (("margins", "RM margin histogram"), ("lengths", "Length histogram")):
        if key in rep["plots"]:
            lines += ["", f"![{title}]({rep['plots'][key]})"]
    return "\n".join(lines) + "\n"


def read_report(out: Path) -> dict[str, Any] | None:
    """``OUT/report.json`` as written by :func:`write_report`; None when absent.

    A file of another schema version is an error (re-run ``fusedata report OUT``), not
    something to guess the shape of."""
    p = Path(out) / REPORT_JSON
    if not p.exists():
        return None
    rep = json.loads(p.read_text(encoding="utf-8"))
    if not isinstance(rep, dict) or rep.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{p}: not a report.json of schema version {SCHEMA_VERSION}; "
                         f"run `fusedata report {out}` to rewrite it")
    return rep


def write_report(out: Path, shown: str | None = None) -> dict[str, Any]:
    """Compute the report of OUT and write report.json, report.md and the PNG plots.

    ``shown`` replaces the folder recorded as ``out``: for an OUT at a URL, worked on
    in a local temp copy (:func:`fusedata.storage.local_out`), the URL, not the copy."""
    out = Path(out)
    rep = compute(out)
    if shown is not None:
        rep["out"] = shown
    series = rep.pop("_series")
    plots = {}
    if _plot({k.upper(): v for k, v in series["margins"].items()}, "RM margin (chosen - rejected)",
             "margin", out / PLOT_DIR / "margins.png"):
        plots["margins"] = f"{PLOT_DIR}/margins.png"
    if _plot(series["lengths"], "Response length", "characters", out / PLOT_DIR / "lengths.png"):
        plots["lengths"] = f"{PLOT_DIR}/lengths.png"
    rep["plots"] = plots
    atomic_write_text(json.dumps(rep, indent=1, ensure_ascii=False), out / REPORT_JSON)
    atomic_write_text(render_markdown(rep), out / REPORT_MD)
    return rep


@click.command("report")
@click.argument("out", type=OutFolder())
def report(out: str) -> None:
    """(Re)write OUT/report.md, OUT/report.json and OUT/report/*.png for a built OUT.

    The composition table (per source dataset: total, SFT, DPO, WRPO, dropped,
    category), drop reasons, each source model's share of SFT records and DPO
    pairs, and margin and length histograms; read from OUT's exported files.
    OUT may be a URL (s3://bucket/prefix): its files, less the stage cache .work/,
    are fetched to a temp folder and the changed ones uploaded back.
    """
    with local_out(out, write_back=True) as root:
        try:
            rep = write_report(root, shown=out if is_url(out) else None)
        except FileNotFoundError as e:
            msg = str(e).replace(str(root), out) if is_url(out) else str(e)
            raise click.ClickException(msg) from None
    click.echo(render_markdown(rep).split("\n## Dropped prompts")[0].rstrip())
    click.echo(f"\nwrote {shown(out, root, root / REPORT_MD)} and "
               f"{shown(out, root, root / REPORT_JSON)}")
