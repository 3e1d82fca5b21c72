"""Selection rules on hand-built score tables: one test per rule and edge case."""

from __future__ import annotations

import math

import polars as pl
import pytest

from fusedata.engine import Dataset, Engine
from fusedata.recipe import Selection
from fusedata.select import (
    DPO_COLUMNS,
    DROP_SCHEMA,
    SFT_COLUMNS,
    WRPO_COLUMNS,
    SelectStage,
    select_tables,
    split_u,
)

from .selection_oracle import hash_u

ALL_DPO = {"instruction": {"sft": 0.0}, "math": {"sft": 0.0}, "code": {"sft": 0.0}}
ALL_SFT = {"instruction": {"sft": 1.0}, "math": {"sft": 1.0}, "code": {"sft": 1.0}}


class Table:
    """Collects response rows; ids are ``<prompt>/<model>/<i>`` so tests can name them."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, pid: str, model: str, score: float | None, verdict: str | None = None, *,
            cat: str = "instruction", source: str | None = None, truncated: bool = False,
            error: str | None = None, role: str = "source") -> str:
        i = sum(1 for r in self.rows if r["prompt_id"] == pid and r["model"] == model)
        rid = f"{pid}/{model}/{i}"
        self.rows.append(dict(prompt_id=pid, category=cat, source=source or f"src-{cat}",
                              model=model, role=role, response_id=rid, response=f"text {rid}",
                              score=score, truncated=truncated,
                              finish_reason="error" if error else
                              ("length" if truncated else "stop"),
                              error=error, verdict=verdict))
        return rid

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.rows, schema_overrides={"score": pl.Float64,
                                                         "error": pl.String,
                                                         "verdict": pl.String})


def run(t: Table, meta: pl.DataFrame | None = None, **cfg) -> dict[str, pl.DataFrame]:
    out = select_tables(t.frame(), meta, Selection(**cfg))
    assert tuple(out["sft"].columns) == SFT_COLUMNS
    assert tuple(out["dpo"].columns) == DPO_COLUMNS
    assert tuple(out["wrpo"].columns) == WRPO_COLUMNS
    assert out["drops"].schema == pl.Schema(DROP_SCHEMA)
    return out


def reasons(out: dict[str, pl.DataFrame], split: str) -> dict[str, str]:
    d = out["drops"].filter(pl.col("split") == split)
    return dict(zip(d["prompt_id"], d["reason"], strict=True))


# --------------------------------------------------------------------------- split



def test_split_hash_is_pinned():
    """The split must not move across versions: (u, v) of two prompts, fixed literally."""
    assert split_u(0, ["p000", "abc"]) == ([0.38844281126370517, 0.39565188324827016],
                                          [0.5880380032739488, 0.6804503920476309])
    assert hash_u(0, "abc") == (0.39565188324827016, 0.6804503920476309)

def test_ratio_split_is_seeded_deterministic_and_near_the_ratio():
    t = Table()
    for i in range(400):
        t.add(f"p{i:03d}", "a", 0.5)
    a = run(t, split={"instruction": {"sft": 0.4}}, seed=3)
    b = run(t, split={"instruction": {"sft": 0.4}}, seed=3)
    c = run(t, split={"instruction": {"sft": 0.4}}, seed=4)
    sft = set(a["sft"]["prompt_id"])
    assert sft == set(b["sft"]["prompt_id"]) and sft != set(c["sft"]["prompt_id"])
    assert 0.3 < len(sft) / 400 < 0.5
    # one response per model: no DPO pair is possible, every DPO prompt is a drop
    dpo_drops = reasons(a, "dpo")
    assert set(dpo_drops) == {f"p{i:03d}" for i in range(400)} - sft
    assert set(dpo_drops.values()) == {"no_same_model_pair"}
    # the split is u < sft with u from blake2b(seed, prompt id), computed independently
    assert sft == {f"p{i:03d}" for i in range(400) if hash_u(3, f"p{i:03d}")[0] < 0.4}


def test_pair_first_fills_dpo_share_with_pairable_prompts_in_hash_order():
    t = Table()
    for i in range(10):
        pid = f"m{i}"
        t.add(pid, "a", 0.5, "correct", cat="math")
        if i < 6:  # six prompts can pair (margin 0.05)
            t.add(pid, "a", 0.45, "incorrect", cat="math")
    out = run(t, split={"math": {"mode": "pair_first", "dpo_share": 0.3}}, seed=1)
    pairable = [f"m{i}" for i in range(6)]
    expect = set(sorted(pairable, key=lambda p: hash_u(1, p)[0])[:3])  # floor(0.3 * 10)
    assert set(out["dpo"]["prompt_id"]) == expect
    assert set(out["sft"]["prompt_id"]) == {f"m{i}" for i in range(10)} - expect
    assert out["drops"].height == 0
    big = run(t, split={"math": {"mode": "pair_first", "dpo_share": 1.0}})
    assert set(big["dpo"]["prompt_id"]) == set(pairable)


def test_sft_only_category_uses_the_named_model_only():
    t = Table()
    t.add("z1", "qwen", 0.3, cat="chinese")
    t.add("z1", "other", 0.9, cat="chinese")
    t.add("z2", "other", 0.9, cat="chinese")
    t.add("z3", "qwen", 0.5, cat="chinese", truncated=True)
    out = run(t, split={"chinese": {"mode": "sft_only", "model": "qwen"}})
    assert out["sft"].select("prompt_id", "model", "score").rows() == [("z1", "qwen", 0.3)]
    assert reasons(out, "sft") == {"z2": "no_responses", "z3": "truncated"}
    assert out["dpo"].height == 0 and reasons(out, "dpo") == {}
    # an unknown model name selects nothing (never falls back to all models)
    none = run(t, split={"chinese": {"mode": "sft_only", "model": "missing"}})
    assert none["sft"].height == 0


# --------------------------------------------------------------------------- SFT


def test_sft_takes_best_eligible_across_models_with_ties_by_response_id():
    t = Table()
    t.add("p", "b", 0.9, truncated=True)      # best score but truncated: not eligible
    t.add("p", "b", 0.7)
    t.add("p", "a", 0.7)                      # tie at 0.7: "p/a/0" < "p/b/1"
    t.add("p", "c", float("nan"))
    out = run(t, split=ALL_SFT)
    assert out["sft"].select("model", "response_id", "response").row(0) == (
        "a", "p/a/0", "text p/a/0")
    d = out["drops"].filter(pl.col("split") == "responses")
    assert sorted(zip(d["model"], d["reason"], strict=True)) == [
        ("b", "truncated"), ("c", "nan_score")]


def test_math_sft_needs_a_correct_answer_and_code_sft_a_passing_program():
    t = Table()
    t.add("m", "a", 0.9, "incorrect", cat="math")
    t.add("m", "b", 0.2, "correct", cat="math")
    t.add("c", "a", 0.9, "failed", cat="code")
    t.add("c", "b", 0.8, "syntax_error", cat="code")
    t.add("u", "a", 0.9, None, cat="math")            # never verified
    out = run(t, split=ALL_SFT)
    assert out["sft"].select("prompt_id", "model").rows() == [("m", "b")]
    assert reasons(out, "sft") == {"c": "all_failed", "u": "unverified"}


# --------------------------------------------------------------------------- DPO


def test_dpo_pair_is_from_one_model_extremes_inside_window():
    t = Table()
    t.add("p", "a", 0.60)
    t.add("p", "a", 0.55)
    t.add("p", "a", 0.52)
    t.add("p", "b", 0.90)   # b alone: cannot pair with a's responses
    out = run(t, split=ALL_DPO)
    row = out["dpo"].row(0, named=True)
    assert (row["model"], row["chosen_id"], row["rejected_id"]) == ("a", "p/a/0", "p/a/2")
    assert row["margin"] == pytest.approx(0.08)


@pytest.mark.parametrize("hi_score,lo_score", [(0.51, 0.50), (0.4, 0.3), (0.75, 0.65)])
def test_margin_exactly_on_window_ends_is_kept(hi_score, lo_score):
    t = Table()
    t.add("p", "a", hi_score)
    t.add("p", "a", lo_score)
    out = run(t, split=ALL_DPO)
    assert out["dpo"].height == 1, out["drops"]
    # stored rounded to margin_decimals (6): exactly the window end, not 0.010000000000000009
    assert out["dpo"]["margin"][0] == round(hi_score - lo_score, 6) in (0.01, 0.1)


def test_margin_just_outside_window_is_dropped_with_reason():
    t = Table()
    t.add("lo", "a", 0.5)
    t.add("lo", "a", 0.4951)          # 0.0049 < 0.01
    t.add("hi", "a", 0.5)
    t.add("hi", "a", 0.3999)          # 0.1001 > 0.1
    t.add("mix", "a", 0.5)
    t.add("mix", "a", 0.495)          # below
    t.add("mix", "a", 0.3)            # above
    out = run(t, split=ALL_DPO)
    assert out["dpo"].height == 0
    assert reasons(out, "dpo") == {"lo": "margin_below", "hi": "margin_above",
                                   "mix": "margin_outside"}


def test_window_policy_nearest_vs_strict():
    t = Table()
    t.add("p", "a", 0.60)
    t.add("p", "a", 0.58)
    t.add("p", "a", 0.53)   # inside window: 0.07
    t.add("p", "a", 0.20)   # extreme pair: 0.4, above
    near = run(t, split=ALL_DPO)
    assert near["dpo"].select("chosen_id", "rejected_id").row(0) == ("p/a/0", "p/a/2")
    strict = run(t, split=ALL_DPO, window_policy="strict")
    assert strict["dpo"].height == 0
    assert reasons(strict, "dpo") == {"p": "margin_above"}


def test_pairing_best_chosen_random_and_all():
    t = Table()
    for m, c in (("a", 0.5), ("b", 0.8), ("c", 0.6)):
        for i in range(40):
            t.add(f"p{i:02d}", m, c)
            t.add(f"p{i:02d}", m, c - 0.05)
    best = run(t, split=ALL_DPO)
    assert set(best["dpo"]["model"]) == {"b"} and best["dpo"].height == 40
    allp = run(t, split=ALL_DPO, pairing="all")
    assert allp["dpo"].height == 120
    assert allp["dpo"].group_by("prompt_id").len()["len"].to_list() == [3] * 40
    r1 = run(t, split=ALL_DPO, pairing="random", seed=7)
    r2 = run(t, split=ALL_DPO, pairing="random", seed=7)
    assert r1["dpo"].equals(r2["dpo"]) and r1["dpo"].height == 40
    assert set(r1["dpo"]["model"]) == {"a", "b", "c"}  # 40 draws over 3 models


def test_best_chosen_tie_goes_to_the_first_model_name():
    t = Table()
    for m in ("zeta", "alpha", "mid"):
        t.add("p", m, 0.5)
        t.add("p", m, 0.45)
    assert run(t, split=ALL_DPO)["dpo"]["model"].to_list() == ["alpha"]


def test_math_rejected_must_be_incorrect_and_all_correct_prompt_is_dropped():
    t = Table()
    t.add("m", "a", 0.50, "correct", cat="math")
    t.add("m", "a", 0.45, "correct", cat="math")     # in window but correct: not a rejected
    t.add("m", "a", 0.30, "incorrect", cat="math")   # margin 0.2: above
    t.add("ok", "a", 0.50, "correct", cat="math")
    t.add("ok", "a", 0.47, "incorrect", cat="math")
    t.add("ok", "a", 0.46, "no_answer", cat="math")  # no final answer: unusable by default
    t.add("ok", "a", 0.44, "timeout", cat="math")    # checker timeout: unusable
    t.add("all", "a", 0.50, "correct", cat="math")
    t.add("all", "b", 0.40, "correct", cat="math")
    out = run(t, split=ALL_DPO)
    assert out["dpo"].select("prompt_id", "chosen_id", "rejected_id").rows() == [
        ("ok", "ok/a/0", "ok/a/1")]
    assert reasons(out, "dpo") == {"m": "margin_above", "all": "all_passed"}
    resp = out["drops"].filter(pl.col("split") == "responses")
    assert resp.select("prompt_id", "reason").rows() == [("ok", "verifier_error")] * 2
    # no_answer as a rejected answer is an explicit choice
    na = run(t, split=ALL_DPO, failing_verdicts={"math": ["incorrect", "no_answer"]})
    assert na["dpo"].filter(pl.col("prompt_id") == "ok")["rejected_id"].to_list() == ["ok/a/2"]


def test_code_prompt_where_every_response_fails_is_dropped():
    t = Table()
    for m in ("a", "b"):
        t.add("c", m, 0.5, "failed", cat="code")
        t.add("c", m, 0.45, "timeout", cat="code")
    t.add("d", "a", 0.5, "passed", cat="code")
    t.add("d", "b", 0.45, "failed", cat="code")      # pass and fail from different models
    out = run(t, split=ALL_DPO)
    assert out["dpo"].height == 0
    assert reasons(out, "dpo") == {"c": "all_failed", "d": "no_same_model_pair"}


def test_nan_scores_and_errors_are_dropped_with_reasons():
    t = Table()
    t.add("n", "a", float("nan"))
    t.add("n", "a", None)
    t.add("e", "a", 0.5, error="backend timeout")
    t.add("x", "a", None)
    t.add("x", "a", 0.5, truncated=True)
    t.add("k", "a", 0.5)
    t.add("k", "a", float("nan"))
    t.add("k", "a", 0.45)
    out = run(t, split=ALL_DPO)
    assert out["dpo"].select("prompt_id", "rejected_id").rows() == [("k", "k/a/2")]
    assert reasons(out, "dpo") == {"n": "nan_score", "e": "error", "x": "no_usable_response"}
    resp = out["drops"].filter(pl.col("split") == "responses")
    assert resp.group_by("reason").len().sort("reason").rows() == [
        ("error", 1), ("nan_score", 4), ("truncated", 1)]
    assert not any(math.isnan(s) for s in out["dpo"]["score_rejected"])


def test_prompts_without_responses_are_reported():
    t = Table()
    t.add("p", "a", 0.5)
    meta = pl.DataFrame({"prompt_id": ["p", "q"], "category": ["instruction"] * 2,
                         "source": ["s", "s"]})
    out = run(t, meta, split=ALL_SFT)
    assert reasons(out, "sft") == {"q": "no_responses"}
    assert out["sft"]["source"].to_list() == ["s"]  # the prompts table is authoritative


# --------------------------------------------------------------------------- WRPO


def test_wrpo_triplets_and_their_drop_reasons():
    t = Table()
    for pid in ("w", "far", "nosrc"):
        t.add(pid, "t", 0.40, role="target")
        t.add(pid, "t", 0.35 if pid != "far" else 0.10, role="target")
    t.add("w", "a", 0.70)
    t.add("w", "b", 0.60)
    t.add("far", "a", 0.70)
    t.add("nosrc", "a", 0.70, truncated=True)
    t.add("one", "t", 0.5, role="target")                     # a single target sample
    t.add("one", "a", 0.70)
    t.add("other", "a", 0.7, cat="math", verdict="correct")   # target never sampled math
    out = run(t, split=ALL_DPO, wrpo_margin=[0.01, 0.1])
    w = out["wrpo"].row(0, named=True)
    assert out["wrpo"].height == 1
    assert (w["prompt_id"], w["chosen_source_model"], w["chosen_source_id"], w["target_model"],
            w["chosen_target_id"], w["rejected_id"]) == ("w", "a", "w/a/0", "t", "w/t/0",
                                                         "w/t/1")
    assert w["margin"] == pytest.approx(0.05)
    assert reasons(out, "wrpo") == {"far": "target_margin_above", "nosrc": "no_source_response",
                                    "one": "target_no_same_model_pair"}
    # target responses never become SFT or DPO material
    assert "t" not in set(out["dpo"]["model"]) | set(out["sft"]["model"])
    # WRPO's own rule (the default): no window on the target pair
    dflt = run(t, split=ALL_DPO)
    assert sorted(dflt["wrpo"].select("prompt_id", "rejected_id").rows()) == [
        ("far", "far/t/1"), ("w", "w/t/1")]


def test_wrpo_pairs_the_targets_highest_with_its_lowest_response():
    """The issue's repro: target scores 0.95 / 0.90 / 0.30 give y_l = 0.30, not 0.90."""
    t = Table()
    for s in (0.95, 0.90, 0.30):
        t.add("p", "t", s, role="target")
    t.add("p", "a", 0.8)
    t.add("p", "a", 0.75)
    out = run(t, split=ALL_DPO)
    w = out["wrpo"].row(0, named=True)
    assert (w["score_chosen_target"], w["score_rejected"], w["margin"]) == (0.95, 0.30, 0.65)
    assert w["score_chosen_source"] == 0.8
    # math keeps the verifier rules: y_wt must be correct, y_l incorrect
    m = Table()
    m.add("q", "t", 0.95, "incorrect", cat="math", role="target")
    m.add("q", "t", 0.90, "correct", cat="math", role="target")
    m.add("q", "t", 0.50, "correct", cat="math", role="target")
    m.add("q", "t", 0.40, "incorrect", cat="math", role="target")
    m.add("q", "a", 0.7, "correct", cat="math")
    mo = run(m, split=ALL_DPO)
    assert mo["wrpo"].select("chosen_target_id", "rejected_id").rows() == [("q/t/1", "q/t/3")]


