"""End-to-end builds on tiny random-weight models: outputs, caching, partial re-runs."""

from __future__ import annotations

import polars as pl
import pytest
from click.testing import CliRunner

from fusedata.build import build
from fusedata.cli import cli
from fusedata.recipe import load_recipe

from .conftest import demo_recipe_dict, write_recipe


def _build(path, **kw):
    return build(load_recipe(path), path, progress=False, **kw)


def _stage(res, prefix):
    return [r for name, r in res.stages if name.startswith(prefix)]


def test_build_outputs_load_with_datasets(tiny_models, tmp_path):
    import datasets

    out = tmp_path / "out"
    rec = write_recipe(tmp_path / "r.yaml", demo_recipe_dict(tiny_models, out))
    res = _build(rec)
    assert res.files["sft"] and res.files["dpo"]
    sft = datasets.load_dataset("parquet", data_files=[str(f) for f in res.files["sft"]],
                                split="train")
    dpo = datasets.load_dataset("parquet", data_files=[str(f) for f in res.files["dpo"]],
                                split="train")
    assert len(sft) > 0 and len(dpo) > 0
    row = sft[0]
    assert row["messages"][-1]["role"] == "assistant"
    assert row["messages"][0]["role"] in ("user", "system")
    d = dpo[0]
    assert d["prompt"][-1]["role"] == "user"
    assert d["chosen"][0]["role"] == "assistant" and d["rejected"][0]["role"] == "assistant"
    assert 0.01 <= d["score_chosen"] - d["score_rejected"] <= 0.1
    # every response of every prompt was sampled: 24 prompts x 3 samples per model
    samples = _stage(res, "sample[")
    assert [s.rows_out for s in samples] == [72, 72]
    # prompts are split, never in both sets
    assert not set(sft["prompt_id"]) & set(dpo["prompt_id"])
    # the bad rows of the source file were dropped with reasons, not silently
    dropped = pl.read_parquet(next((out / ".work" / "prompts").glob("inst-*/dropped.parquet")))
    assert sorted(dropped["reason"]) == ["duplicate", "empty_prompt", "missing_field:instruction"]


def test_rerun_is_cached_and_loads_no_model(tiny_models, tmp_path, monkeypatch):
    rec = write_recipe(tmp_path / "r.yaml", demo_recipe_dict(tiny_models, tmp_path / "out"))
    first = _build(rec)
    before = {f: f.stat().st_mtime_ns for fs in first.files.values() for f in fs}

    import fusedata.backends.hf as hf
    import fusedata.score as score

    def boom(*a, **k):
        raise AssertionError("a cached re-run must not load a model")

    monkeypatch.setattr(hf.TransformersSampler, "load", boom)
    monkeypatch.setattr(score.RewardScorer, "load", boom)
    again = _build(rec)
    assert all(r.cached for _, r in again.stages)
    after = {f: f.stat().st_mtime_ns for fs in again.files.values() for f in fs}
    assert before == after


def test_changing_one_model_resamples_only_that_model(tiny_models, tmp_path):
    d = demo_recipe_dict(tiny_models, tmp_path / "out")
    rec = write_recipe(tmp_path / "r.yaml", d)
    _build(rec)
    d["models"][1]["sampling"]["temperature"] = 0.9
    write_recipe(rec, d)
    res = _build(rec)
    cached = {name: r.cached for name, r in res.stages}
    assert cached["sample[policy-a]"] and cached["score[policy-a]"]
    assert not cached["sample[policy-b]"] and not cached["score[policy-b]"]
    assert not cached["select[all]"]


def test_stages_option_stops_early(tiny_models, tmp_path):
    rec = write_recipe(tmp_path / "r.yaml", demo_recipe_dict(tiny_models, tmp_path / "out"))
    res = _build(rec, stages=("sample",))
    names = [n for n, _ in res.stages]
    assert any(n.startswith("sample[") for n in names)
    assert not any(n.startswith(("score[", "select[")) for n in names)
    assert not res.files


def test_cli_build_dry_run_and_inspect(tiny_models, tmp_path):
    rec = write_recipe(tmp_path / "r.yaml", demo_recipe_dict(tiny_models, tmp_path / "out"))
    runner = CliRunner()
    dry = runner.invoke(cli, ["build", str(rec), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "estimated generations: 144" in dry.output
    assert not (tmp_path / "out").exists()
    res = runner.invoke(cli, ["build", str(rec), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "SFT" in res.output and "DPO" in res.output and str(tmp_path / "out") in res.output
    ins = runner.invoke(cli, ["inspect", str(tmp_path / "out")])
    assert ins.exit_code == 0 and "SFT:" in ins.output and "DPO:" in ins.output
    bad = runner.invoke(cli, ["build", str(rec), "--stages", "sampel"])
    assert bad.exit_code != 0 and "unknown stage 'sampel'" in bad.output


@pytest.mark.parametrize(("response", "truncated", "note"), [
    ("", False, None),
    ("x" * 100_000, True, None),
    ("\udcff\udcfe bad surrogates \x00", False,
     "sanitized: lone surrogates replaced by U+FFFD before scoring"),
])
def test_scorer_survives_odd_responses(tiny_models, response, truncated, note):
    """Each odd response still gets a real score; what was done to it is recorded."""
    import math

    from fusedata.recipe import RewardModelSpec
    from fusedata.score import RewardScorer

    s = RewardScorer(RewardModelSpec(path=str(tiny_models["reward"]), max_length=256))
    s.load()
    (out,) = s.score([([{"role": "user", "content": "hi"}], response)])
    assert isinstance(out.score, float) and math.isfinite(out.score)
    assert out.truncated is truncated
    assert out.error == note
