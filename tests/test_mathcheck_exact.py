"""Exact arithmetic (fusedata.mathcheck.exact) and the numeric rules built on it."""

from __future__ import annotations

import time
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusedata.mathcheck.equivalence import (
    MV_MAX_DEPTH,
    _mv,
    check_equivalence,
    collapse_redundant_groups,
    nesting_depth,
    normalize_answer,
)
from fusedata.mathcheck.exact import MAX_DEPTH, TooComplex, evaluate

# Import math-verify now: it raises the recursion limit, which hypothesis warns about when
# it happens inside a property test.
_mv()


@pytest.mark.parametrize(
    ("text", "value", "places"),
    [
        ("3", Fraction(3), None),
        ("3.50", Fraction(7, 2), 2),
        ("-\\frac{1}{2004!}", Fraction(-1, __import__("math").factorial(2004)), None),
        ("0.\\overline{6}", Fraction(2, 3), None),
        ("0.1\\overline{6}", Fraction(1, 6), None),
        ("2^{10}", Fraction(1024), None),
        ("10^{-7}", Fraction(1, 10**7), None),
        ("2 \\times 10^{-7}", Fraction(2, 10**7), None),
        ("\\sqrt{\\frac{9}{4}}", Fraction(3, 2), None),
        ("\\binom{10}{3}", Fraction(120), None),
        ("3\\frac{1}{2}", Fraction(7, 2), None),  # mixed number
        ("-3\\frac{1}{2}", Fraction(-7, 2), None),
        ("2\\sqrt{9}", Fraction(6), None),  # product, not a mixed number
        ("\\left(\\left(3\\right)\\right)!", Fraction(6), None),
        ("(3)(4)", Fraction(12), None),
        ("4^{1/2}", Fraction(2), None),
    ],
)
def test_evaluate_exact(text: str, value: Fraction, places: int | None) -> None:
    got = evaluate(text)
    assert got is not None
    assert got.value == value
    assert got.decimal_places == places


@pytest.mark.parametrize(
    "text", ["x", "\\pi", "\\sqrt{2}", "2^{1/2}", "2^10", "50\\%", "(1, 2)", "1/0", "\\frac{1}{2"]
)
def test_evaluate_declines_non_exact(text: str) -> None:
    assert evaluate(text) is None


def test_huge_values_are_refused_with_a_size_bound_only_when_it_bounds_the_whole() -> None:
    with pytest.raises(TooComplex) as exc:
        evaluate("10^{10^{10}}")
    assert exc.value.min_bits is not None and exc.value.min_bits > 3e10
    with pytest.raises(TooComplex) as exc:
        evaluate("10^{10^{10}} - 10^{10^{10}}")  # = 0: no magnitude claim allowed
    assert exc.value.min_bits is None
    with pytest.raises(TooComplex) as exc:
        evaluate("10^{-10^{10}}")  # tiny, not huge
    assert exc.value.min_bits is None