# --------------------------------------------------------------------------- stage


def test_select_stage_through_the_engine_reads_only_inputs(tmp_path):
    t = Table()
    t.add("p", "a", 0.5)
    t.add("p", "a", 0.45)
    t.add("q", "a", 0.5)
    f = tmp_path / "resp.parquet"
    t.frame().with_columns(extra=pl.lit("x")).write_parquet(f)
    pf = tmp_path / "prompts.parquet"
    pl.DataFrame({"prompt_id": ["p", "q", "r"], "category": ["instruction"] * 3,
                  "source": ["s"] * 3, "messages": [[{"role": "user", "content": "hi"}]] * 3}
                 ).write_parquet(pf)
    eng = Engine(work=tmp_path / "work", progress=False)
    stage = SelectStage(Selection(split=ALL_DPO))
    out = eng.reduce(stage, {"responses:a": Dataset((f,), "k1"), "prompts": Dataset((pf,), "k2")})
    assert set(out) == {"sft", "dpo", "wrpo", "drops"}
    assert out["dpo"].read()["prompt_id"].to_list() == ["p"]
    assert dict(out["drops"].read().select("prompt_id", "reason").rows()) == {
        "q": "no_same_model_pair", "r": "no_responses"}
    with pytest.raises(ValueError, match="no responses"):
        stage.reduce({"prompts": Dataset((pf,), "k2")})


def test_recipe_rejects_bad_selection_fields():
    with pytest.raises(ValueError, match="passing verdict"):
        Selection(failing_verdicts={"math": ["correct"]})
    with pytest.raises(ValueError, match="unknown verified category"):
        Selection(failing_verdicts={"instruction": ["x"]})
    s = Selection(failing_verdicts={"code": ["failed"]})
    assert s.failing_verdicts["code"] == ["failed"] and "incorrect" in s.failing_verdicts["math"]
