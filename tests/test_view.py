"""``fusedata view``: the sample, the escaping, the build step, and the page in a real browser.

The browser test renders the demo's ``view.html`` in headless Chromium (Debian's
``chromium``; ``.ci/run`` installs it) and asserts on the DOM after the page's script ran
and after filters were changed through the page's own controls.  It writes a screenshot
and prints its path.  It is skipped, saying why, only when no browser is installed.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import polars as pl
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from fusedata.build import build
from fusedata.cli import cli
from fusedata.layout import set_files
from fusedata.recipe import load_recipe
from fusedata.view import (
    HEAD,
    TAIL,
    TEXT_CAP,
    collect,
    quotas,
    record_verdicts,
    render,
    stratified_sample,
    write_view,
)

from .browser import Browser, find_browser
from .conftest import ROOT

HOSTILE = ('</script><script>window.__pwned=1;alert(1)</script><!-- --> '
           '<img src=x onerror="window.__pwned=2"> &amp; \u2028 <script>alert(1)</script>')


@pytest.fixture(scope="module")
def demo_out(tiny_models, tmp_path_factory) -> Path:
    """The demo recipe (recipes/demo.yaml) built with the session's tiny models."""
    tmp = tmp_path_factory.mktemp("viewdemo")
    d = yaml.safe_load((ROOT / "recipes" / "demo.yaml").read_text())
    d.pop("demo")
    d["output_dir"] = str(tmp / "out")
    for s in d["prompts"]:
        s["path"] = str(ROOT / "recipes" / s["path"])
    for m in d["models"]:
        if "path" in m:
            m["path"] = str(tiny_models[m["name"]])
    d["reward_model"]["path"] = str(tiny_models["reward"])
    rec = tmp / "demo.yaml"
    rec.write_text(yaml.safe_dump(d, sort_keys=False))
    build(load_recipe(rec), rec, progress=False)
    return tmp / "out"


def _embedded(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S)
    assert m, "no data element"
    return json.loads(m.group(1))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 500), min_size=1, max_size=12), st.integers(0, 3000))
def test_quotas(sizes, n):
    q = quotas(sizes, n)
    assert sum(q) == min(n, sum(sizes))
    assert all(0 <= a <= s for a, s in zip(q, sizes, strict=True))
    if len(sizes) <= n:  # every group is seen when the sample allows it
        assert all(a >= 1 for a in q)
    for a, s in zip(q, sizes, strict=True):  # proportional, up to the one-per-group floor
        assert abs(a - n * s / sum(sizes)) <= 1 + len(sizes) or n >= sum(sizes)


def test_stratified_sample_keeps_every_group_and_is_seeded():
    n = 20_000
    df = pl.DataFrame({"i": range(n),
                       "category": ["math"] * 15_000 + ["code"] * 4_990 + [None] * 10,
                       "source_model": [f"m{i % 4}" for i in range(19_990)] + ["rare"] * 10})
    s = stratified_sample(df, 500, seed=1)
    assert s.height == 500
    assert s["i"].is_sorted()  # file order kept
    groups = s.group_by("category", "source_model").len()
    assert groups.height == df.group_by("category", "source_model").len().height == 9
    math = s.filter(pl.col("category") == "math").height
    assert abs(math - 500 * 15_000 / n) <= 5
    assert s.equals(stratified_sample(df, 500, seed=1))
    assert not s.equals(stratified_sample(df, 500, seed=2))
    assert stratified_sample(df.head(100), 500, seed=1).equals(df.head(100))


def _mini_out(out: Path, texts: list[str], prompts: list[str] | None = None) -> None:
    """An OUT with a DPO set of the given chosen texts (invented rows, for escaping)."""
    n = len(texts)
    prompts = prompts or [f"question {i}" for i in range(n)]
    msg = lambda c, role="assistant": [{"role": role, "content": c}]  # noqa: E731
    df = pl.DataFrame({
        "prompt": [msg(p, "user") for p in prompts], "chosen": [msg(t) for t in texts],
        "rejected": [msg("no") for _ in texts], "prompt_id": [f"p{i:04d}" for i in range(n)],
        "score_chosen": [float("nan")] + [0.5] * (n - 1), "score_rejected": [0.45] * n,
        "margin": [0.05] * n,
        "source_model": ["m"] * n, "category": ["instruction"] * n, "source": ["s"] * n,
        "source_dataset": ["org/ds"] * n})
    (out / "data" / "dpo").mkdir(parents=True)
    df.write_parquet(out / "data" / "dpo" / "train-00000-of-00001.parquet")


