"""``OUT/view.html``: one self-contained page to *read* a built dataset before training on it.

The bugs that spoil preference data (identical chosen/rejected, empty answers, a verifier
that fails everything, one model winning every pair, margins piled at the window edge)
are obvious to the eye and invisible in counts, so the report's numbers are not enough.
The page needs no server and nothing installed: the records are embedded as JSON, the
script is hand-written below (no CDN, no network request), the report's PNG plots are
embedded as ``data:`` URIs, and the file opens from disk in any browser.

Scale: a set of 200k records cannot be embedded whole and still open in seconds, so each
set is sampled (default :data:`DEFAULT_SAMPLE` per set), stratified by category and
source model (every group keeps at least one record, the rest is proportional), under a
fixed seed; drops are embedded whole up to :data:`DROP_CAP` prompts.  Texts longer than
:data:`TEXT_CAP` characters keep their beginning and end (the page says how much was cut
between), which bounds the page at about 2 x 6,000 characters per pair.  The page states what
was sampled, so nobody mistakes a sample's counts for the set's.

Safety: the data is JSON inside ``<script type="application/json">`` with ``<``, ``>``,
``&`` and U+2028/9 escaped as ``\\uXXXX``, so no response text can close the element or
open a comment; the script puts every text into the page with ``textContent`` (never
``innerHTML``), so HTML in a response is shown, not run.

It reads OUT only through :mod:`fusedata.layout` and the report through
:func:`fusedata.report.read_report` (the report is written before the page).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from pathlib import Path
from typing import Any

import polars as pl

from .engine import atomic_write_text
from .layout import DROPS, VIEW_DROPS, VIEW_HTML, VIEW_VERDICTS, set_files
from .report import read_report

#: the page's version: part of the build's cache key, so a changed page is rewritten
VERSION = 1
#: records embedded per set unless asked otherwise
DEFAULT_SAMPLE = 2000
#: dropped prompts embedded at most (with their responses' scores and verdicts)
DROP_CAP = 5_000
#: characters of a dropped prompt's response shown (the start shows empty/garbled answers)
PREVIEW = 300
#: characters of one text embedded whole; a longer one keeps its first HEAD and last
#: TAIL characters (the page says how many were cut)
TEXT_CAP = 6_000
HEAD = 4_500
TAIL = 1_500
#: the sample's stratification keys (those a set has)
STRATA = ("category", "source_model")


def quotas(sizes: list[int], n: int) -> list[int]:
    """How many records each group gets of a sample of ``n``: one per group first (when
    ``n`` allows), the rest proportional to the groups' remaining sizes by largest
    remainder, so the quotas sum to ``min(n, sum(sizes))`` and no group exceeds its size."""
    g = len(sizes)
    if n >= sum(sizes):
        return list(sizes)
    base = [min(s, 1) for s in sizes] if n >= g else [0] * g
    cap = [s - b for s, b in zip(sizes, base, strict=True)]
    left = n - sum(base)
    total = sum(cap)
    raw = [left * c / total if total else 0.0 for c in cap]
    q = [min(c, int(r)) for c, r in zip(cap, raw, strict=True)]
    rest = left - sum(q)
    for i in sorted(range(g), key=lambda i: (-(raw[i] - int(raw[i])), i)):
        if rest <= 0:
            break
        if q[i] < cap[i]:
            q[i] += 1
            rest -= 1
    return [b + x for b, x in zip(base, q, strict=True)]


def stratified_sample(df: pl.DataFrame, n: int, seed: int) -> pl.DataFrame:
    """Up to ``n`` rows of ``df``, stratified by :data:`STRATA`, in their original order."""
    if df.height <= n:
        return df
    keys = [c for c in STRATA if c in df.columns]
    k = [pl.col(c).cast(pl.String).fill_null("\x00null").alias(f"_k{i}")
         for i, c in enumerate(keys)]
    kn = [f"_k{i}" for i in range(len(keys))] or ["_all"]
    d = df.with_row_index("_row").with_columns(*k) if keys else \
        df.with_row_index("_row").with_columns(_all=pl.lit(""))
    sizes = d.group_by(kn).len().sort(kn)
    sizes = sizes.with_columns(_quota=pl.Series(quotas(sizes["len"].to_list(), n),
                                                dtype=pl.Int64))
    return (d.join(sizes.drop("len"), on=kn, how="left")
            .with_columns(_r=pl.int_range(pl.len()).shuffle(seed=seed))
            .sort("_r")
            .filter(pl.int_range(pl.len()).over(kn) < pl.col("_quota"))
            .sort("_row")
            .drop("_row", "_r", "_quota", *kn))


#: the selection's response-id columns of each record set
RECORD_IDS = {"sft": ("response_id",), "dpo": ("chosen_id", "rejected_id"),
              "wrpo": ("chosen_source_id", "chosen_target_id", "rejected_id")}

Verdicts = dict[str, tuple[str | None, str | None]]


def text_key(prompt_id: str, text: str | None) -> str:
    """A response's key in :data:`~fusedata.layout.VIEW_VERDICTS`: its prompt id and a
    hash of its text (the record sets hold the text, not the response id)."""
    digest = hashlib.sha1((text or "").encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{prompt_id}:{digest}"


def record_verdicts(selection: dict[str, pl.LazyFrame], responses: list[pl.LazyFrame]
                    ) -> pl.DataFrame:
    """``key``, ``verdict``, ``verdict_detail`` of every verified response that is part of
    an SFT record, DPO pair or WRPO triplet (``selection``: the selection's tables, which
    carry response ids; ``responses``: the verified responses of each model)."""
    ids = [selection[name].select(pl.col(c).cast(pl.String).alias("response_id"))
           for name, cols in RECORD_IDS.items() if name in selection
           for c in cols if c in selection[name].collect_schema().names()]
    parts = [lf.filter(pl.col("verdict").is_not_null())
             .join(pl.concat(ids).unique(), on="response_id", how="semi")
             .select("prompt_id", "response", "verdict", "verdict_detail")
             for lf in responses if ids and "verdict" in lf.collect_schema().names()]
    schema = {"key": pl.String, "verdict": pl.String, "verdict_detail": pl.String}
    if not parts:
        return pl.DataFrame(schema=schema)
    df = pl.concat(parts, how="vertical_relaxed").collect()
    keys = [text_key(p, r) for p, r in zip(df["prompt_id"], df["response"], strict=True)]
    return (df.select("verdict", "verdict_detail").with_columns(key=pl.Series(keys))
            .unique("key", keep="first", maintain_order=True).select(*schema))


def _verdict(verdicts: Verdicts, pid: str, text: str | None) -> tuple[str | None, str | None]:
    return verdicts.get(text_key(pid, text), (None, None)) if verdicts else (None, None)


def _text(v: str | None) -> list[Any]:
    """``[head, cut, tail]``: a text up to :data:`TEXT_CAP` whole (``cut`` 0, ``tail``
    empty), a longer one as its first :data:`HEAD` and last :data:`TAIL` characters and
    how many were cut between (the end is kept: that is where answers and truncations are)."""
    v = v or ""
    if len(v) <= TEXT_CAP:
        return [v, 0, ""]
    return [v[:HEAD], len(v) - HEAD - TAIL, v[-TAIL:]]


def _messages(msgs: list[dict[str, str]] | None) -> list[list[Any]]:
    """A message list as ``[[role, head, cut, tail], ...]``."""
    return [[m["role"], *_text(m["content"])] for m in (msgs or [])]


def _content(col: str, i: int = 0) -> pl.Expr:
    return pl.col(col).list.get(i, null_on_oob=True).struct.field("content")


def _opt(df: pl.DataFrame, col: str) -> pl.Expr:
    """An optional column of the export (e.g. verdicts, when a build writes them)."""
    return pl.col(col) if col in df.columns else pl.lit(None, pl.String)


def _dpo_rows(df: pl.DataFrame, verdicts: Verdicts) -> list[dict[str, Any]]:
    d = df.select(
        "prompt_id", "category", "source", "source_dataset", "source_model", "margin",
        "score_chosen", "score_rejected", "prompt", c=_content("chosen"),
        r=_content("rejected"), rejected_model=_opt(df, "rejected_model"))
    rows = []
    for x in d.iter_rows(named=True):
        vc, dc = _verdict(verdicts, x["prompt_id"], x["c"])
        vr, dr = _verdict(verdicts, x["prompt_id"], x["r"])
        rows.append({
            "id": x["prompt_id"], "cat": x["category"], "src": x["source"],
            "ds": x["source_dataset"], "model": x["source_model"], "margin": x["margin"],
            "score": x["score_chosen"], "len": len(x["c"] or ""),
            "prompt": _messages(x["prompt"]), "verdict": [v for v in (vc, vr) if v],
            "resp": [{"label": "chosen", "model": x["source_model"], "score": x["score_chosen"],
                      "verdict": vc, "detail": dc, "text": _text(x["c"])},
                     {"label": "rejected", "model": x["rejected_model"] or x["source_model"],
                      "score": x["score_rejected"], "verdict": vr, "detail": dr,
                      "text": _text(x["r"])}]})
    return rows


def _wrpo_rows(df: pl.DataFrame, verdicts: Verdicts) -> list[dict[str, Any]]:
    d = df.select(
        "prompt_id", "category", "source", "source_dataset", "source_model", "target_model",
        "margin", "score_chosen_source", "score_chosen_target", "score_rejected",
        prompt=(pl.col("prompt_messages") if "prompt_messages" in df.columns
                else pl.concat_list("prompt")),
        s=_content("chosen", 0), t=_content("chosen", 1), r=_content("rejected"))
    rows = []
    for x in d.iter_rows(named=True):
        resp = []
        for label, model, score, col in (
                ("chosen (source, y_ws)", x["source_model"], x["score_chosen_source"], "s"),
                ("chosen (target, y_wt)", x["target_model"], x["score_chosen_target"], "t"),
                ("rejected (target, y_l)", x["target_model"], x["score_rejected"], "r")):
            v, detail = _verdict(verdicts, x["prompt_id"], x[col])
            resp.append({"label": label, "model": model, "score": score, "verdict": v,
                         "detail": detail, "text": _text(x[col])})
        rows.append({"id": x["prompt_id"], "cat": x["category"], "src": x["source"],
                     "ds": x["source_dataset"], "model": x["source_model"],
                     "margin": x["margin"], "score": x["score_chosen_target"],
                     "len": len(x["t"] or ""), "prompt": _messages(x["prompt"]),
                     "verdict": sorted({r["verdict"] for r in resp if r["verdict"]}),
                     "resp": resp})
    return rows


def _sft_rows(df: pl.DataFrame, verdicts: Verdicts) -> list[dict[str, Any]]:
    d = df.select("prompt_id", "category", "source", "source_dataset", "source_model", "score",
                  "messages")
    rows = []
    for x in d.iter_rows(named=True):
        *prompt, answer = x["messages"] or [{"role": "assistant", "content": ""}]
        x["v"], x["vd"] = _verdict(verdicts, x["prompt_id"], answer["content"])
        rows.append({"id": x["prompt_id"], "cat": x["category"], "src": x["source"],
                     "ds": x["source_dataset"], "model": x["source_model"], "margin": None,
                     "score": x["score"], "len": len(answer["content"] or ""),
                     "prompt": _messages(prompt),
                     "verdict": [x["v"]] if x["v"] is not None else [],
                     "resp": [{"label": "response", "model": x["source_model"],
                               "score": x["score"], "verdict": x["v"], "detail": x["vd"],
                               "text": _text(answer["content"])}]})
    return rows


#: response columns kept for dropped prompts (those a build has)
DETAIL_COLUMNS = ("prompt_id", "model", "sample_idx", "score", "verdict", "verdict_detail",
                  "finish_reason", "error")


def drop_details(drops: pl.LazyFrame, prompts: pl.LazyFrame, responses: list[pl.LazyFrame],
                 cap: int = DROP_CAP) -> pl.DataFrame:
    """What ``drops.parquet`` does not say about a dropped prompt: its messages and every
    response it got (model, score, verdict, detail, the response's first
    :data:`PREVIEW` characters and length), for the first ``cap`` dropped prompts.

    The build calls this with the prompts and the per-model scored and verified
    responses (the exported files hold neither for a prompt without a record) and writes
    the result to :data:`~fusedata.layout.VIEW_DROPS`.
    """
    ids = (drops.filter(pl.col("split") != "responses").select("prompt_id")
           .unique(maintain_order=True).head(cap))
    parts = []
    for lf in responses:
        have = lf.collect_schema().names()
        parts.append(lf.join(ids, on="prompt_id", how="semi").select(
            *[c for c in DETAIL_COLUMNS if c in have],
            preview=pl.col("response").str.slice(0, PREVIEW),
            length=pl.col("response").str.len_chars()))
    agg = (pl.concat(parts, how="diagonal_relaxed") if parts else
           pl.LazyFrame(schema={"prompt_id": pl.String}))
    sort = [c for c in ("model", "sample_idx") if c in agg.collect_schema().names()]
    agg = (agg.sort("prompt_id", *sort).group_by("prompt_id", maintain_order=True)
           .agg(responses=pl.struct(pl.exclude("prompt_id"))))
    p = prompts.select("prompt_id", "messages").join(ids, on="prompt_id", how="semi")
    return (ids.join(p, on="prompt_id", how="left")
            .join(agg, on="prompt_id", how="left").collect())


def _drop_rows(drops: pl.DataFrame, details: pl.DataFrame | None,
               cap: int) -> tuple[list[dict[str, Any]], int]:
    """Prompt-level drops (up to ``cap``), each with its unusable responses' reasons and,
    where the build recorded them, its messages and responses (:func:`drop_details`)."""
    prompt_level = drops.filter(pl.col("split") != "responses")
    resp = (drops.filter(pl.col("split") == "responses")
            .group_by("prompt_id", "model", "reason").len()
            .sort("prompt_id", "model", "reason")
            .group_by("prompt_id", maintain_order=True)
            .agg(bad=pl.concat_list(pl.col("model").fill_null(""), pl.col("reason"),
                                    pl.col("len").cast(pl.String))))
    rows = prompt_level.head(cap).join(resp, on="prompt_id", how="left", maintain_order="left")
    if details is not None:
        rows = rows.join(details.unique("prompt_id"), on="prompt_id", how="left",
                         maintain_order="left")
    out = []
    for x in rows.iter_rows(named=True):
        r: dict[str, Any] = {"id": x["prompt_id"], "cat": x["category"], "src": x["source"],
                             "split": x["split"], "reason": x["reason"],
                             "bad": [[m, b, int(c)] for m, b, c in (x["bad"] or [])],
                             "prompt": _messages(x.get("messages")),
                             "detail": details is not None}
        r["resp"] = [{"model": y.get("model"), "score": y.get("score"),
                      "verdict": y.get("verdict"),
                      "detail": (y.get("verdict_detail") or "")[:PREVIEW] or None,
                      "finish": y.get("finish_reason"), "error": y.get("error"),
                      "preview": y.get("preview") or "", "length": y.get("length") or 0}
                     for y in (x.get("responses") or [])]
        r["verdict"] = sorted({y["verdict"] for y in r["resp"] if y["verdict"]})
        out.append(r)
    return out, prompt_level.height


def _json_for_script(obj: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">``: no ``<``, ``>`` or
    ``&`` survive literally (so no ``</script>`` or ``<!--``), nor U+2028/U+2029."""
    s = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for a, b in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                 ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        s = s.replace(a, b)
    return s


