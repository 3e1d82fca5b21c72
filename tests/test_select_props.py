"""Property tests: random score tables through select_tables.

Each example checks the invariants of the issue (window, one model per pair,
eligibility, deterministic disjoint split, every prompt accounted for) and
that the vectorised path agrees with the plain per-prompt loop of
``benchmarks/selection.py`` (an independent rendering of the same rules).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fusedata.recipe import Selection
from fusedata.select import VERIFIED, select_tables

_spec = importlib.util.spec_from_file_location(
    "bench_select", Path(__file__).resolve().parents[1] / "benchmarks" / "selection.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

CATS = ("instruction", "math", "code", "chinese")
VERDICTS = {"math": ["correct"] * 3 + ["incorrect"] * 2 + ["no_answer", "timeout", None],
            "code": ["passed"] * 3 + ["failed"] * 2 + ["syntax_error", "sandbox_error"]}
# a coarse grid: many ties and margins exactly on the window ends
GRID = st.sampled_from([0.3, 0.39, 0.4, 0.41, 0.45, 0.49, 0.5, 0.51])
NEAR = st.sampled_from([0.4, 0.41, 0.45, 0.5, 0.51])
SCORES = st.one_of(NEAR, NEAR, NEAR, GRID, GRID, GRID, st.floats(0.3, 0.6),
                   st.sampled_from([float("nan"), None]))


@st.composite
def tables(draw) -> tuple[pl.DataFrame, pl.DataFrame, Selection]:
    n_prompts = draw(st.integers(1, 8))
    models = ["a", "b", "c"][: draw(st.sampled_from([1, 2, 2, 3, 3]))]
    with_target = draw(st.booleans())
    rows, meta = [], []
    for i in range(n_prompts):
        cat = draw(st.sampled_from(CATS))
        pid = f"p{i}"
        meta.append({"prompt_id": pid, "category": cat, "source": f"s-{cat}"})
        for m in models + (["t"] if with_target else []):
            for k in range(draw(st.sampled_from([0, 1, 2, 3, 3, 4]))):
                verdict = draw(st.sampled_from(VERDICTS[cat])) if cat in VERDICTS else None
                trunc = draw(st.integers(0, 14)) == 0
                rows.append({"prompt_id": pid, "category": cat, "source": f"s-{cat}",
                             "model": m, "role": "target" if m == "t" else "source",
                             "response_id": f"{pid}-{m}-{k}", "response": f"r {pid} {m} {k}",
                             "score": draw(SCORES), "truncated": trunc,
                             "finish_reason": "length" if trunc else "stop",
                             "error": "boom" if draw(st.integers(0, 29)) == 0 else None,
                             "verdict": verdict})
    rule = st.sampled_from([{"mode": "ratio", "sft": 0.4}, {"mode": "ratio", "sft": 0.0},
                            {"mode": "pair_first", "dpo_share": 0.5},
                            {"mode": "pair_first", "dpo_share": 1.0}])
    cfg = Selection(seed=draw(st.integers(0, 3)),
                    split={"instruction": draw(rule), "math": draw(rule), "code": draw(rule),
                           "chinese": draw(st.sampled_from(
                               [{"mode": "sft_only", "model": "a"}, {"mode": "sft_only"},
                                {"mode": "ratio", "sft": 0.5}]))},
                    window_policy=draw(st.sampled_from(["nearest", "strict"])),
                    pairing=draw(st.sampled_from(["best_chosen", "random", "all"])))
    schema = {"score": pl.Float64, "error": pl.String, "verdict": pl.String}
    resp = (pl.DataFrame(rows, schema_overrides=schema) if rows else
            pl.DataFrame(schema={**{k: pl.String for k in bench.make_data(1)[0].columns},
                                 "score": pl.Float64, "truncated": pl.Boolean,
                                 "sample_idx": pl.Int32}).drop("sample_idx"))
    return resp, pl.DataFrame(meta), cfg


FAST = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(tables())
def test_invariants_and_agreement_with_the_loop(data):
    resp, meta, cfg = data
    out = select_tables(resp, meta, cfg)
    lo, hi = cfg.margin[0] - cfg.margin_tolerance, cfg.margin[1] + cfg.margin_tolerance
    by_id = {r["response_id"]: r for r in resp.iter_rows(named=True)}

    def eligible(r):
        ok = r["error"] is None and r["score"] == r["score"] and r["score"] is not None \
            and not r["truncated"]
        return ok and (r["category"] not in VERIFIED or r["verdict"] in ("correct", "passed"))

    for table, pairs in (("dpo", [("chosen_id", "rejected_id", "score_chosen",
                                   "score_rejected")]),
                         ("wrpo", [("chosen_target_id", "rejected_id", "score_chosen_target",
                                    "score_rejected")])):
        for row in out[table].iter_rows(named=True):
            assert lo <= row["margin"] <= hi
            for c_id, r_id, c_s, r_s in pairs:
                c, r = by_id[row[c_id]], by_id[row[r_id]]
                assert c["model"] == r["model"] and row[c_id] != row[r_id]
                assert c["score"] == row[c_s] and r["score"] == row[r_s]
                assert row["margin"] == c["score"] - r["score"]
                assert eligible(c) and r["error"] is None and not r["truncated"]
                if r["category"] in VERIFIED:
                    assert r["verdict"] in cfg.failing_verdicts[r["category"]]
                role = "source" if table == "dpo" else "target"
                assert c["role"] == role and r["role"] == role
        if table == "wrpo" and out[table].height:
            assert all(by_id[i]["role"] == "source" and eligible(by_id[i])
                       for i in out[table]["chosen_source_id"])
    for row in out["sft"].iter_rows(named=True):
        r = by_id[row["response_id"]]
        assert eligible(r) and r["role"] == "source" and r["model"] == row["model"]

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
    n_bad = sum(1 for r in by_id.values() if r["error"] is not None or r["score"] is None
                or r["score"] != r["score"] or r["truncated"])
    assert d.filter(pl.col("split") == "responses").height >= n_bad

    # deterministic and independent of input row order
    again = select_tables(resp.reverse(), meta.reverse(), cfg)
    bench.assert_same(out, again)
    # same result as the plain loop
    bench.assert_same(out, bench.reference_select(resp, meta, cfg))
