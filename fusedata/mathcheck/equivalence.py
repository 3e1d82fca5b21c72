"""Normalisation of answer strings and the math-verify wrapper (gold vs prediction).

Why this exists rather than calling ``math_verify.verify`` directly:

* math-verify's own timeouts use ``signal.alarm``: they only work in the main thread and
  a timed-out check comes back as ``False`` (indistinguishable from "incorrect"). Here all
  math-verify timeouts are disabled; the hard deadline is enforced by killing the worker
  process (see :mod:`fusedata.mathcheck.pool`), which also stops C-level big-int work.
* A few of math-verify's lenient rules produce false positives that would poison DPO
  pairs. They are corrected by guards applied *after* a positive verdict:

  - tiny values compare equal under ``float_rounding=6`` (``1/2^{99}`` vs ``1/2^{98}``,
    ``10^{-7}`` vs ``2\\cdot 10^{-7}``): a relative-difference check on symbol-free values;
  - an equation is compared to a value through its right-hand side even when the left
    side is not a variable (``x+y=5`` vs ``5``): only ``<symbol> = value`` may match a value;
  - words parse as products of symbols (``Monday`` == ``dynamo``): plain words are compared
    as case-folded strings;
  - unbalanced braces parse leniently (``\\frac{1}{2`` == ``\\frac{1}{2}``): a malformed
    prediction is ``incorrect``, a malformed gold is an ``error``.

* Answer noise that math-verify does not remove (plain ``%``, ``°``, trailing plain-text
  units such as ``12 dollars``, ``1{,}000``, ``\\text{(A)}`` multiple-choice letters, ...)
  is normalised first by :func:`normalize_answer`.

Everything in this module is pure and deterministic; it may hang on pathological input
(``9^{9^{9^9}}``), so call it only inside a process you can kill.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

__all__ = [
    "Equivalence",
    "check_equivalence",
    "normalize_answer",
    "parse_answer",
]

#: Relative difference above which two symbol-free values are never "equal", whatever
#: math-verify's absolute rounding says. Only used to veto a positive verdict.
TINY_REL_TOL = 1e-3
#: Values whose magnitude is below this are where absolute rounding misleads.
TINY_ABS = 1e-2


@dataclass(frozen=True, slots=True)
class Equivalence:
    """Verdict of one (gold, answer) comparison.

    ``verdict`` is ``correct``, ``incorrect`` or ``error`` (``timeout`` is added by the pool);
    ``reason`` says which rule decided; the normalised forms are for humans debugging labels.
    """

    verdict: str
    reason: str
    gold_normalized: str = ""
    pred_normalized: str = ""


# --------------------------------------------------------------------------- normalisation

# A choice letter: "(a)"/"(A)" in any case, bare only upper case ("e" and "a" are math).
_MC_RE = re.compile(r"^\(\s*([A-Ea-e])\s*\)$|^([A-E])$")
_MC_PRED_RE = re.compile(r"^\(?\s*([A-E])\s*\)(?:\s|$)|^([A-E])(?:\s*[.:)]|\s*$)")
_WORDS_RE = re.compile(r"[A-Za-z]{2,}(?:[\s\-]+[A-Za-z]+)*")
#: Letter sequences that are math, not words, for the plain-words rule.
_NOT_WORDS = frozenset({"pi", "inf", "oo", "ln", "log", "sin", "cos", "tan", "exp"})
_PERCENT_RE = re.compile(r"\s*\\%$")
_THOUSANDS_RE = re.compile(r"^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:/\d+)?"
_TRAILING_UNIT_RE = re.compile(
    rf"^(?P<num>{_NUM}|\\[dt]?frac\{{[^{{}}]*\}}\{{[^{{}}]*\}})\s*"
    r"(?:\\(?:text|mbox|mathrm|textbf)\{\s*[A-Za-z][A-Za-z\s.]*\}|(?!(?:pi|sqrt|log|ln|sin|cos|tan|exp|inf)\b)[A-Za-z]{2,}(?:\s+[A-Za-z]+)*)"
    r"(?:\^\{?[23]\}?)?\s*\.?$"
)
_TEXT_WRAP_RE = re.compile(r"^\\(?:text|textbf|mbox|mathrm)\{([^{}]*)\}$")


def _strip_delimiters(s: str) -> str:
    s = s.strip()
    changed = True
    while changed:
        changed = False
        for left, right in (("$$", "$$"), ("$", "$"), ("\\[", "\\]"), ("\\(", "\\)")):
            if s.startswith(left) and s.endswith(right) and len(s) >= len(left) + len(right):
                s = s[len(left) : len(s) - len(right)].strip()
                changed = True
    return s


def normalize_answer(s: str) -> str:
    """Remove presentation noise from an answer string; return LaTeX-ish text.

    Idempotent and conservative: it only rewrites patterns whose meaning is unambiguous
    (``\\dfrac`` -> ``\\frac``, ``1{,}000`` -> ``1000``, ``45°`` -> ``45``, ``12 dollars`` ->
    ``12``, ``\\text{(B)}`` -> ``B``). Anything else is left for math-verify.
    Failure mode: none raised; a string it does not understand is returned stripped.
    """
    s = _strip_delimiters(s)
    s = s.rstrip(".").strip()
    m = re.fullmatch(r"\\boxed\{(.*)\}", s, re.DOTALL)
    if m and _braces_balanced(m.group(1)):
        s = _strip_delimiters(m.group(1))
    s = re.sub(r"\\[dt]frac", r"\\frac", s)
    s = s.replace("\\left", "").replace("\\right", "")
    # Thin spaces used as thousands separators (1\,000), then other LaTeX spacing. The
    # look-behind keeps the row separator of matrices (\\ followed by a space) intact.
    s = re.sub(r"(?<=\d)(?<!\\)\\[,!](?=\d{3}(?!\d))", "", s)
    s = re.sub(r"(?<!\\)\\[,!;: ]|~", " ", s)
    s = s.replace("\u2212", "-")
    s = re.sub(r"(\d)\{,\}(\d)", r"\1\2", s)
    s = s.replace("{,}", ",")
    # Degrees: 45^\circ, 45^{\circ}, 45°, 45\degree.
    s = re.sub(r"\^\s*\{?\s*\\circ\s*\}?|°|\\degree\b", "", s)
    # Currency prefixes.
    s = re.sub(r"^\\\$\s*|^\$\s*(?=\d)", "", s)
    # Plain percent sign -> LaTeX percent (math-verify knows \%).
    s = re.sub(r"(?<!\\)%", r"\\%", s)
    s = re.sub(r"\\text(?:bf)?\{\s*\(([A-Ea-e])\)\s*\}", r"(\1)", s).strip()
    m = _TEXT_WRAP_RE.match(s)
    if m:
        s = m.group(1).strip()
    m = _MC_RE.match(s)
    if m:
        return (m.group(1) or m.group(2)).upper()
    if _THOUSANDS_RE.match(s):
        s = s.replace(",", "")
    m = _TRAILING_UNIT_RE.match(s)
    if m:
        s = m.group("num")
    if "\\" not in s:
        # Plain-text gold ("2*pi", "pi/4"): math-verify would read "pi" as p*i.
        s = re.sub(r"(?<![A-Za-z])pi(?![A-Za-z])", r"\\pi", s)
        s = re.sub(r"(?<![A-Za-z])sqrt\(([^()]*)\)", r"\\sqrt{\1}", s)
    s = re.sub(r"\s+", " ", s).strip()
    return s


_SIMPLE_INT_RE = re.compile(r"[-+]?\d+")
_SIMPLE_DEC_RE = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+)")
_SIMPLE_FRAC_RE = re.compile(r"(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}|(-?\d+)/(-?\d+)")
_SEQ_RE = re.compile(
    r"(?P<open>\(|\[|\\\{)?(?P<body>[^()\[\]{}]*,[^()\[\]{}]*)(?P<close>\)|\]|\\\})?"
)


def _simple_number(s: str) -> tuple[Fraction, bool] | None:
    """Exact value of an integer, decimal or numeric fraction, and whether it is a decimal.

    The fast path for the most common answers (OpenMathInstruct-2 golds are mostly plain
    numbers): exact rational arithmetic instead of an ANTLR parse plus sympy. Anything else
    returns None and goes to math-verify.
    """
    try:
        if _SIMPLE_INT_RE.fullmatch(s):
            return Fraction(int(s)), False
        if _SIMPLE_DEC_RE.fullmatch(s):
            return Fraction(s), True
        m = _SIMPLE_FRAC_RE.fullmatch(s)
        if m:
            if m.group(2) is not None:
                num, den = int(m.group(2)), int(m.group(3))
                if m.group(1):
                    num = -num
            else:
                num, den = int(m.group(4)), int(m.group(5))
            if den == 0:
                return None
            return Fraction(num, den), False
    except (ValueError, ZeroDivisionError):
        return None
    return None


def _simple_sequence(s: str) -> tuple[str, list[Fraction], bool] | None:
    """``(kind, values, has_decimal)`` for a tuple/interval/set/list of simple numbers.

    ``kind`` is ``"set"`` for ``\\{..\\}`` and bare comma lists (math-verify compares
    multiple answers as sets), else the bracket pair, e.g. ``"[)"``. Sympy's
    interval/tuple/set comparison costs tens of milliseconds; exact comparison of simple
    values costs microseconds. None for anything else (math-verify decides).
    """
    m = _SEQ_RE.fullmatch(s)
    if m is None:
        return None
    op, cl = m.group("open") or "", m.group("close") or ""
    if bool(op) != bool(cl) or (op == "\\{") != (cl == "\\}"):
        return None
    vals: list[Fraction] = []
    has_dec = False
    for part in m.group("body").split(","):
        got = _simple_number(part.strip())
        if got is None:
            return None
        vals.append(got[0])
        has_dec = has_dec or got[1]
    kind = "set" if op in ("", "\\{") else op + cl
    return kind, vals, has_dec


def _fast_verdict(g: str, p: str) -> tuple[bool, str, str, str] | None:
    """Exact decision for simple numbers and sequences of them, or None to defer.

    Only decides where math-verify would agree: equal exact values are equivalent; unequal
    values are non-equivalent unless a decimal is involved (then math-verify's rounding
    tolerance applies, so it is deferred).
    """
    gn, pn = _simple_number(g), _simple_number(p)
    if gn is not None and pn is not None:
        gd, pd = str(gn[0]), str(pn[0])
        if gn[0] == pn[0]:
            return True, "exact numeric match", gd, pd
        if not (gn[1] or pn[1]):
            return False, "exact numeric mismatch", gd, pd
        return None
    gs, ps = _simple_sequence(g), _simple_sequence(p)
    if gs is None or ps is None or gs[0] != ps[0]:
        return None
    kind = gs[0]
    same = set(gs[1]) == set(ps[1]) if kind == "set" else gs[1] == ps[1]
    if same:
        return True, f"exact match ({kind})", g, p
    if gs[2] or ps[2]:
        return None
    if kind != "set":
        # Two values in brackets may be an interval; sympy treats degenerate ones ([0, 0),
        # (3, 1)) as empty sets that equal each other, so only proper ones are decided here.
        # Three or more values are tuples only with parentheses.
        both = (gs[1], ps[1])
        if any(len(v) == 2 and not v[0] < v[1] for v in both):
            return None
        if kind != "()" and any(len(v) != 2 for v in both):
            return None
    return False, f"exact mismatch ({kind})", g, p


def _braces_balanced(s: str) -> bool:
    depth = 0
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth < 0:
                return False
        i += 1
    return depth == 0


# --------------------------------------------------------------------------- math-verify


@lru_cache(maxsize=1)
def _mv() -> tuple[Any, Any, list[Any]]:
    """Import math-verify lazily (workers pre-import it; the parent never needs it)."""
    import logging

    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    # "Timeout is disabled" warnings are expected: the pool enforces the deadline.
    logging.getLogger("math_verify").setLevel(logging.ERROR)

    cfg = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    return parse, verify, cfg


@lru_cache(maxsize=4096)
def parse_answer(s: str) -> tuple[Any, ...]:
    """Parse a normalised answer with math-verify; ``()`` when nothing parses.

    Tried as ``\\boxed{s}`` first (so the whole string is one answer), then ``$s$``, then raw.
    Cached because golds repeat across many responses. No timeout: may hang on
    pathological input, by design (the pool kills the process).
    """
    parse, _verify, cfg = _mv()
    for text in (f"\\boxed{{{s}}}", f"${s}$", s):
        got = parse(text, extraction_config=cfg, parsing_timeout=None)
        if got:
            return tuple(got)
    return ()


def _numeric_value(obj: Any) -> Any | None:
    """High-precision complex value of a symbol-free sympy expression, else None."""
    try:
        import sympy

        if not isinstance(obj, sympy.Expr) or obj.free_symbols or not obj.is_number:
            return None
        val = sympy.N(obj, 30)
        if not val.is_number or val.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):
            return None
        return complex(val)
    except Exception:  # noqa: BLE001 - any sympy failure just disables the guard
        return None


def _tiny_value_veto(g: Any, p: Any) -> str | None:
    """Reason to reject a positive verdict on tiny values, or None."""
    gv, pv = _numeric_value(g), _numeric_value(p)
    if gv is None or pv is None:
        return None
    scale = max(abs(gv), abs(pv))
    if scale == 0 or scale >= TINY_ABS:
        return None
    rel = abs(gv - pv) / scale
    if rel > TINY_REL_TOL:
        return f"tiny values differ (relative difference {rel:.3g})"
    return None


def _equation_veto(g: Any, p: Any) -> str | None:
    """Reject ``lhs = value`` vs ``value`` unless ``lhs`` is a single variable."""
    import sympy

    g_eq, p_eq = isinstance(g, sympy.Equality), isinstance(p, sympy.Equality)
    if g_eq == p_eq:
        return None
    eq = g if g_eq else p
    if isinstance(eq.lhs, sympy.Symbol):
        return None
    return f"equation with non-variable left side ({eq.lhs}) compared to a value"


def _display(parsed: tuple[Any, ...], fallback: str) -> str:
    if not parsed:
        return fallback
    return str(parsed[0])


def check_equivalence(gold: str, answer: str) -> Equivalence:
    """Compare an extracted ``answer`` to ``gold``; ``verdict`` is correct/incorrect/error.

    Order: cheap string rules (identical normal forms, multiple-choice letters, plain
    words), then math-verify (gold first: it is not symmetric), then the vetoes described
    in the module docstring. Failure modes: an unparseable or malformed *gold* gives
    ``error`` (the label cannot be trusted either way); an unparseable prediction gives
    ``incorrect``; any unexpected exception inside math-verify/sympy gives ``error`` with the
    exception in ``reason``. May not return on pathological input (run it in the pool).
    """
    g = normalize_answer(gold)
    p = normalize_answer(answer)
    if not g:
        return Equivalence("error", "empty gold answer", g, p)
    if not p:
        return Equivalence("incorrect", "empty prediction", g, p)
    if not _braces_balanced(g):
        return Equivalence("error", "malformed gold (unbalanced braces)", g, p)
    if not _braces_balanced(p):
        return Equivalence("incorrect", "malformed prediction (unbalanced braces)", g, p)
    if g == p:
        return Equivalence("correct", "identical after normalisation", g, p)

    if _MC_RE.match(g):
        m = _MC_PRED_RE.match(p)
        if m:
            letter = (m.group(1) or m.group(2)).upper()
            same = letter == g
            return Equivalence(
                "correct" if same else "incorrect", f"multiple choice {letter} vs {g}", g, p
            )
    if (
        _WORDS_RE.fullmatch(g)
        and _WORDS_RE.fullmatch(p)
        and g.casefold() not in _NOT_WORDS
        and p.casefold() not in _NOT_WORDS
    ):
        same = g.casefold() == p.casefold()
        return Equivalence("correct" if same else "incorrect", "plain words compared", g, p)

    fast = _fast_verdict(g, p)
    if fast is not None:
        ok, why, gd, pd = fast
        return Equivalence("correct" if ok else "incorrect", why, gd, pd)

    try:
        _parse, verify, _cfg = _mv()
        gp = parse_answer(g)
        if not gp:
            return Equivalence("error", "gold not parseable by math-verify", g, p)
        pp = parse_answer(p)
        gd, pd = _display(gp, g), _display(pp, p)
        if not pp:
            return Equivalence("incorrect", "prediction not parseable", gd, pd)
        ok = verify(list(gp), list(pp), float_rounding=6, timeout_seconds=None)
        if not ok and (_PERCENT_RE.search(g) or _PERCENT_RE.search(p)):
            # "12.5\%" vs "12.5": math-verify only drops the percent sign for integers.
            g0, p0 = _PERCENT_RE.sub("", g), _PERCENT_RE.sub("", p)
            gp0, pp0 = parse_answer(g0), parse_answer(p0)
            if gp0 and pp0:
                ok = verify(list(gp0), list(pp0), float_rounding=6, timeout_seconds=None)
                if ok:
                    gp, pp = gp0, pp0
        if not ok:
            return Equivalence("incorrect", "math-verify: not equivalent", gd, pd)
        for veto in (_tiny_value_veto, _equation_veto):
            why = veto(gp[0], pp[0])
            if why:
                return Equivalence("incorrect", f"guard: {why}", gd, pd)
        return Equivalence("correct", "math-verify: equivalent", gd, pd)
    except MemoryError:
        return Equivalence("error", "memory limit exceeded", g, p)
    except Exception as exc:  # noqa: BLE001 - reported, never swallowed silently
        return Equivalence("error", f"{type(exc).__name__}: {exc}"[:300], g, p)
