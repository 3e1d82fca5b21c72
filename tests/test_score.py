"""Reward scoring: exact under any batching, padding side and order; odd inputs; custom heads.

Runs on CPU in fp32 by default.  On a GPU machine set ``FUSEDATA_TEST_DEVICE=cuda`` and
``FUSEDATA_TEST_DTYPE=bfloat16``: the tolerance then widens, since bf16 matmuls are not
bit-identical across batch shapes (the point there is "no pooling/padding bug", which
shows up as differences of the order of the scores themselves): 5% of max(1, |score|).
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import sys
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusedata.recipe import RewardModelSpec
from fusedata.score import RewardScorer, ScoreStage, plan_batches

DEVICE = os.environ.get("FUSEDATA_TEST_DEVICE", "cpu")
DTYPE = os.environ.get("FUSEDATA_TEST_DTYPE", "float32")
TOL = 1e-4 if DTYPE == "float32" else 5e-2

USER = [{"role": "user", "content": "Tell me something."}]


def spec(path: Path, **kw) -> RewardModelSpec:
    base = {"path": str(path), "device": DEVICE, "dtype": DTYPE, "max_length": 512}
    return RewardModelSpec(**{**base, **kw})


def items(n: int = 36, seed: int = 0) -> list[tuple[list[dict[str, str]], str]]:
    """Mixed lengths, and responses holding the pad and end-of-turn tokens' text."""
    rng = random.Random(seed)
    words = ["fox", "sea", "sky", "def", "return", "x", "2x", "Paris", "请", "\n"]
    out = []
    for i in range(n):
        resp = " ".join(rng.choice(words) for _ in range(rng.randint(0, 120)))
        if i % 3 == 0:
            resp += " <pad> middle <pad>"
        if i % 5 == 0:
            resp = "<|end|>" + resp
        if i % 7 == 0:
            resp += "<pad>"
        q = [{"role": "user", "content": " ".join(rng.choice(words)
                                                  for _ in range(rng.randint(1, 30)))}]
        out.append((q, resp))
    return out


@pytest.fixture(scope="module")
def rms(tmp_path_factory) -> dict[str, Path]:
    """Tiny Llama sequence-classification RMs whose tokenizers pad left and right."""
    from fusedata.tiny import build_reward_model

    d = tmp_path_factory.mktemp("rms")
    return {side: build_reward_model(d / side, seed=7, padding_side=side, head_scale=30.0)
            for side in ("left", "right")}


def loaded(s: RewardModelSpec) -> RewardScorer:
    sc = RewardScorer(s)
    sc.load()
    return sc


def max_diff(a: list, b: list) -> float:
    """Max abs difference (fp32); in bf16/fp16 relative to max(1, |score|), since one bf16
    step at a score of 5 is already 0.03."""
    assert all(x is not None for x in a + b)
    if DTYPE == "float32":
        return max(abs(x - y) for x, y in zip(a, b, strict=True))
    return max(abs(x - y) / max(1.0, abs(x)) for x, y in zip(a, b, strict=True))


# ------------------------------------------------------------------ batching plan
@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 3000), max_size=60), st.integers(1, 8192), st.integers(0, 1))
def test_plan_batches_covers_each_index_once_within_budget(lengths, budget, extra):
    batches = plan_batches(lengths, budget, extra)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    for b in batches:
        width = max(lengths[i] for i in b) + extra
        assert len(b) == 1 or len(b) * width <= budget


# ------------------------------------------------------------------ invariance
@pytest.mark.parametrize("side", ["left", "right"])
def test_score_same_alone_in_batches_and_shuffled(rms, side):
    data = items()
    sc = loaded(spec(rms[side], batch_tokens=4096))
    assert sc.left == (side == "left")
    batched = [r.score for r in sc.score(data)]
    alone = [sc.score([it])[0].score for it in data]
    assert max_diff(alone, batched) <= TOL
    perm = list(range(len(data)))
    random.Random(1).shuffle(perm)
    shuffled = [r.score for r in sc.score([data[i] for i in perm])]
    assert max_diff([batched[i] for i in perm], shuffled) <= TOL
    for budget in (300, 1000, 100_000):  # other batch compositions
        sc.spec = spec(rms[side], batch_tokens=budget)
        assert max_diff(batched, [r.score for r in sc.score(data)]) <= TOL
    assert len({round(x, 3) for x in batched}) > len(data) // 2  # the scores do differ


