"""Property tests: random score tables through select_tables.

Each example checks the invariants of the issue (window, one model per pair,
eligibility, deterministic disjoint split, every prompt accounted for) and
that the vectorised path agrees with the plain per-prompt loop of
``tests/selection_oracle.py`` (an independent rendering of the same rules).
"""

from __future__ import annotations

import math

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fusedata.recipe import Selection
from fusedata.select import VERIFIED, select_tables

from . import selection_oracle as bench

CATS = ("instruction", "math", "code", "chinese", "math", "code", "instruction", None)
VERDICTS = {"math": ["correct"] * 3 + ["incorrect"] * 2 + ["no_answer", "timeout", None, "passed"],
            "code": ["passed"] * 3 + ["failed"] * 2 + ["syntax_error", "sandbox_error",
                                                       "correct"]}
#: texts: distinct ones, blank ones and repeats of one text (identical chosen/rejected)
TEXTS = st.sampled_from(["distinct"] * 5 + ["", "  \n", "same", " same ", "same"])
# a coarse grid: many ties and margins exactly on the window ends
GRID = st.sampled_from([0.3, 0.39, 0.4, 0.41, 0.45, 0.49, 0.5, 0.51])
NEAR = st.sampled_from([0.4, 0.41, 0.45, 0.5, 0.51])
SCORES = st.one_of(NEAR, NEAR, NEAR, GRID, GRID, GRID, st.floats(0.3, 0.6),
                   st.sampled_from([float("nan"), None, float("inf"), -float("inf")]))


@st.composite
def tables(draw) -> tuple[pl.DataFrame, pl.DataFrame, Selection]:
    n_prompts = draw(st.integers(1, 8))
    models = ["a", "b", "c"][: draw(st.sampled_from([1, 2, 2, 3, 3]))]
    with_target = draw(st.booleans())
    rows, meta = [], []
    for i in range(n_prompts):
        cat = draw(st.sampled_from(CATS))
        pid = f"p{i}"
        src = f"s-{cat}-{draw(st.integers(0, 1))}"
        meta.append({"prompt_id": pid, "category": cat, "source": src})
        for m in models + (["t"] if with_target else []):
            for k in range(draw(st.sampled_from([0, 1, 2, 3, 3, 4]))):
                verdict = draw(st.sampled_from(VERDICTS[cat])) if cat in VERDICTS else None
                trunc = draw(st.integers(0, 14)) == 0
                text = draw(TEXTS)
                rows.append({"prompt_id": pid, "category": cat, "source": src,
                             "model": m, "role": "target" if m == "t" else "source",
                             "response_id": f"{pid}-{m}-{k}", "response": f"r {pid} {m} {k}" if text == "distinct" else text,
                             "score": draw(SCORES), "truncated": trunc,
                             "finish_reason": "length" if trunc else "stop",
                             "error": "boom" if draw(st.integers(0, 29)) == 0 else None,
                             "verdict": verdict})
    rule = st.sampled_from([{"mode": "ratio", "sft": 0.4}, {"mode": "ratio", "sft": 0.0},
                            {"mode": "pair_first", "dpo_share": 0.5},
                            {"mode": "pair_first", "dpo_share": 1.0},
                            {"mode": "record_share", "sft": 0.4},
                            {"mode": "record_share", "sft": 0.0},
                            {"mode": "record_share", "sft": 1.0},
                            {"mode": "record_share", "sft": 0.75},
                            # SFT from one model only: prompts pairable but not SFT-able
                            {"mode": "record_share", "sft": 0.6, "model": "b"}])
    cfg = Selection(seed=draw(st.integers(0, 3)),
                    split={"instruction": draw(rule), "math": draw(rule), "code": draw(rule),
                           "s-code-1": draw(rule),   # a source's own rule wins
                           "chinese": draw(st.sampled_from(
                               [{"mode": "sft_only", "model": "a"}, {"mode": "sft_only"},
                                {"mode": "ratio", "sft": 0.5}]))},
                    margin_decimals=draw(st.sampled_from([6, 6, 2, None])),
                    wrpo_margin=draw(st.sampled_from([None, None, (0.01, 0.1)])),
                    window_policy=draw(st.sampled_from(["nearest", "strict"])),
                    pairing=draw(st.sampled_from(["best_chosen", "random", "all"])))
    schema = {"score": pl.Float64, "error": pl.String, "verdict": pl.String,
              "category": pl.String}
    resp = (pl.DataFrame(rows, schema_overrides=schema) if rows else
            pl.DataFrame(schema={**{k: pl.String for k in bench.make_data(1)[0].columns},
                                 "score": pl.Float64, "truncated": pl.Boolean,
                                 "sample_idx": pl.Int32}).drop("sample_idx"))
    return resp, pl.DataFrame(meta, schema=dict.fromkeys(("prompt_id", "category", "source"), pl.String)), cfg


