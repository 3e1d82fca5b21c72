"""The composition report: numbers against the selection tables, files, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from click.testing import CliRunner

from fusedata.cli import cli
from fusedata.export import build_tables
from fusedata.layout import set_dir
from fusedata.recipe import Selection
from fusedata.report import write_report
from fusedata.select import select_tables

from . import selection_oracle as bench

CFG = Selection(split={"instruction": {"sft": 0.4},
                       "math": {"mode": "pair_first", "dpo_share": 0.3},
                       "code": {"mode": "pair_first", "dpo_share": 0.3}})


def _export(out: Path, target: bool = False):
    resp, meta = bench.make_data(300, seed=1, n_models=3, target=target)
    # 5 prompts nobody answered: they must still count in the totals
    extra = pl.DataFrame({"prompt_id": [f"zz{i}" for i in range(5)],
                          "category": ["math"] * 5, "source": ["openmath"] * 5})
    meta = pl.concat([meta, extra])
    prompts = meta.with_columns(
        messages=pl.concat_list(pl.struct(role=pl.lit("user"),
                                          content=pl.concat_str(pl.lit("q "), "prompt_id"))),
        source_dataset=pl.col("source").replace_strict(
            {"ultrafeedback": "openbmb/UltraFeedback", "openmath": "nvidia/OpenMathInstruct-2",
             "leetcode": "/data/leetcode.jsonl"}))
    sel = select_tables(resp, meta, CFG)
    # export's own tables (WRPO in its published shape, chosen = [y_ws, y_wt])
    for name, df in build_tables(sel, prompts).items():
        set_dir(out, name).mkdir(parents=True)
        df.write_parquet(set_dir(out, name) / "train-00000-of-00001.parquet")
    sel["drops"].write_parquet(out / "drops.parquet")
    return sel, meta


def test_report_counts_match_the_selection(tmp_path):
    sel, meta = _export(tmp_path)
    rep = write_report(tmp_path)
    comp = {r["source"]: r for r in rep["composition"]}
    totals = meta.group_by("source").len()
    for src, n in totals.iter_rows():
        assert comp[src]["total"] == n
        assert comp[src]["sft"] == sel["sft"].filter(pl.col("source") == src).height
        assert comp[src]["dpo"] == sel["dpo"].filter(pl.col("source") == src).height
        assert comp[src]["sft"] + comp[src]["dpo"] + comp[src]["dropped"] == n
    assert comp["openmath"]["category"] == "math"
    assert rep["totals"]["total"] == meta.height
    d = sel["drops"]
    prompt_level = d.filter(pl.col("split") != "responses")
    assert sum(x["count"] for x in rep["drop_reasons"]) == prompt_level.height
    assert {"split": "sft", "reason": "no_responses", "count": 5} in rep["drop_reasons"]
    assert sum(x["count"] for x in rep["response_drops"]) == d.height - prompt_level.height
    assert sum(x["count"] for x in rep["sft_by_model"]) == sel["sft"].height
    assert abs(sum(x["share"] for x in rep["dpo_by_model"]) - 1) < 1e-3
    assert rep["margins"]["dpo"]["min"] >= 0.01 - 1e-9 and rep["margins"]["dpo"]["max"] <= 0.1
    for png in rep["plots"].values():
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "report.md").read_text()
    assert "](report/margins.png)" in md and "](report/lengths.png)" in md
    assert "[ultrafeedback](https://huggingface.co/datasets/openbmb/UltraFeedback)" in md
    assert "leetcode (`leetcode.jsonl`)" in md
    assert "| **Total** | " + f"{meta.height:,}" in md
    assert json.loads((tmp_path / "report.json").read_text())["totals"] == rep["totals"]


def test_report_with_wrpo_and_cli_regenerates(tmp_path):
    sel, _ = _export(tmp_path, target=True)
    assert sel["wrpo"].height > 0
    res = CliRunner().invoke(cli, ["report", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "WRPO Count" in res.output
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["totals"]["wrpo"] == sel["wrpo"].height
    assert "wrpo" in rep["margins"] and "wrpo chosen_target" in rep["lengths"]
    assert (tmp_path / "report.md").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = CliRunner().invoke(cli, ["report", str(empty)])
    assert bad.exit_code != 0 and "no exported" in bad.output