def _clean(v: Any) -> Any:
    """NaN/inf scores become null (JSON has no NaN)."""
    if isinstance(v, float) and v != v or v in (float("inf"), float("-inf")):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return v


def _verdicts_of(out: Path, part: pl.DataFrame) -> Verdicts:
    """The recorded verdicts of the sampled records' prompts (empty when none recorded)."""
    path = out / VIEW_VERDICTS
    if not path.exists():
        return {}
    ids = part.select("prompt_id").unique()
    v = (pl.scan_parquet(path)
         .filter(pl.col("key").str.split_exact(":", 1).struct.field("field_0")
                 .is_in(ids["prompt_id"].implode()))
         .collect())
    return {k: (a, b) for k, a, b in v.select("key", "verdict", "verdict_detail").iter_rows()}


def collect(out: Path, sample: int = DEFAULT_SAMPLE, seed: int = 0,
            drop_cap: int = DROP_CAP) -> dict[str, Any]:
    """Everything the page embeds, as JSON-able data."""
    out = Path(out)
    sets: dict[str, Any] = {}
    for name, rows_of in (("dpo", _dpo_rows), ("wrpo", _wrpo_rows), ("sft", _sft_rows)):
        files = set_files(out, name)
        if not files:
            continue
        df = pl.read_parquet(files)
        part = stratified_sample(df, sample, seed)
        sets[name] = {"total": df.height, "embedded": part.height,
                      "rows": rows_of(part, _verdicts_of(out, part))}
    if not sets:
        raise FileNotFoundError(f"{out}: no exported sft/dpo/wrpo parquet files "
                                "(looked in data/NAME/)")
    drops_path = out / DROPS
    drops: dict[str, Any] = {"total": 0, "embedded": 0, "rows": []}
    if drops_path.exists():
        details = out / VIEW_DROPS
        rows, total = _drop_rows(pl.read_parquet(drops_path),
                                 pl.read_parquet(details) if details.exists() else None,
                                 drop_cap)
        drops = {"total": total, "embedded": len(rows), "rows": rows}
    rep = read_report(out)
    plots = {}
    for key, rel in ((rep or {}).get("plots") or {}).items():
        p = out / rel
        if p.exists():
            plots[key] = "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode()
    return _clean({"out": out.name, "sample": sample, "seed": seed, "drop_cap": drop_cap,
                   "text_cap": TEXT_CAP, "strata": list(STRATA), "sets": sets, "drops": drops,
                   "report": rep and {k: rep[k] for k in
                                      ("composition", "totals", "drop_reasons",
                                       "response_drops", "margins", "empty")},
                   "plots": plots})