def test_padding_sides_agree_and_override(rms):
    """Same weights, tokenizers padding left vs right, and a recipe override: same scores."""
    data = items(20, seed=3)
    left = [r.score for r in loaded(spec(rms["left"])).score(data)]
    right = [r.score for r in loaded(spec(rms["right"])).score(data)]
    forced = loaded(spec(rms["right"], padding_side="left"))
    assert forced.left
    assert max_diff(left, right) <= TOL
    assert max_diff(left, [r.score for r in forced.score(data)]) <= TOL


def test_invariance_check_catches_the_pooling_bug(rms):
    """Pad with an id the model does not pool on (the classic bug): scores move."""
    data = items(12, seed=5)
    sc = loaded(spec(rms["right"]))
    good = [r.score for r in sc.score(data)]
    sc.pad_id = sc.tok.bos_token_id  # a real token, but not the one the model pools on
    bad = [r.score for r in sc.score(data)]
    assert max_diff(good, bad) > 0.1  # about 2 (40%) here: far above TOL in fp32 and bf16


def test_scores_match_the_model_run_alone_without_padding(rms):
    import torch

    sc = loaded(spec(rms["right"]))
    msgs, resp = USER, "The quick brown fox."
    ids, _ = sc.encode(msgs, resp)
    with torch.inference_mode():
        ref = sc.model(input_ids=torch.tensor([ids], device=sc.devices[0])).logits[0, 0].item()
    assert abs(sc.score([(msgs, resp)])[0].score - ref) <= TOL


# ------------------------------------------------------------------ truncation, odd inputs
@pytest.mark.parametrize("side", ["left", "right"])
def test_truncation_side_and_flag(rms, side):
    sc = loaded(spec(rms["right"], max_length=64, truncation_side=side))
    long = "The quick brown fox jumps. " * 50 + "THE END"
    ids, tr = sc.encode(USER, long)
    full = sc.tok(sc.tok.apply_chat_template([*USER, {"role": "assistant", "content": long}],
                                             tokenize=False), add_special_tokens=False)["input_ids"]
    assert tr and len(ids) == 64
    assert ids == (full[-64:] if side == "left" else full[:64])
    r = sc.score([(USER, long), (USER, "short")])
    assert r[0].truncated and not r[1].truncated and r[0].score is not None


def test_scorer_survives_odd_text(rms):
    sc = loaded(spec(rms["left"], max_length=256))
    odd = ["", "x" * 100_000, "\udcff\udcfe lone surrogates", "\x00\x01\x1b[31m\x7f ctrl",
           "\ud83d\ude00 paired surrogates", "<pad>", "<|end|>" * 300]
    res = sc.score([(USER, r) for r in odd] + [(None, "no prompt"), (USER, None)])
    for r in res[: len(odd)]:
        assert r.score is not None, r
    assert res[1].truncated and res[6].truncated
    assert res[2].error and "surrogate" in res[2].error
    assert res[-2].score is None and res[-2].error == "prompt_not_found"
    assert res[-1].score is None and res[-1].error == "no_response"


def _prompts_ds(tmp: Path, msgs: dict[str, list[dict[str, str]]]):
    from fusedata.engine import Dataset

    df = pl.DataFrame({"prompt_id": list(msgs), "messages": list(msgs.values())})
    p = tmp / "prompts.parquet"
    df.write_parquet(p)
    return Dataset((p,), "prompts-test")