def test_parsing_is_linear_in_depth_and_capped() -> None:
    def nested(n: int) -> str:
        return "\\frac{1}{" * n + "2" + "}" * n

    t0 = time.perf_counter()
    got = evaluate(nested(MAX_DEPTH // 2 - 1))
    assert got is not None and got.value in (Fraction(2), Fraction(1, 2))
    assert time.perf_counter() - t0 < 1.0
    with pytest.raises(TooComplex):
        evaluate(nested(MAX_DEPTH + 1))


def test_deep_symbolic_answers_are_too_complex_not_slow() -> None:
    deep = "x" + "".join(f"+(x{k}" for k in range(MV_MAX_DEPTH + 3)) + ")" * (MV_MAX_DEPTH + 3)
    assert nesting_depth(deep) > MV_MAX_DEPTH
    t0 = time.perf_counter()
    r = check_equivalence("x", deep)
    assert r.verdict == "too_complex"
    assert time.perf_counter() - t0 < 0.5


def test_redundant_groups_collapse_in_one_pass() -> None:
    assert collapse_redundant_groups("{" * 30 + "x+1" + "}" * 30) == "{x+1}"
    assert collapse_redundant_groups("((x))+(y)") == "(x)+(y)"
    assert collapse_redundant_groups("\\frac{{1}}{2}") == "\\frac{1}{2}"
    assert collapse_redundant_groups("(x)(y)") == "(x)(y)"  # siblings, not nested
    assert collapse_redundant_groups("{ { {x} } }").strip() == "{x}"
    assert collapse_redundant_groups("((x)+(y))") == "((x)+(y))"  # not redundant


@pytest.mark.parametrize(
    ("gold", "pred", "verdict"),
    [
        ("\\frac{1}{7}", "0.142857", "incorrect"),  # truncated repeating decimal
        ("\\frac{1}{7}", "0.\\overline{142857}", "correct"),
        ("\\frac{1}{7}", "0.142857142857\\ldots", "correct"),
        ("\\frac{1}{2004!}", "\\frac{1}{2006!}", "incorrect"),
        ("0.33", "\\frac{1}{3}", "correct"),  # gold rounded to 2 places
        ("0.01", "\\frac{1}{199}", "incorrect"),  # within 0.005 but a factor of ~2
        ("\\pi", "3.1416", "correct"),  # irrational: rounded to 4 places
        ("\\pi", "3.1415", "correct"),  # truncated, within one unit
        ("\\pi", "3.1417", "incorrect"),  # neither rounded nor truncated
        ("\\sqrt{2}", "1.4143", "incorrect"),
        ("\\log_2 8", "3.0", "correct"),  # a decimal equal to an exact integer value
        ("\\pi", "3.142", "correct"),
        ("\\pi", "3.14", "incorrect"),  # fewer than 4 significant digits
        ("10^{-8}\\sqrt{2}", "10^{-8}", "incorrect"),  # math-verify's absolute rounding
        ("1.41", "\\sqrt{2}", "correct"),  # decimal gold, exact prediction rounds to it
        ("1.42", "\\sqrt{2}", "incorrect"),
    ],
)
def test_numeric_rules(gold: str, pred: str, verdict: str) -> None:
    assert check_equivalence(gold, pred).verdict == verdict


_small = st.integers(-50, 50)


@settings(max_examples=80, deadline=None)
@given(a=_small, b=st.integers(1, 40), c=_small, d=st.integers(1, 40), e=st.integers(0, 6))
def test_exact_matches_fraction_arithmetic(a: int, b: int, c: int, d: int, e: int) -> None:
    text = f"\\frac{{{a}}}{{{b}}} + \\frac{{{c}}}{{{d}}} \\cdot 2^{{{e}}} - {a}"
    got = evaluate(text)
    assert got is not None
    assert got.value == Fraction(a, b) + Fraction(c, d) * 2**e - a


@settings(max_examples=60, deadline=None)
@given(
    num=st.integers(1, 10**6),
    den=st.integers(1, 10**6),
    exp=st.integers(-30, 30),
    k=st.integers(2, 9),
    form=st.sampled_from(["frac", "sqrt", "pi"]),
)
def test_values_differing_by_2x_or_more_never_equal(
    num: int, den: int, exp: int, k: int, form: str
) -> None:
    base = {
        "frac": f"\\frac{{{num}}}{{{den}}}",
        "sqrt": f"\\frac{{\\sqrt{{{num}}}}}{{{den}}}",
        "pi": f"\\frac{{{num}\\pi}}{{{den}}}",
    }[form]
    gold = f"{base} \\cdot 10^{{{exp}}}"
    pred = f"{k} \\cdot {base} \\cdot 10^{{{exp}}}"
    assert check_equivalence(gold, pred).verdict == "incorrect", (gold, pred)


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("½", "\\frac{1}{2}"),
        ("2½", "(2+\\frac{1}{2})"),
        ("√2", "\\sqrt{2}"),
        ("x²", "x^{2}"),
        ("−3", "-3"),
        ("∞", "\\infty"),
        ("0.\\overline{3}", "\\frac{1}{3}"),
        ("2 1/2 hours", "\\frac{5}{2}"),
        ("twenty-five apples", "25"),
        ("one half", "\\frac{1}{2}"),  # a fraction word, not "1 half" -> 1
        ("two thirds of the cake", "\\frac{2}{3}"),
        ("**50**", "50"),
        ("\\text{The answer is } 9", "9"),
        ("f^{-1}(x) = \\frac{x-3}{2}", "\\frac{x-3}{2}"),
        ("\\varnothing", "\\emptyset"),
        ("x + y = 5", "x + y = 5"),  # not a function prefix
    ],
)
def test_notation_normalisation(raw: str, norm: str) -> None:
    assert normalize_answer(raw) == norm