def render(data: dict[str, Any]) -> str:
    """The page: the template with the escaped data in place."""
    title = html.escape(f"fusedata view: {data['out']}")
    return _TEMPLATE.replace("__TITLE__", title).replace("__DATA__", _json_for_script(data))


def write_view(out: Path, sample: int = DEFAULT_SAMPLE, seed: int = 0,
               drop_cap: int = DROP_CAP) -> Path:
    """Write ``OUT/view.html`` and return its path."""
    path = Path(out) / VIEW_HTML
    atomic_write_text(render(collect(out, sample, seed, drop_cap)), path)
    return path


_TEMPLATE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d1d1f;background:#f5f5f7}
header{background:#1d2b3a;color:#fff;padding:8px 16px}
header h1{font-size:17px;margin:0 0 4px}
#note{font-size:12px;color:#cfd8e3}
nav{display:flex;gap:4px;padding:8px 16px 0;background:#e4e7eb}
nav button{border:0;padding:6px 14px;border-radius:6px 6px 0 0;background:#cfd4da;cursor:pointer}
nav button.on{background:#fff;font-weight:600}
#controls{display:flex;flex-wrap:wrap;gap:8px;align-items:center;padding:8px 16px;background:#fff;
 border-bottom:1px solid #ddd;position:sticky;top:0;z-index:1}
#controls label{font-size:12px;color:#555}
#controls select,#controls input{font-size:13px;padding:2px 4px}
#controls input[type=number]{width:6em}
#status{padding:6px 16px;font-size:13px;color:#333}
#list{padding:0 16px 16px}
.rec{background:#fff;border:1px solid #ddd;border-radius:6px;margin:8px 0;padding:8px}
.meta{font-size:12px;color:#555;display:flex;flex-wrap:wrap;gap:10px}
.meta .pid{font-family:monospace;user-select:all}
.tag{background:#eef;border-radius:4px;padding:0 5px}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:8px;margin-top:6px}
.resp{border:1px solid #e3e3e3;border-radius:4px;padding:4px}
.resp h4{margin:0 0 3px;font-size:12px}
.good h4{color:#0a6b2d}.bad h4{color:#a11}
pre{white-space:pre-wrap;word-break:break-word;margin:2px 0;font:12px/1.35 ui-monospace,monospace;
 background:#fafafa;padding:4px;border-radius:3px}
.txt.fold pre:first-child{max-height:9.5em;overflow:hidden}
.txt.fold .cut+pre{display:none}
.more{font-size:11px;border:0;background:none;color:#06c;cursor:pointer;padding:0}
.cut{font-size:11px;color:#a60}
.role{font-size:11px;color:#777}
table{border-collapse:collapse;margin:8px 0;background:#fff}
td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left;vertical-align:top}
td.num{text-align:right}
.rec table td:last-child{text-align:left;font:12px ui-monospace,monospace;white-space:pre-wrap;word-break:break-word}
img{max-width:100%;background:#fff;border:1px solid #ddd;margin:6px 0}
</style></head><body>
<header><h1 id="title"></h1><div id="note"></div></header>
<nav id="tabs"></nav>
<div id="controls"></div>
<div id="status"><b id="count">0</b> <span id="what"></span> <span id="sampled"></span></div>
<div id="list"></div>
<script type="application/json" id="data">__DATA__</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const $ = (tag, attrs, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") e.textContent = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
};
const fmt = (x, d) => x == null ? "-" : (typeof x === "number" ? x.toFixed(d == null ? 4 : d) : String(x));
const n = x => Number(x).toLocaleString("en-US");
const NAMES = {dpo: "DPO pairs", wrpo: "WRPO triplets", sft: "SFT records", drops: "dropped prompts"};
const PAGE = 50;
const st = {tab: null, f: {}, q: "", sort: "none", seed: null, shown: PAGE};

document.getElementById("title").textContent = "fusedata view: " + D.out;
document.getElementById("note").textContent =
  "Each set: up to " + n(D.sample) + " records embedded, stratified by " + D.strata.join(" and ") +
  " (seed " + D.seed + "); drops: up to " + n(D.drop_cap) + " prompts; texts cut at " +
  n(D.text_cap) + " characters. Find any record in the Parquet files by its prompt_id.";

function rows() { return st.tab === "drops" ? D.drops.rows : (D.sets[st.tab] || {rows: []}).rows; }
function filters() {
  if (st.tab === "report") return [];
  if (st.tab === "drops") return [["cat", "category"], ["src", "source"], ["split", "split"], ["reason", "drop reason"], ["verdict", "verdict"]];
  const f = [["cat", "category"], ["ds", "source dataset"], ["model", "source model"]];
  if (rows().some(r => r.verdict.length)) f.push(["verdict", "verdict"]);
  return f;
}
function values(key) {
  const s = new Set();
  for (const r of rows()) { const v = r[key]; if (Array.isArray(v)) v.forEach(x => s.add(String(x))); else s.add(String(v)); }
  return [...s].sort();
}
function haystack(r) {
  if (r._h === undefined) {
    const parts = [r.id];
    for (const m of r.prompt || []) parts.push(m[1], m[3]);
    for (const x of r.resp || []) parts.push(...(x.text ? [x.text[0], x.text[2]] : [x.preview || "", x.detail || ""]));
    if (r.reason) parts.push(r.reason);
    r._h = parts.join("\n").toLowerCase();
  }
  return r._h;
}
function rng(seed) {  // mulberry32: the same seed gives the same sample in any browser
  let a = seed >>> 0;
  return () => { a = (a + 0x6D2B79F5) >>> 0; let t = a; t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
}
function selected() {
  let out = rows().filter(r => {
    for (const [k, v] of Object.entries(st.f)) {
      if (v === "") continue;
      const x = r[k];
      if (Array.isArray(x) ? !x.map(String).includes(v) : String(x) !== v) return false;
    }
    if (st.lo !== undefined && st.lo !== "" && !(r.margin != null && r.margin >= Number(st.lo))) return false;
    if (st.hi !== undefined && st.hi !== "" && !(r.margin != null && r.margin <= Number(st.hi))) return false;
    return !st.q || haystack(r).includes(st.q.toLowerCase());
  });
  if (st.sort !== "none") {
    const [key, dir] = st.sort.split(":");
    out = out.slice().sort((a, b) => ((a[key] ?? -Infinity) - (b[key] ?? -Infinity)) * (dir === "desc" ? -1 : 1));
  }
  if (st.seed !== null) {
    const r = rng(st.seed), a = out.slice();
    for (let i = a.length - 1; i > 0; i--) { const j = Math.floor(r() * (i + 1)); [a[i], a[j]] = [a[j], a[i]]; }
    out = a.slice(0, PAGE);
  }
  return out;
}
function textBlock(t) {  // t = [head, cut, tail]: long texts keep their beginning and end
  const [head, cut, tail] = t, len = head.length + cut + tail.length;
  const box = $("div", {class: "txt"});
  const pre = $("pre", {text: head === "" ? "(empty)" : head});
  box.append(pre);
  if (cut) box.append($("div", {class: "cut", text: "… " + n(cut) + " characters cut here (the Parquet file has the full text) …"}), $("pre", {text: tail}));
  if (head.length > 600 || head.split("\n").length > 8 || cut) {
    box.classList.add("fold");
    const label = "show all (" + n(len) + " chars)";
    const b = $("button", {class: "more", text: label});
    b.addEventListener("click", () => { const f = box.classList.toggle("fold"); b.textContent = f ? label : "collapse"; });
    box.append(b);
  }
  return box;
}
function card(r) {
  const meta = $("div", {class: "meta"}, $("span", {class: "pid", title: "prompt_id", text: r.id}),
    $("span", {class: "tag", text: r.cat}), $("span", {text: "source " + r.src + (r.ds ? " (" + r.ds + ")" : "")}));
  if (st.tab === "drops") {
    meta.append($("span", {class: "tag", text: r.split + ": " + r.reason}));
    const box = $("div", {class: "rec"}, meta);
    for (const m of r.prompt) box.append($("div", {class: "role", text: m[0]}), textBlock(m.slice(1)));
    if (r.bad.length) box.append($("div", {class: "meta", text: "unusable responses: " + r.bad.map(x => (x[0] || "?") + " " + x[1] + " ×" + x[2]).join(", ")}));
    if (r.resp.length) box.append(table(["model", "score", "verdict", "verdict detail", "finish", "chars", "response (start)"],
      r.resp.map(y => [y.model ?? "-", y.score == null ? "-" : y.score, y.verdict ?? "-", y.detail ?? "", (y.finish ?? "") + (y.error ? " (" + y.error + ")" : ""), y.length, y.preview])));
    else if (!r.detail) box.append($("div", {class: "role", text: "(the prompt's text and responses are recorded by fusedata build only)"}));
    else box.append($("div", {class: "role", text: "no responses"}));
    return box;
  }
  if (r.margin != null) meta.append($("span", {text: "margin " + fmt(r.margin)}));
  meta.append($("span", {text: "model " + r.model}));
  const prompt = $("div", {});
  for (const m of r.prompt) prompt.append($("div", {class: "role", text: m[0]}), textBlock(m.slice(1)));
  const cols = $("div", {class: "cols"});
  for (const x of r.resp) {
    const h = x.label + " · " + x.model + " · score " + fmt(x.score) + (x.verdict ? " · " + x.verdict : "");
    const c = $("div", {class: "resp " + (x.label.startsWith("rejected") ? "bad" : "good")}, $("h4", {text: h}));
    if (x.detail) c.append($("div", {class: "role", text: "verdict detail: " + x.detail}));
    c.append(textBlock(x.text));
    cols.append(c);
  }
  return $("div", {class: "rec"}, meta, prompt, cols);
}
function table(head, body) {
  return $("table", {}, $("tr", {}, ...head.map(h => $("th", {text: h}))),
    ...body.map(r => $("tr", {}, ...r.map(c => typeof c === "number" ? $("td", {class: "num", text: n(c)}) : $("td", {text: String(c)})))));
}
function report() {
  const list = document.getElementById("list"), R = D.report;
  if (!R) { list.append($("p", {text: "No report.json in this folder (run fusedata report OUT)."})); return; }
  list.append($("h3", {text: "Composition"}), table(["Dataset", "Total", "SFT", "DPO", "WRPO", "Dropped", "Category"],
    R.composition.map(c => [c.source + (c.source_dataset && c.source_dataset !== c.source ? " (" + c.source_dataset + ")" : ""), c.total, c.sft, c.dpo, c.wrpo, c.dropped, c.category])
      .concat([["Total", R.totals.total, R.totals.sft, R.totals.dpo, R.totals.wrpo, R.totals.dropped, "all"]])));
  if (R.drop_reasons.length) list.append($("h3", {text: "Dropped prompts"}), table(["Split", "Reason", "Prompts"], R.drop_reasons.map(d => [d.split, d.reason, d.count])));
  if (R.response_drops.length) list.append($("h3", {text: "Unusable responses"}), table(["Model", "Reason", "Responses"], R.response_drops.map(d => [d.model, d.reason, d.count])));
  for (const [k, src] of Object.entries(D.plots)) list.append($("h3", {text: k === "margins" ? "RM margins" : "Response lengths"}), $("img", {src: src, alt: k}));
}
function draw() {
  const list = document.getElementById("list");
  list.textContent = "";
  const count = document.getElementById("count"), what = document.getElementById("what"), sampled = document.getElementById("sampled");
  if (st.tab === "report") { count.textContent = ""; what.textContent = ""; sampled.textContent = ""; report(); return; }
  const sel = selected();
  count.textContent = String(sel.length);
  const set = st.tab === "drops" ? D.drops : D.sets[st.tab];
  what.textContent = NAMES[st.tab] + (st.seed !== null ? " (random sample, seed " + st.seed + ")" : "");
  sampled.textContent = set.embedded < set.total
    ? "· " + n(set.embedded) + " of " + n(set.total) + " embedded (" + (st.tab === "drops" ? "first " + n(D.drop_cap) : "stratified sample") + "); counts are of the embedded records"
    : "· all " + n(set.total) + " embedded";
  for (const r of sel.slice(0, st.shown)) list.append(card(r));
  if (sel.length > st.shown) list.append($("button", {id: "more", text: "show " + Math.min(PAGE, sel.length - st.shown) + " more", onclick: () => { st.shown += PAGE; draw(); }}));
}
function controls() {
  const c = document.getElementById("controls");
  c.textContent = "";
  if (st.tab === "report") return;
  const reset = () => { st.shown = PAGE; st.seed = null; draw(); };
  for (const [key, label] of filters()) {
    const s = $("select", {id: "f-" + key}, $("option", {value: "", text: "all"}), ...values(key).map(v => $("option", {value: v, text: v})));
    s.addEventListener("change", () => { st.f[key] = s.value; reset(); });
    c.append($("label", {text: label + " "}, s));
  }
  if (st.tab !== "drops") {
    const lo = $("input", {id: "margin-lo", type: "number", step: "any", size: 6}), hi = $("input", {id: "margin-hi", type: "number", step: "any", size: 6});
    lo.addEventListener("input", () => { st.lo = lo.value; reset(); });
    hi.addEventListener("input", () => { st.hi = hi.value; reset(); });
    if (st.tab !== "sft") c.append($("label", {text: "margin "}, lo, " – ", hi));
    const s = $("select", {id: "sort"}, ...[["none", "file order"], ["margin:desc", "margin ↓"], ["margin:asc", "margin ↑"],
      ["score:desc", "score ↓"], ["score:asc", "score ↑"], ["len:desc", "length ↓"], ["len:asc", "length ↑"]].map(([v, t]) => $("option", {value: v, text: t})));
    s.addEventListener("change", () => { st.sort = s.value; reset(); });
    c.append($("label", {text: "sort "}, s));
  }
  const q = $("input", {id: "search", type: "search", placeholder: "search prompts and responses", size: 28});
  q.addEventListener("input", () => { st.q = q.value; reset(); });
  const seedBox = $("input", {id: "seed", type: "number", size: 6, title: "seed of the random sample"});
  const rnd = $("button", {id: "random", text: "random " + PAGE});
  rnd.addEventListener("click", () => { st.seed = seedBox.value === "" ? Math.floor(Math.random() * 1e6) : Number(seedBox.value); seedBox.value = st.seed; st.shown = PAGE; draw(); });
  const all = $("button", {id: "all", text: "all", onclick: () => { st.seed = null; seedBox.value = ""; reset(); }});
  c.append(q, $("label", {text: "seed "}, seedBox), rnd, all);
}
function show(tab) {
  st.tab = tab; st.f = {}; st.q = ""; st.sort = "none"; st.seed = null; st.shown = PAGE; st.lo = st.hi = undefined;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("on", b.dataset.tab === tab);
  controls(); draw();
}
const tabs = document.getElementById("tabs");
for (const [t, label] of [["dpo", "Pairs (DPO)"], ["wrpo", "WRPO triplets"], ["sft", "SFT"], ["drops", "Drops"], ["report", "Report"]]) {
  if (t in NAMES && t !== "drops" && !D.sets[t]) continue;
  const b = $("button", {id: "tab-" + t, text: label + (t === "report" ? "" : " (" + n(t === "drops" ? D.drops.total : D.sets[t].total) + ")")});
  b.dataset.tab = t; b.addEventListener("click", () => show(t)); tabs.append(b);
}
show(D.sets.dpo ? "dpo" : Object.keys(D.sets)[0]);
</script></body></html>
"""