FAST = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(tables())
def test_invariants_and_agreement_with_the_loop(data):
    resp, meta, cfg = data
    out = select_tables(resp, meta, cfg)
    by_id = {r["response_id"]: r for r in resp.iter_rows(named=True)}
    dec = cfg.margin_decimals

    def usable(r):
        s, v, cat = r["score"], r["verdict"], r["category"]
        ok = (r["error"] is None and s is not None and math.isfinite(s) and not r["truncated"]
              and bool(r["response"].strip()))
        return ok and (cat not in VERIFIED or v in cfg.failing_verdicts[cat]
                       or v == {"math": "correct", "code": "passed"}[cat])

    def eligible(r):
        return usable(r) and (r["category"] not in VERIFIED
                              or r["verdict"] == {"math": "correct", "code": "passed"}[
                                  r["category"]])

    for table, (c_id, r_id, c_s, r_s), window in (
            ("dpo", ("chosen_id", "rejected_id", "score_chosen", "score_rejected"), cfg.margin),
            ("wrpo", ("chosen_target_id", "rejected_id", "score_chosen_target",
                      "score_rejected"), cfg.wrpo_margin or (-math.inf, math.inf))):
        for row in out[table].iter_rows(named=True):
            assert window[0] <= row["margin"] <= window[1]
            c, r = by_id[row[c_id]], by_id[row[r_id]]
            assert c["model"] == r["model"] and row[c_id] != row[r_id]
            assert c["score"] == row[c_s] and r["score"] == row[r_s]
            diff = c["score"] - r["score"]
            assert row["margin"] == (diff if dec is None else round(diff * 10**dec) / 10**dec)
            assert eligible(c) and usable(r)
            assert c["response"].strip() != r["response"].strip()
            if r["category"] in VERIFIED:
                assert r["verdict"] in cfg.failing_verdicts[r["category"]]
            role = "source" if table == "dpo" else "target"
            assert c["role"] == role and r["role"] == role
        if table == "wrpo" and out[table].height:
            for row in out[table].iter_rows(named=True):
                s = by_id[row["chosen_source_id"]]
                assert s["role"] == "source" and eligible(s)
                assert s["response"].strip() != by_id[row["rejected_id"]]["response"].strip()
    for row in out["sft"].iter_rows(named=True):
        r = by_id[row["response_id"]]
        assert eligible(r) and r["role"] == "source" and r["model"] == row["model"]
    # record_share: each (source, category) lands on its SFT share within one record
    if cfg.pairing != "all":
        recs = pl.concat([out["sft"].select("source", "category", kind=pl.lit("sft")),
                          out["dpo"].select("source", "category", kind=pl.lit("dpo"))])
        for (src, cat), g in recs.group_by("source", "category"):
            rule = cfg.rule_for(cat, src)
            if rule.mode == "record_share":
                n_sft = g.filter(pl.col("kind") == "sft").height
                assert abs(n_sft - rule.sft * g.height) <= 1, (src, cat, n_sft, g.height)
    nocat = set(meta.filter(pl.col("category").is_null())["prompt_id"])
    assert set(out["drops"].filter(pl.col("reason") == "null_category")["prompt_id"]) == nocat

    # split: disjoint, and every prompt accounted for exactly once in its split
    sft_p = set(out["sft"]["prompt_id"])
    dpo_p = set(out["dpo"]["prompt_id"])
    d = out["drops"]
    sft_d = set(d.filter(pl.col("split") == "sft")["prompt_id"])
    dpo_d = set(d.filter(pl.col("split") == "dpo")["prompt_id"])
    assert not sft_p & dpo_p and not (sft_p | sft_d) & (dpo_p | dpo_d)
    assert len(sft_p) == out["sft"].height
    assert d.filter(pl.col("split") != "responses")["model"].null_count() == \
        d.filter(pl.col("split") != "responses").height
    assert sft_p | dpo_p | sft_d | dpo_d == set(meta["prompt_id"])
    assert set(out["wrpo"]["prompt_id"]) <= dpo_p | dpo_d
    # every unusable response is listed
    n_bad = sum(1 for r in by_id.values() if r["category"] is not None and not usable(r))
    assert d.filter(pl.col("split") == "responses").height == n_bad

    # deterministic and independent of input row order
    again = select_tables(resp.reverse(), meta.reverse(), cfg)
    bench.assert_same(out, again)
    # same result as the plain loop
    bench.assert_same(out, bench.reference_select(resp, meta, cfg))
