"""The score cache: re-annotation sends only new (prompt, response) pairs to the reward model."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import polars as pl
import pytest

import fusedata.score as score_mod
from fusedata.build import build
from fusedata.recipe import RewardModelSpec, load_recipe
from fusedata.score import ScoreStage

from .conftest import demo_recipe_dict, write_recipe
from .test_score import _prompts_ds, _responses


@pytest.fixture
def rm_calls(monkeypatch) -> list[tuple[str, str]]:
    """Every (last user text, response) the reward model is asked to score."""
    calls: list[tuple[str, str]] = []
    real = score_mod.RewardScorer.score

    def counting(self, items):
        calls.extend((m[-1]["content"] if m else "", r) for m, r in items)
        return real(self, items)

    monkeypatch.setattr(score_mod.RewardScorer, "score", counting)
    return calls


def _stage(rm, prompts, cache_dir, **kw):
    return ScoreStage(RewardModelSpec(path=str(rm), device="cpu", dtype="float32", **kw),
                      prompts, cache_dir=cache_dir)


def _run(stage, recs):
    stage.setup()
    try:
        return stage.run(recs, 0, 1)
    finally:
        stage.teardown()


def test_stage_reuses_cached_scores_and_loads_no_model_when_all_hit(tiny_models, tmp_path,
                                                                    rm_calls, monkeypatch):
    prompts = _prompts_ds(tmp_path, {"p1": [{"role": "user", "content": "a"}],
                                     "p2": [{"role": "user", "content": "b"}]})
    first = _responses([("p1", "one", "stop"), ("p2", "two", "stop"), ("p2", "", "stop")])
    out1 = _run(_stage(tiny_models["reward"], prompts, tmp_path / "c"), first)
    assert len(rm_calls) == 3 and out1["score"].null_count() == 0
    # same pairs plus new ones (one reuses a cached pair's text under another prompt)
    second = _responses([("p2", "two", "stop"), ("p1", "three", "stop"), ("p1", "one", "stop"),
                         ("p2", "one", "stop"), ("p2", "", "stop")])
    out2 = _run(_stage(tiny_models["reward"], prompts, tmp_path / "c"), second)
    assert rm_calls[3:] == [("a", "three"), ("b", "one")]
    s1 = {(p, r): s for p, r, s in
          first.with_columns(out1["score"]).select("prompt_id", "response", "score").iter_rows()}
    for pid, resp, s in second.with_columns(out2["score"]).select(
            "prompt_id", "response", "score").iter_rows():
        if (pid, resp) in s1:
            assert s == s1[(pid, resp)]
    # everything cached: the model is never loaded
    real_load = score_mod.RewardScorer.load
    monkeypatch.setattr(score_mod.RewardScorer, "load",
                        lambda self: pytest.fail("loaded the RM for cached scores"))
    out3 = _run(_stage(tiny_models["reward"], prompts, tmp_path / "c"), second)
    assert out3["score"].to_list() == out2["score"].to_list()
    # another RM setting (max_length) is another cache; cache: false bypasses it
    parts = list((tmp_path / "c").glob("*/part-*.parquet"))
    assert len({p.parent for p in parts}) == 1 and len(parts) == 2
    monkeypatch.setattr(score_mod.RewardScorer, "load", real_load)
    n = len(rm_calls)
    for kw in ({"max_length": 300}, {"cache": False}):
        _run(_stage(tiny_models["reward"], prompts, tmp_path / "c", **kw), first)
    assert len(rm_calls) == n + 6


def _build(path):
    return build(load_recipe(path), path, progress=False)


def _scored(res, prefix="score[") -> pl.DataFrame:
    return pl.concat([r.dataset.read() for n, r in res.stages if n.startswith(prefix)])


def test_re_annotation_sends_only_new_responses_to_the_rm(tiny_models, tmp_path, rm_calls):
    """Adding a source model, then a prompt source: only new (prompt, response) pairs scored.

    The engine's own cache already skips unchanged models' score stages; a new prompt source
    changes every score stage's key, and there the score cache does the saving.
    """
    d = demo_recipe_dict(tiny_models, tmp_path / "out")
    d["prompts"][0]["limit"] = 6
    d["prompts"][1]["limit"] = 4
    for m in d["models"]:
        m["samples"] = {"default": 2}
        m["sampling"]["max_tokens"] = 12
    rec = write_recipe(tmp_path / "r.yaml", d)
    old = _scored(_build(rec))
    n = len(rm_calls)
    assert n == old.height > 0

    d["models"].append({"name": "policy-c", "path": str(tiny_models["target"]),
                        "sampling": {"max_tokens": 12, "seed": 3}, "samples": {"default": 2}})
    write_recipe(rec, d)
    res = _build(rec)
    new = _scored(res, "score[policy-c]")
    assert new.height > 0
    assert sorted(r for _, r in rm_calls[n:]) == sorted(new["response"].to_list())
    n = len(rm_calls)

    extra = tmp_path / "extra.jsonl"
    extra.write_text("".join(json.dumps({"q": f"Extra question {i}?"}) + "\n" for i in range(3)))
    d["prompts"].append({"name": "extra", "path": str(extra), "fields": {"prompt": "q"},
                         "category": "instruction"})
    write_recipe(rec, d)
    before = _scored(res)
    res = _build(rec)
    assert not any(r.cached for name, r in res.stages if name.startswith("score["))
    after = _scored(res)
    seen = set(zip(before["prompt_id"], before["response"], strict=True))
    fresh = [k for k in zip(after["prompt_id"], after["response"], strict=True)
             if k not in seen]
    assert 0 < len(rm_calls) - n == len(fresh) < after.height / 2
    by_key = {(p, r): s for p, r, s in before.select("prompt_id", "response", "score").iter_rows()}
    for pid, resp, s in after.select("prompt_id", "response", "score").iter_rows():
        if (pid, resp) in by_key:
            assert s == by_key[(pid, resp)]


# --------------------------------------------------- which model a cache belongs to
SHA_A, SHA_B = "a" * 40, "b" * 40


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face cache folder, offline: the only place a Hub id resolves."""
    from huggingface_hub import constants

    folder = tmp_path / "hf-cache"
    folder.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(folder))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return folder


