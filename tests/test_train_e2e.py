"""The demo's output trains through `sft`, then `dpo --length-normalize`, then `wrpo` on CPU.

All three sets come straight from a real build: the demo recipe plus a target model,
so selection itself makes the WRPO triplets the trainer reads from ``OUT/data/wrpo/``.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from fusedata.build import build
from fusedata.cli import cli
from fusedata.recipe import load_recipe

from .conftest import write_recipe
from .test_export_trl import wrpo_recipe_dict

pytest.importorskip("trl")


@pytest.fixture(scope="module")
def demo_out(tiny_models, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train_e2e")
    out = tmp / "out"
    rec = write_recipe(tmp / "r.yaml", wrpo_recipe_dict(tiny_models, out))
    res = build(load_recipe(rec), rec, progress=False)
    assert res.files["sft"] and res.files["dpo"] and res.files["wrpo"]
    return out


def _invoke(*args: str) -> str:
    res = CliRunner().invoke(cli, ["train", *args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def _changed(a, b) -> bool:
    return any(not (a[k] == b[k]).all() for k in a)


def test_sft_then_ln_dpo_then_wrpo(demo_out, tiny_models, tmp_path):
    sft_dir, dpo_dir, wrpo_dir = tmp_path / "sft", tmp_path / "dpo", tmp_path / "wrpo"
    # --batch-size 4 = --per-device-batch: one forward per optimizer step keeps this fast
    common = ["--max-steps", "3", "--save-steps", "1", "--lr", "1e-3", "--per-device-batch", "4",
              "--batch-size", "4", "--max-length", "256", "--no-gradient-checkpointing"]
    out = _invoke("sft", str(demo_out), "--model", str(tiny_models["target"]),
                  "--output-dir", str(sft_dir), *common)
    assert f"model saved to {sft_dir}" in out
    # checkpoints every --save-steps, only the last two kept
    assert sorted(p.name for p in sft_dir.glob("checkpoint-*")) == ["checkpoint-2",
                                                                    "checkpoint-3"]
    assert _changed(_weights(tiny_models["target"]), _weights(sft_dir))

    _invoke("dpo", str(demo_out), "--model", str(sft_dir), "--length-normalize", "--beta", "10",
            "--output-dir", str(dpo_dir), *common)
    assert _changed(_weights(sft_dir), _weights(dpo_dir))
    args = json.loads((dpo_dir / "checkpoint-3" / "trainer_state.json").read_text())
    assert args["max_steps"] == 3 and args["log_history"][0]["loss"] == pytest.approx(
        0.6931, abs=1e-3)  # policy == reference at the first step

    _invoke("wrpo", str(demo_out), "--model", str(sft_dir), "--alpha-max", "0.3",
            "--output-dir", str(wrpo_dir), *common)
    assert _changed(_weights(sft_dir), _weights(wrpo_dir))
    hist = json.loads((wrpo_dir / "checkpoint-3" / "trainer_state.json").read_text())
    assert [h["alpha"] for h in hist["log_history"] if "alpha" in h] == pytest.approx(
        [0.0, 0.1, 0.2])

    # --resume continues from the newest checkpoint instead of starting over: a marker put
    # into checkpoint-3's state must reappear in checkpoint-4's (a fresh run would not have it)
    st3 = sft_dir / "checkpoint-3" / "trainer_state.json"
    s3 = json.loads(st3.read_text())
    s3["log_history"].insert(0, {"fusedata_marker": 1, "step": 0})
    st3.write_text(json.dumps(s3))
    _invoke("sft", str(demo_out), "--model", str(tiny_models["target"]),
                  "--output-dir", str(sft_dir), *common[2:], "--max-steps", "4", "--resume")
    state = json.loads((sft_dir / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["log_history"][0] == {"fusedata_marker": 1, "step": 0}
    assert [h["step"] for h in state["log_history"] if "loss" in h] == [1, 2, 3, 4]
    assert sorted(p.name for p in sft_dir.glob("checkpoint-*")) == ["checkpoint-3",
                                                                    "checkpoint-4"]


def test_help_shows_presets_and_missing_sets_are_named(tmp_path):
    res = CliRunner().invoke(cli, ["train", "sft", "--help"])
    assert res.exit_code == 0
    for name in ("llama3.1-8b", "qwen2.5-7b", "gemma2-9b", "llama3.2-1b", "llama3.2-3b"):
        assert name in res.output
    dres = CliRunner().invoke(cli, ["train", "dpo", "--help"])
    assert "--length-normalize" in dres.output and "8e-07" in dres.output
    (tmp_path / "empty").mkdir()
    bad = CliRunner().invoke(cli, ["train", "wrpo", str(tmp_path / "empty"), "--model", "x"])
    assert bad.exit_code != 0 and "no wrpo set" in bad.output


def test_missing_trl_names_the_extra(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "trl", None)  # makes `import trl` raise ImportError
    monkeypatch.delitem(sys.modules, "fusedata.train.wrpo", raising=False)
    (tmp_path / "o").mkdir()
    for verb in ("sft", "wrpo"):
        res = CliRunner().invoke(cli, ["train", verb, str(tmp_path / "o"), "--model", "x"])
        assert res.exit_code != 0 and "fusedata[train]" in res.output, res.output
