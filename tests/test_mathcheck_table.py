"""The labelled gold/prediction table, checked through the real worker pool."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fusedata.mathcheck import CheckPool, Equivalence, normalize_answer
from fusedata.mathcheck.equivalence import _fast_verdict, _mv, parse_answer
from tests.mathcheck_table import TABLE

# Import math-verify now: it raises the recursion limit, which hypothesis warns about when
# it happens inside a property test.
_mv()


@pytest.fixture(scope="module")
def table_results() -> list[Equivalence]:
    # One pool for the whole table: the path the verify stage uses, with deadlines.
    with CheckPool(timeout_s=10.0) as pool:
        return pool.run([(gold, pred) for gold, pred, _ in TABLE])


def test_table_is_large_and_balanced() -> None:
    assert len(TABLE) >= 200
    verdicts = [v for _, _, v in TABLE]
    assert verdicts.count("correct") >= 80
    assert verdicts.count("incorrect") >= 70
    assert len({(g, p) for g, p, _ in TABLE}) == len(TABLE), "duplicate rows"


@pytest.mark.parametrize(
    ("idx", "gold", "pred", "expected"),
    [(i, g, p, v) for i, (g, p, v) in enumerate(TABLE)],
    ids=[f"{i}:{g[:20]}|{p[:20]}" for i, (g, p, _) in enumerate(TABLE)],
)
def test_table_row(
    table_results: list[Equivalence], idx: int, gold: str, pred: str, expected: str
) -> None:
    got = table_results[idx]
    assert got.verdict == expected, f"{gold!r} vs {pred!r}: {got}"


# --- the exact fast path must agree with math-verify wherever it decides ---------------

_num = st.one_of(
    st.integers(-30, 30).map(str),
    st.tuples(st.integers(-9, 9), st.integers(1, 9)).map(lambda t: f"\\frac{{{t[0]}}}{{{t[1]}}}"),
    st.tuples(st.integers(-9, 9), st.integers(1, 9)).map(lambda t: f"{t[0]}/{t[1]}"),
    st.sampled_from(["0.5", "2.25", "-1.5", "3.0", "0.333333", "0.1"]),
)
_seq = st.tuples(
    st.sampled_from([("(", ")"), ("[", ")"), ("[", "]"), ("\\{", "\\}"), ("", "")]),
    st.lists(st.integers(-5, 5).map(str), min_size=2, max_size=3),
).map(lambda t: t[0][0] + ", ".join(t[1]) + t[0][1])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair=st.one_of(st.tuples(_num, _num), st.tuples(_seq, _seq)))
def test_fast_path_agrees_with_math_verify(pair: tuple[str, str]) -> None:
    gold, pred = pair
    fast = _fast_verdict(normalize_answer(gold), normalize_answer(pred))
    if fast is None:
        return
    parse, verify, _cfg = _mv()
    mv = verify(list(parse_answer(gold)), list(parse_answer(pred)), timeout_seconds=None)
    assert fast[0] == mv, (gold, pred, fast)


@pytest.mark.parametrize("text", [g for g, _, _ in TABLE] + [p for _, p, _ in TABLE])
def test_normalisation_is_idempotent(text: str) -> None:
    once = normalize_answer(text)
    assert normalize_answer(once) == once