def _snapshot(cache: Path, repo: str, sha: str, model: Path) -> None:
    """Lay ``model``'s files out as the Hub cache does, with refs/main -> ``sha``."""
    root = cache / f"models--{repo.replace('/', '--')}"
    snap = root / "snapshots" / sha
    snap.mkdir(parents=True)
    for f in model.iterdir():
        if f.is_file():
            shutil.copy(f, snap / f.name)
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(sha)


def test_hub_model_is_keyed_by_its_resolved_commit_offline(hub_cache, tiny_models):
    assert score_mod.model_identity("org/rm") is None  # never downloaded, offline
    _snapshot(hub_cache, "org/rm", SHA_A, tiny_models["reward"])
    spec = RewardModelSpec(path="org/rm")
    key_a = score_mod.rm_cache_key(spec, "float32", score_mod.model_identity("org/rm"))
    assert score_mod.model_identity("org/rm") == {"commit": SHA_A}
    (hub_cache / "models--org--rm" / "refs" / "main").write_text(SHA_B)  # the model moved
    assert score_mod.rm_cache_key(spec, "float32", score_mod.model_identity("org/rm")) != key_a


def test_hub_commit_asks_the_hub_when_online(hub_cache, tiny_models, monkeypatch):
    from types import SimpleNamespace

    from huggingface_hub import HfApi, constants

    _snapshot(hub_cache, "org/rm", SHA_A, tiny_models["reward"])
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    asked: list[tuple[str, str]] = []

    def info(self, repo_id, revision=None, **kw):
        asked.append((repo_id, revision))
        return SimpleNamespace(sha=SHA_B)

    monkeypatch.setattr(HfApi, "model_info", info)
    assert score_mod.hub_commit("org/rm") == SHA_B  # the Hub's answer, not the stale ref
    assert asked == [("org/rm", "main")]

    def unreachable(self, repo_id, revision=None, **kw):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(HfApi, "model_info", unreachable)
    assert score_mod.hub_commit("org/rm") == SHA_A  # what from_pretrained would load


def test_updated_hub_rm_rescores_and_loads_the_keyed_commit(hub_cache, tiny_models, tmp_path,
                                                           rm_calls):
    """A new commit on the Hub: new stage key, new score cache, model loaded at that commit."""
    prompts = _prompts_ds(tmp_path, {"p1": [{"role": "user", "content": "a"}]})
    recs = _responses([("p1", "one", "stop"), ("p1", "two", "stop")])
    _snapshot(hub_cache, "org/rm", SHA_A, tiny_models["reward"])
    first = _stage("org/rm", prompts, tmp_path / "c")
    out1 = _run(first, recs)
    assert first.scorer.revision == SHA_A and len(rm_calls) == 2
    assert out1["score"].null_count() == 0
    again = _stage("org/rm", prompts, tmp_path / "c")
    _run(again, recs)
    assert len(rm_calls) == 2  # same commit: every score from the cache
    _snapshot(hub_cache, "org/rm", SHA_B, tiny_models["reward"])  # refs/main -> B
    moved = _stage("org/rm", prompts, tmp_path / "c")
    assert moved.fingerprint() != first.fingerprint()
    _run(moved, recs)
    assert moved.scorer.revision == SHA_B and len(rm_calls) == 4
    assert len(list((tmp_path / "c").iterdir())) == 2


def test_local_rm_is_keyed_by_config_and_weight_files(tiny_models, tmp_path):
    rm = tmp_path / "rm"
    shutil.copytree(tiny_models["reward"], rm)

    def key() -> str:
        return score_mod.rm_cache_key(RewardModelSpec(path=str(rm)), "float32",
                                      score_mod.model_identity(str(rm)))

    k0 = key()
    cfg = rm / "config.json"
    cfg.write_text(cfg.read_text())  # rewritten, same content: same model
    (rm / "README.md").write_text("notes")  # documentation does not change scores
    assert key() == k0
    data = json.loads(cfg.read_text())
    data["tiny_note"] = 1
    cfg.write_text(json.dumps(data))
    k1 = key()
    assert k1 != k0
    (weights,) = [f for f in rm.iterdir() if f.suffix in score_mod.WEIGHT_SUFFIXES]
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # retrained in place
    assert key() != k1
