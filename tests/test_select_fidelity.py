"""Issue 15: the published split, WRPO's triplet rule and no bad record in training data.

Every test here builds its rows by hand (invented edge cases, not dataset rows) and
asserts either the selected record or the drop reason / error text.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from fusedata.recipe import RecipeError, Selection, parse_recipe
from fusedata.select import select_tables

from .selection_oracle import hash_u
from .test_select import ALL_DPO, ALL_SFT, Table, reasons, run

# --------------------------------------------------------------------------- record_share


def _shares(out: dict[str, pl.DataFrame]) -> dict[str, tuple[int, int]]:
    n = {}
    for kind in ("sft", "dpo"):
        for src, k in out[kind].group_by("source").len().iter_rows():
            n.setdefault(src, [0, 0])[kind == "dpo"] += k
    return {s: tuple(v) for s, v in n.items()}


def test_record_share_lands_on_the_share_of_final_records():
    """The issue's 1,000-prompt case: ratio 0.4 gave 402 SFT / 290 DPO (58:42)."""
    t = Table()
    rng = np.random.default_rng(0)
    for i in range(1000):
        pid = f"p{i:04d}"
        t.add(pid, "a", 0.5)
        if rng.random() < 0.7:               # 70% of prompts can pair (margin 0.05)
            t.add(pid, "a", 0.45)
    ratio = run(t, split={"instruction": {"mode": "ratio", "sft": 0.4}})
    n_sft, n_dpo = _shares(ratio)["src-instruction"]
    assert abs(n_sft / (n_sft + n_dpo) - 0.4) > 0.1        # the drift the issue reports
    out = run(t, split={"instruction": {"mode": "record_share", "sft": 0.4}})
    n_sft, n_dpo = _shares(out)["src-instruction"]
    assert n_sft + n_dpo == 1000                           # nobody dropped: enough pairs
    assert abs(n_sft - 0.4 * 1000) <= 1 and n_sft == 400
    assert out["drops"].filter(pl.col("split") != "responses").height == 0


def test_record_share_trims_the_kind_beyond_its_share_as_over_share():
    t = Table()
    for i in range(10):                      # 10 prompts, only 3 can pair
        t.add(f"p{i}", "a", 0.5)
        if i < 3:
            t.add(f"p{i}", "a", 0.45)
    out = run(t, split={"instruction": {"mode": "record_share", "sft": 0.4}}, seed=2)
    # 3 DPO records allow floor(0.4 * 3 / 0.6 + 0.5) = 2 SFT records: 2:3 = 0.4 exactly
    assert out["dpo"]["prompt_id"].to_list() == ["p0", "p1", "p2"]
    assert out["sft"].height == 2
    over = reasons(out, "sft")
    assert set(over.values()) == {"over_share"} and len(over) == 5
    kept = set(sorted((f"p{i}" for i in range(3, 10)), key=lambda p: hash_u(2, p)[0])[:2])
    assert set(out["sft"]["prompt_id"]) == kept
    # the other way round: SFT may come only from model "b", which answered 2 prompts
    t2 = Table()
    for i in range(8):
        t2.add(f"q{i}", "a", 0.5)
        t2.add(f"q{i}", "a", 0.45)
        if i < 2:
            t2.add(f"q{i}", "b", 0.6)
    out2 = run(t2, split={"instruction": {"mode": "record_share", "sft": 0.5, "model": "b"}})
    assert out2["sft"]["prompt_id"].sort().to_list() == ["q0", "q1"]
    assert out2["dpo"].height == 2
    assert set(reasons(out2, "dpo").values()) == {"over_share"}


def test_source_rule_wins_over_its_category_rule():
    t = Table()
    for i in range(20):
        for src in ("lc", "oss"):
            pid = f"{src}{i}"
            t.add(pid, "a", 0.5, "passed", cat="code", source=src)
            t.add(pid, "a", 0.45, "failed", cat="code", source=src)
    out = run(t, split={"code": {"mode": "record_share", "sft": 0.5},
                        "lc": {"mode": "record_share", "sft": 0.25}})
    assert _shares(out) == {"lc": (5, 15), "oss": (10, 10)}


# --------------------------------------------------------------------------- point 6