def _responses(pairs: list[tuple[str, str | None, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        {"response_id": [f"r{i}" for i in range(len(pairs))],
         "prompt_id": [p for p, _, _ in pairs], "response": [r for _, r, _ in pairs],
         "finish_reason": [f for _, _, f in pairs]},
        schema={"response_id": pl.String, "prompt_id": pl.String, "response": pl.String,
                "finish_reason": pl.String})


def test_stage_gives_each_odd_record_a_score_or_reason(rms, tmp_path):
    prompts = _prompts_ds(tmp_path, {"p1": USER, "p2": [{"role": "user", "content": "2+2?"}]})
    recs = _responses([("p1", "", "stop"), ("p1", "y" * 100_000, "length"),
                       ("p2", "\x00\x07\x1b ctrl \ufffd\ufeff", "stop"),
                       ("p2", None, "error"), ("p9", "orphan", "stop"), ("p2", "4", "stop")])
    st_ = ScoreStage(spec(rms["right"], max_length=128), prompts, cache_dir=tmp_path / "c")
    st_.setup()
    out = st_.run(recs, 0, 1)
    st_.teardown()
    assert out.height == recs.height and out["response_id"].to_list() == recs["response_id"].to_list()
    ok = out.filter(pl.col("score").is_not_null())
    assert ok["response_id"].to_list() == ["r0", "r1", "r2", "r5"]
    assert out.filter(pl.col("score").is_null())["score_error"].to_list() == [
        "no_response", "prompt_not_found"]
    assert out["score_truncated"].to_list() == [False, True, False, False, False, False]


# ------------------------------------------------------------------ custom head (ArmoRM-style)
_ARMO_CODE = '''
"""A tiny stand-in for ArmoRM's custom head: forward returns an object with `.score`, and it
pools the token before the *first* pad token (the style of ArmoRM's own code)."""
from dataclasses import dataclass

import torch
from torch import nn
from transformers import LlamaConfig, LlamaModel, LlamaPreTrainedModel
from transformers.utils import ModelOutput


class TinyArmoConfig(LlamaConfig):
    model_type = "tiny-armo"


@dataclass
class TinyArmoOutput(ModelOutput):
    score: torch.FloatTensor | None = None
    rewards: torch.FloatTensor | None = None


class TinyArmoRM(LlamaPreTrainedModel):
    config_class = TinyArmoConfig

    def __init__(self, config):
        super().__init__(config)
        self.model = LlamaModel(config)
        self.regression_layer = nn.Linear(config.hidden_size, 3, bias=False)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, **kwargs):
        h = self.model(input_ids=input_ids, attention_mask=attention_mask,
                       position_ids=position_ids).last_hidden_state
        first_pad = torch.eq(input_ids, self.config.pad_token_id).int().argmax(-1)
        last = (first_pad - 1) % input_ids.shape[-1]
        rewards = self.regression_layer(h[torch.arange(h.shape[0], device=h.device), last])
        score = 10 * rewards @ torch.tensor([0.5, -1.0, 2.0], device=h.device, dtype=h.dtype)
        return TinyArmoOutput(score=score[:, None], rewards=rewards)
'''


@pytest.fixture(scope="module")
def armo_rm(tmp_path_factory) -> dict[str, Path]:
    """Model folders with custom code and ``auto_map``, loadable only via trust_remote_code."""
    import torch

    from fusedata.tiny import _config, build_tokenizer

    out = {}
    for side in ("left", "right"):
        d = tmp_path_factory.mktemp(f"armo-{side}")
        (d / "modeling_tiny_armo.py").write_text(_ARMO_CODE)
        modspec = importlib.util.spec_from_file_location(f"tiny_armo_{side}",
                                                         d / "modeling_tiny_armo.py")
        mod = importlib.util.module_from_spec(modspec)
        sys.modules[modspec.name] = mod
        modspec.loader.exec_module(mod)
        tok = build_tokenizer(side)
        cfg = mod.TinyArmoConfig(**_config(tok, 0).to_dict())
        torch.manual_seed(11)
        mod.TinyArmoRM(cfg).save_pretrained(d)
        tok.save_pretrained(d)
        c = json.loads((d / "config.json").read_text())
        c["auto_map"] = {"AutoConfig": "modeling_tiny_armo.TinyArmoConfig",
                         "AutoModelForSequenceClassification": "modeling_tiny_armo.TinyArmoRM"}
        (d / "config.json").write_text(json.dumps(c))
        out[side] = d
    return out


@pytest.mark.parametrize("side", ["left", "right"])
def test_custom_score_head_via_trust_remote_code(armo_rm, side):
    data = items(24, seed=9)
    sc = loaded(spec(armo_rm[side], output="score", trust_remote_code=True,
                     batch_tokens=2048))
    assert type(sc.model).__name__ == "TinyArmoRM"
    batched = [r.score for r in sc.score(data)]
    alone = [sc.score([it])[0].score for it in data]
    assert max_diff(alone, batched) <= TOL
    assert len({round(x, 3) for x in batched}) > len(data) // 2
    with pytest.raises(ValueError, match="trust_remote_code"):
        RewardScorer(spec(armo_rm[side], output="score")).load()


def test_missing_output_attribute_is_a_recorded_reason(armo_rm):
    sc = loaded(spec(armo_rm["left"], output="reward", trust_remote_code=True))
    res = sc.score(items(3))
    assert all(r.score is None and "no attribute 'reward'" in r.error for r in res)


# ------------------------------------------------------------------ replicas
def test_two_replicas_split_batches_and_merge_in_order(rms):
    data = items(30, seed=2)
    one = loaded(spec(rms["left"], batch_tokens=1500))
    two = loaded(spec(rms["left"], batch_tokens=1500, devices=[DEVICE, DEVICE]))
    assert len(two.models) == 2 and two.models[0] is not two.models[1]
    a = [r.score for r in one.score(data)]
    b = [r.score for r in two.score(data)]
    assert max_diff(a, b) <= TOL
    n_batches = sum(one.batches_run)
    assert two.batches_run == [(n_batches + 1) // 2, n_batches // 2] and n_batches >= 4