def test_hostile_text_cannot_leave_the_data_element(tmp_path):
    _mini_out(tmp_path, [HOSTILE, "x" * (TEXT_CAP + 10)], prompts=[HOSTILE, "q"])
    path = write_view(tmp_path)
    html = path.read_text()
    data_el = re.search(r'id="data">(.*?)</script>', html, re.S).group(1)
    assert "<" not in data_el and ">" not in data_el and "\u2028" not in data_el
    assert html.count("</script>") == 2  # the data element's and the script's own
    rows = _embedded(html)["sets"]["dpo"]["rows"]
    assert rows[0]["resp"][0]["text"] == [HOSTILE, 0, ""]  # round-trips unchanged
    assert rows[0]["prompt"] == [["user", HOSTILE, 0, ""]]
    assert rows[0]["score"] is None and rows[1]["score"] == 0.5  # NaN: no JSON for it
    head, cut, tail = rows[1]["resp"][0]["text"]
    assert (len(head), cut, len(tail)) == (HEAD, TEXT_CAP + 10 - HEAD - TAIL, TAIL)
    assert "innerHTML" not in html and "http://" not in html and "https://" not in html


def test_pair_verdicts_reach_the_page(tmp_path):
    """Invented rows: a math pair's chosen/rejected verdicts, found by prompt id and text."""
    _mini_out(tmp_path, ["x = 4", "x = 5"])
    sel = {"dpo": pl.LazyFrame({"prompt_id": ["p0000", "p0001"], "chosen_id": ["a", "c"],
                                "rejected_id": ["b", "d"]})}
    resp = pl.LazyFrame({"response_id": ["a", "b", "c", "d", "e"],
                         "prompt_id": ["p0000", "p0000", "p0001", "p0001", "p0001"],
                         "response": ["x = 4", "no", "x = 5", "no", "x = 5"],
                         "verdict": ["correct", "incorrect", "correct", None, "incorrect"],
                         "verdict_detail": ["ok", "wrong", "ok", None, "other"]})
    v = record_verdicts(sel, [resp])
    assert v.height == 3  # e is in no record; d has no verdict
    v.write_parquet(tmp_path / ".fusedata-view-verdicts.parquet")
    rows = collect(tmp_path)["sets"]["dpo"]["rows"]
    assert [(x["resp"][0]["verdict"], x["resp"][1]["verdict"]) for x in rows] == \
        [("correct", "incorrect"), ("correct", None)]
    assert rows[0]["resp"][1]["detail"] == "wrong" and rows[0]["verdict"] == ["correct",
                                                                              "incorrect"]


def test_sample_is_stated_and_report_is_embedded(demo_out):
    data = collect(demo_out, sample=3)
    dpo = data["sets"]["dpo"]
    n = sum(pl.scan_parquet(f).select(pl.len()).collect().item()
            for f in set_files(demo_out, "dpo"))
    assert dpo["total"] == n and dpo["embedded"] == len(dpo["rows"]) >= 3 - 1
    assert data["report"]["totals"]["dpo"] == n
    assert data["plots"]["margins"].startswith("data:image/png;base64,iVBORw0KGgo")
    drops = pl.read_parquet(demo_out / "drops.parquet")
    assert data["drops"]["total"] == drops.filter(pl.col("split") != "responses").height > 0
    # each dropped prompt comes with its text and every response the build verified
    verified = pl.read_parquet(list((demo_out / ".work" / "verify").glob("*/*.parquet")))
    for row in data["drops"]["rows"]:
        assert row["detail"] and row["prompt"] and row["prompt"][-1][0] == "user"
        mine = verified.filter(pl.col("prompt_id") == row["id"])
        assert sorted((r["model"], r["verdict"] or "", r["length"]) for r in row["resp"]) == \
            sorted(mine.select("model", pl.col("verdict").fill_null(""),
                               pl.col("response").str.len_chars()).iter_rows())
    # every math/code record shows the verdict its response got (the sets carry none)
    full = collect(demo_out)
    sft = full["sets"]["sft"]["rows"]
    assert {r["cat"] for r in sft} >= {"math", "code"}
    for r in sft:
        text = r["resp"][0]["text"][0]
        got = verified.filter((pl.col("prompt_id") == r["id"]) & (pl.col("response") == text))
        assert r["resp"][0]["verdict"] == got["verdict"][0], r["id"]
        assert (r["verdict"] != []) == (r["cat"] in ("math", "code"))
        if r["cat"] in ("math", "code"):
            assert r["resp"][0]["detail"] == got["verdict_detail"][0]
    assert _embedded(render(data)) == data


def test_build_writes_the_view_and_a_rerun_keeps_it(demo_out, tiny_models):
    page = demo_out / "view.html"
    assert page.exists()
    before = page.stat().st_mtime_ns
    rec = demo_out.parent / "demo.yaml"
    build(load_recipe(rec), rec, progress=False)
    assert page.stat().st_mtime_ns == before  # cached like the report