def test_non_finite_scores_are_unusable():
    t = Table()
    t.add("s", "a", float("inf"))
    t.add("s", "a", 0.4)
    t.add("i", "a", float("inf"))
    t.add("i", "b", float("inf"))
    t.add("n", "a", -float("inf"))
    t.add("n", "a", 0.3)
    t.add("n", "a", 0.25)
    sft = run(t, split=ALL_SFT)
    assert dict(sft["sft"].select("prompt_id", "score").rows()) == {"s": 0.4, "n": 0.3}
    assert reasons(sft, "sft") == {"i": "non_finite_score"}
    dpo = run(t, split=ALL_DPO)
    assert dpo["dpo"].select("prompt_id", "score_chosen", "score_rejected").rows() == [
        ("n", 0.3, 0.25)]
    assert reasons(dpo, "dpo") == {"i": "non_finite_score", "s": "no_same_model_pair"}
    resp = dpo["drops"].filter(pl.col("split") == "responses")
    assert resp["reason"].to_list() == ["non_finite_score"] * 4
    assert dpo["dpo"]["margin"].is_finite().all()


def test_blank_responses_are_never_targets_chosen_or_rejected():
    t = Table()
    t.add("p", "a", 0.9)
    t.add("p", "a", 0.5)
    t.add("p", "a", 0.46)
    t.rows[0]["response"] = "   \n\t"          # best score, blank
    t.rows[2]["response"] = ""                 # in-window rejected, empty
    t.add("q", "a", 0.9)
    t.rows[-1]["response"] = " "
    sft = run(t, split=ALL_SFT)
    assert sft["sft"].select("prompt_id", "response_id").rows() == [("p", "p/a/1")]
    assert reasons(sft, "sft") == {"q": "empty_response"}
    dpo = run(t, split=ALL_DPO)
    assert dpo["dpo"].height == 0
    assert reasons(dpo, "dpo") == {"p": "no_same_model_pair", "q": "empty_response"}
    assert (dpo["drops"].filter(pl.col("split") == "responses")["reason"].to_list()
            == ["empty_response"] * 3)


def test_a_rejected_repeating_the_chosen_text_is_not_a_pair():
    t = Table()
    t.add("same", "a", 0.5)
    t.add("same", "a", 0.45)
    t.rows[1]["response"] = "  " + t.rows[0]["response"] + "\n"   # equal after stripping
    t.add("next", "a", 0.5)
    t.add("next", "a", 0.47)
    t.add("next", "a", 0.45)
    t.rows[-1]["response"] = t.rows[-3]["response"]               # lowest repeats chosen
    out = run(t, split=ALL_DPO)
    assert out["dpo"].select("prompt_id", "rejected_id").rows() == [("next", "next/a/1")]
    assert reasons(out, "dpo") == {"same": "identical_pair"}
    # WRPO: the target pair and y_ws vs y_l are checked the same way
    w = Table()
    w.add("t1", "t", 0.9, role="target")
    w.add("t1", "t", 0.2, role="target")
    w.rows[1]["response"] = w.rows[0]["response"]
    w.add("t2", "t", 0.9, role="target")
    w.add("t2", "t", 0.2, role="target")
    for pid in ("t1", "t2"):
        w.add(pid, "a", 0.8)
        w.add(pid, "a", 0.75)
    w.rows[3]["response"] = w.rows[6]["response"]     # t2: y_l (t2/t/1) repeats y_ws (t2/a/0)
    wo = run(w, split=ALL_DPO)
    assert wo["wrpo"].height == 0
    assert reasons(wo, "wrpo") == {"t1": "target_identical_pair", "t2": "identical_pair"}


def test_unknown_category_is_an_error_and_a_null_one_a_drop():
    t = Table()
    t.add("m", "a", 0.9, "incorrect", cat="Math")
    with pytest.raises(ValueError, match=r"unknown category \('Math'\), e\.g\. prompt_id 'm'"):
        run(t, split=ALL_SFT)
    t2 = Table()
    t2.add("x", "a", 0.9)
    t2.add("y", "a", 0.8)
    meta = pl.DataFrame({"prompt_id": ["x", "y"], "category": [None, "instruction"],
                         "source": ["s", "s"]}, schema_overrides={"category": pl.String})
    out = run(t2, meta, split=ALL_SFT)
    assert out["sft"]["prompt_id"].to_list() == ["y"]
    d = out["drops"]
    assert d.select("prompt_id", "split", "reason").rows() == [("x", "sft", "null_category")]


def test_recipe_rejects_an_unknown_category_naming_its_line():
    base = ("name: x\nprompts:\n  - name: a\n    path: a.jsonl\n    category: {cat}\n"
            "    fields: {{prompt: p}}\nmodels:\n  - name: m\n    path: m\n")
    with pytest.raises(RecipeError, match=r"r\.yaml:5: prompts\[0\]\.category: must be one of"):
        parse_recipe(base.format(cat="Math"), "r.yaml")
    sel = base.format(cat="math") + "selection:\n  split:\n    Math: {mode: ratio}\n"
    with pytest.raises(RecipeError, match=r"r\.yaml:12: selection\.split\.Math: unknown "
                                          r"category or prompt source 'Math'"):
        parse_recipe(sel, "r.yaml")
    model = base.format(cat="math") + "selection:\n  split:\n    a: {model: nope}\n"
    with pytest.raises(RecipeError, match=r"r\.yaml:12: selection\.split\.a\.model: unknown "
                                          r"model 'nope'"):
        parse_recipe(model, "r.yaml")
    with pytest.raises(ValueError, match="math: unknown verdict 'incorect'"):
        Selection(failing_verdicts={"math": ["incorect"]})


def test_verdicts_count_only_for_their_category():
    t = Table()
    t.add("m", "a", 0.9, "passed", cat="math")        # a code verdict on a math answer
    t.add("m", "a", 0.5, "correct", cat="math")
    t.add("m", "a", 0.45, "failed", cat="math")       # not a math failure either
    t.add("c", "a", 0.9, "correct", cat="code")
    t.add("c", "a", 0.5, "passed", cat="code")
    t.add("c", "a", 0.45, "incorrect", cat="code")
    sft = run(t, split=ALL_SFT)
    assert dict(sft["sft"].select("prompt_id", "response_id").rows()) == {
        "m": "m/a/1", "c": "c/a/1"}
    resp = sft["drops"].filter(pl.col("split") == "responses")
    assert resp.select("prompt_id", "reason").rows() == [("c", "verdict_mismatch")] * 2 + [
        ("m", "verdict_mismatch")] * 2
    dpo = run(t, split=ALL_DPO)
    assert dpo["dpo"].height == 0 and reasons(dpo, "dpo") == {"m": "all_passed",
                                                               "c": "all_passed"}


def test_margins_are_rounded_to_margin_decimals_before_the_window():
    f32 = float(np.float32(0.51))                  # 0.5099999904632568
    t = Table()
    t.add("f32", "a", f32)
    t.add("f32", "a", 0.50)                        # difference 0.0099999904...
    t.add("x", "a", 0.5099999995)
    t.add("x", "a", 0.50)
    t.add("below", "a", 0.5)
    t.add("below", "a", 0.4900006)                 # 0.0099994 -> 0.009999
    out = run(t, split=ALL_DPO)
    assert dict(out["dpo"].select("prompt_id", "margin").rows()) == {"f32": 0.01, "x": 0.01}
    assert reasons(out, "dpo") == {"below": "margin_below"}
    exact = run(t, split=ALL_DPO, margin_decimals=None)
    assert exact["dpo"].height == 0
    assert reasons(exact, "dpo") == {"f32": "margin_below", "x": "margin_below",
                                     "below": "margin_below"}


def test_fusechat3_recipe_sends_math_to_both_phases():
    """The issue's repro: 10 math prompts, each with 3 correct and 2 incorrect Qwen-Math
    samples plus one correct imported answer, gave 0 SFT / 10 DPO under the old recipe."""
    from pathlib import Path

    from fusedata.recipe import load_recipe

    cfg = load_recipe(Path(__file__).resolve().parents[1] / "recipes" / "fusechat3.yaml")
    t = Table()
    for i in range(10):
        pid = f"m{i}"
        for s, v in ((0.50, "correct"), (0.49, "correct"), (0.48, "correct"),
                     (0.45, "incorrect"), (0.44, "incorrect")):
            t.add(pid, "qwen2.5-math-72b-instruct", s, v, cat="math", source="openmathinstruct2")
        t.add(pid, "llama-3.1-405b-instruct", 0.52, "correct", cat="math",
              source="openmathinstruct2")
    out = select_tables(t.frame(), None, cfg.selection)
    # floor(0.7758 * 10 + 0.5) = 8 SFT records, 2 DPO pairs
    assert (out["sft"].height, out["dpo"].height) == (8, 2)
    assert set(out["sft"]["model"]) == {"llama-3.1-405b-instruct"}
    # same model (Qwen-Math), its best correct vs its lowest incorrect (margin 0.06)
    assert out["dpo"]["rejected_id"].str.ends_with("qwen2.5-math-72b-instruct/4").all()
    assert out["dpo"]["margin"].to_list() == [0.06, 0.06]