def test_cli_view(demo_out, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(demo_out, out)
    (out / "view.html").unlink()
    (out / "report.json").unlink()  # the command writes a missing report first
    res = CliRunner().invoke(cli, ["view", str(out), "--sample", "2"])
    assert res.exit_code == 0, res.output
    assert f"wrote {out / 'view.html'}" in res.output
    data = _embedded((out / "view.html").read_text())
    assert data["sample"] == 2 and data["report"] is not None
    assert data["sets"]["dpo"]["embedded"] < data["sets"]["dpo"]["total"]
    # an OUT the build did not record drop details for still shows its drops
    (out / ".fusedata-view-drops.parquet").unlink()
    assert CliRunner().invoke(cli, ["view", str(out)]).exit_code == 0
    drops = _embedded((out / "view.html").read_text())["drops"]["rows"]
    assert drops and all(not r["detail"] and r["resp"] == [] for r in drops)
    bad = CliRunner().invoke(cli, ["view", str(tmp_path)])
    assert bad.exit_code != 0 and "no sft/dpo/wrpo parquet files" in bad.output


def _synthetic_200k(out: Path, n: int = 200_000) -> None:
    """An OUT with ``n`` invented DPO pairs of ~3,000 characters (5 models, 3 categories)."""
    i = pl.int_range(n, eager=True)
    text = lambda col, reps: pl.concat_str(pl.lit("answer "), col.cast(pl.String),  # noqa: E731
                                           pl.lit(" lorem ipsum dolor sit amet. " * reps))
    msg = lambda e, role: pl.concat_list(pl.struct(role=pl.lit(role), content=e))  # noqa: E731
    df = pl.DataFrame({"i": i}).select(
        prompt=msg(text(pl.col("i"), 10), "user"), chosen=msg(text(pl.col("i"), 50), "assistant"),
        rejected=msg(text(pl.col("i") + 1, 40), "assistant"),
        prompt_id=pl.col("i").cast(pl.String).str.zfill(12),
        score_chosen=pl.lit(0.5), score_rejected=pl.lit(0.45),
        margin=(pl.col("i") % 90 + 10) / 1000,
        source_model=pl.format("model-{}", pl.col("i") % 5),
        category=pl.when(pl.col("i") % 10 < 6).then(pl.lit("instruction"))
        .when(pl.col("i") % 10 < 8).then(pl.lit("math")).otherwise(pl.lit("code")),
        source=pl.lit("src"), source_dataset=pl.lit("org/ds"))
    (out / "data" / "dpo").mkdir(parents=True)
    df.write_parquet(out / "data" / "dpo" / "train-00000-of-00001.parquet")


def test_200k_pairs_page_is_small_and_quick(tmp_path):
    """Issue 20's scale acceptance: 200k DPO pairs -> under 10 MB, built in under 10 s."""
    _synthetic_200k(tmp_path)
    t0 = time.perf_counter()
    path = write_view(tmp_path)
    secs = time.perf_counter() - t0
    size = path.stat().st_size
    print(f"\n200k DPO pairs: view.html {size / 1e6:.2f} MB in {secs:.2f} s")
    assert size < 10e6 and secs < 10
    assert _embedded(path.read_text())["sets"]["dpo"]["embedded"] == 2000


@pytest.fixture
def browser():
    exe = find_browser()
    if exe is None:
        pytest.skip("no Chromium installed (Debian: apt-get install -y chromium; .ci/run "
                    "installs it): the viewer's browser test cannot run")
    with Browser(exe) as b:
        yield b


def _set(b: Browser, sel: str, value: str, event: str) -> None:
    b.eval(f"(() => {{ const e = document.querySelector({json.dumps(sel)}); "
           f"e.value = {json.dumps(value)}; "
           f"e.dispatchEvent(new Event({json.dumps(event)})); }})()")


def _count(b: Browser) -> int:
    return int(b.eval("document.getElementById('count').textContent"))


def test_200k_page_opens_in_seconds(tmp_path, browser):
    _synthetic_200k(tmp_path)
    path = write_view(tmp_path)
    t0 = time.perf_counter()
    browser.open(path.as_uri())
    assert _count(browser) == 2000
    secs = time.perf_counter() - t0
    print(f"\n200k DPO pairs: the page loaded and drew in {secs:.2f} s")
    assert secs < 5
    assert "2,000 of 200,000 embedded" in browser.eval("document.getElementById('sampled')"
                                                       ".textContent")
    _set(browser, "#f-cat", "math", "change")  # 20% of the pairs, and of the sample
    assert _count(browser) == 400


def test_page_in_chromium(demo_out, tmp_path, browser):
    out = tmp_path / "out"
    shutil.copytree(demo_out, out)
    # a response and a prompt holding HTML and </script> (an invented edit of one pair)
    f = set_files(out, "dpo")[0]
    dpo = pl.read_parquet(f)
    hostile_id = dpo["prompt_id"][0]
    dpo = dpo.with_columns(chosen=pl.when(pl.col("prompt_id") == hostile_id)
                           .then(pl.concat_list(pl.struct(role=pl.lit("assistant"),
                                                          content=pl.lit(HOSTILE))))
                           .otherwise("chosen"))
    dpo.write_parquet(f)
    write_view(out)
    b = browser
    b.call("Network.enable")
    b.open((out / "view.html").as_uri())
    urls = {e["params"]["request"]["url"] for e in b.events
            if e.get("method") == "Network.requestWillBeSent"}
    assert (out / "view.html").as_uri() in urls  # the page itself, and nothing else
    assert urls <= {(out / "view.html").as_uri()} | {u for u in urls if u.startswith("data:")}
    errors = [e for e in b.events if e.get("method") == "Runtime.exceptionThrown"]
    assert not errors, errors

    # the pair count shown is the DPO set's size
    assert b.eval("document.querySelector('.on').id") == "tab-dpo"
    assert _count(b) == dpo.height
    assert b.eval("document.querySelectorAll('#list .rec').length") == min(dpo.height, 50)

    # a category filter, through the page's own select
    cats = dpo.group_by("category").len().sort("len")
    for cat, n in cats.iter_rows():
        _set(b, "#f-cat", cat, "change")
        assert _count(b) == n, cat
    _set(b, "#f-cat", "", "change")
    assert _count(b) == dpo.height

    # search for a known prompt finds it
    row = dpo.filter(pl.col("prompt_id") != hostile_id).row(0, named=True)
    ptext = row["prompt"][-1]["content"]
    _set(b, "#search", ptext, "input")
    hits = dpo.filter(pl.col("prompt").list.eval(pl.element().struct.field("content")
                                                 .str.contains(ptext, literal=True)).list.any())
    assert _count(b) == hits.height >= 1
    shown = b.eval("[...document.querySelectorAll('#list .pid')].map(e => e.textContent)")
    assert row["prompt_id"] in shown

    # the hostile response is shown as text, and nothing in it ran
    _set(b, "#search", "alert(1)", "input")
    assert _count(b) == 1
    assert b.eval("document.querySelector('#list .pid').textContent") == hostile_id
    texts = b.eval("[...document.querySelectorAll('#list pre')].map(e => e.textContent)")
    assert HOSTILE in texts and any("<script>alert(1)</script>" in t for t in texts)
    assert b.eval("document.querySelectorAll('#list script, #list img').length") == 0
    assert b.eval("typeof window.__pwned") == "undefined"
    assert b.dialogs() == []

    # the seeded random sample says its seed and is repeatable
    _set(b, "#search", "", "input")
    _set(b, "#seed", "7", "input")
    b.eval("document.getElementById('random').click()")
    assert "seed 7" in b.eval("document.getElementById('what').textContent")
    first = b.eval("[...document.querySelectorAll('#list .pid')].map(e => e.textContent)")
    assert _count(b) == len(first) == min(50, dpo.height)
    assert set(first) <= set(dpo["prompt_id"]) and first != list(dpo["prompt_id"])[:len(first)]
    b.eval("document.getElementById('random').click()")
    assert b.eval("[...document.querySelectorAll('#list .pid')].map(e => e.textContent)") == first
    b.eval("document.getElementById('all').click()")

    # sorting by margin, the other tabs, the report's table and plots
    _set(b, "#sort", "margin:desc", "change")
    top = b.eval("document.querySelector('#list .pid').textContent")
    assert top == dpo.sort("margin", descending=True)["prompt_id"][0]
    for tab, name in (("wrpo", "wrpo"), ("sft", "sft")):
        b.eval(f"document.getElementById('tab-{tab}').click()")
        assert _count(b) == pl.read_parquet(set_files(out, name)).height
    sft = pl.read_parquet(set_files(out, "sft"))
    _set(b, "#f-verdict", "passed", "change")  # SFT code answers all passed their tests
    assert _count(b) == sft.filter(pl.col("category") == "code").height > 0
    assert "passed" in b.eval("document.querySelector('#list h4').textContent")
    b.eval("document.getElementById('tab-drops').click()")
    drops = pl.read_parquet(out / "drops.parquet").filter(pl.col("split") != "responses")
    assert _count(b) == drops.height
    b.eval("document.getElementById('tab-report').click()")
    assert b.eval("document.querySelectorAll('#list img').length") == 2
    assert b.eval("document.querySelector('#list table').textContent").startswith("Dataset")

    b.eval("document.getElementById('tab-dpo').click()")
    shot = b.screenshot(tmp_path / "view.png")
    print(f"\nscreenshot of the demo's view.html: {shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    errors = [e for e in b.events if e.get("method") == "Runtime.exceptionThrown"]
    assert not errors, errors
