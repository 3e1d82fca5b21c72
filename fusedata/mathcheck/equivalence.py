"""Normalisation of answer strings and the math-verify wrapper (gold vs prediction).

Why this exists rather than calling ``math_verify.verify`` directly:

* math-verify's own timeouts use ``signal.alarm``: they only work in the main thread and
  a timed-out check comes back as ``False`` (indistinguishable from "incorrect"). Here all
  math-verify timeouts are disabled; the hard deadline is enforced by killing the worker
  process (see :mod:`fusedata.mathcheck.pool`), which also stops C-level big-int work.
* Numbers are decided by exact arithmetic first (:mod:`fusedata.mathcheck.exact`):
  math-verify compares through floats with an absolute rounding, which equated ``1/2004!``
  with ``1/2006!`` and ``1/2^{99}`` with ``1/2^{98}`` and accepted the truncated ``0.142857``
  for ``1/7``. Floats remain only for irrational values (:func:`_numeric_decision`).
* A few of math-verify's lenient rules produce false positives that would poison DPO
  pairs. They are corrected by guards applied *after* a positive verdict:

  - an equation is compared to a value through its right-hand side even when the left
    side is not a variable (``x+y=5`` vs ``5``): only ``<symbol> = value`` may match a value;
  - words parse as products of symbols (``Monday`` == ``dynamo``): plain words are compared
    as case-folded strings;
  - unbalanced braces parse leniently (``\\frac{1}{2`` == ``\\frac{1}{2}``): a malformed
    prediction is ``incorrect``, a malformed gold is an ``error``.

* Answer noise that math-verify does not remove (plain ``%``, ``°``, trailing plain-text
  units such as ``12 dollars``, ``1{,}000``, ``\\text{(A)}`` multiple-choice letters, ...)
  is normalised first by :func:`normalize_answer`.

Everything in this module is pure and deterministic. Pure numbers never hang (exact
arithmetic refuses values over its size limit), but symbolic input can (``x + 9^{9^{9^9}}``
makes sympy compute the power), so call it only inside a process you can kill.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

from fusedata.mathcheck.brackets import match_brackets
from fusedata.mathcheck.exact import ExactValue, TooComplex
from fusedata.mathcheck.exact import evaluate as exact_evaluate

__all__ = [
    "Equivalence",
    "check_equivalence",
    "normalize_answer",
    "parse_answer",
]

#: Significant digits a decimal needs to stand for an irrational gold (``1.414`` for
#: ``\\sqrt{2}``, not ``1.41``; ``3.142`` for ``\\pi``, not ``3.14``).
MIN_SIG_DIGITS = 4
#: Deepest ``{}``/``()`` nesting sent to math-verify: its ANTLR LaTeX grammar is exponential
#: in nesting depth (measured: 10 levels 0.6 s, 15 levels 8 s), so deeper answers that exact
#: arithmetic cannot decide get the verdict ``too_complex`` instead of a time-out.
MV_MAX_DEPTH = 12
#: Python recursion limit in processes that call math-verify (see :func:`_mv`).
MV_RECURSION_LIMIT = 8000


@dataclass(frozen=True, slots=True)
class Equivalence:
    """Verdict of one (gold, answer) comparison.

    ``verdict`` is ``correct``, ``incorrect``, ``too_complex`` or ``error`` (``timeout`` is
    added by the pool);
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
    ``12``, ``\\text{(B)}`` -> ``B``, ``**50**`` -> ``50``, ``½`` -> ``\\frac{1}{2}``,
    ``0.\\overline{6}`` -> ``\\frac{2}{3}``, ``2 1/2`` -> ``\\frac{5}{2}``, ``three`` -> ``3``,
    ``f^{-1}(x) = 2x`` -> ``2x``, ``\\varnothing`` -> ``\\emptyset``, ``{{x}}`` -> ``{x}``).
    Anything else is left for math-verify. Every regex here is linear-time (no nested
    quantifiers), because the parent process also calls this on pathological answers.
    Failure mode: none raised; a string it does not understand is returned stripped.
    """
    s = _unicode_to_latex(s)
    s = _strip_delimiters(s)
    s = _repeating_to_frac(s)  # before "." is stripped: "0.333..." keeps its dots
    s = s.rstrip(".").strip()
    s = _strip_markdown(s)
    s = _ANSWER_PHRASE_RE.sub("", s, count=1).strip()
    s = _strip_delimiters(s).rstrip(".").strip()
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
    s = _number_words(s)
    m = _MIXED_RE.match(s)
    if m and 0 < int(m.group(3)) < int(m.group(4)):
        whole, num, den = int(m.group(2)), int(m.group(3)), int(m.group(4))
        s = f"{m.group(1)}\\frac{{{whole * den + num}}}{{{den}}}{s[m.end():]}"
    m = _TRAILING_UNIT_RE.match(s)
    if m:
        s = m.group("num")
    m = _FUNC_PREFIX_RE.match(s)
    if m:
        s = m.group("rhs").strip()
    s = _EMPTYSET_RE.sub(r"\\emptyset", s)
    s = collapse_redundant_groups(s)
    if "\\" not in s:
        # Plain-text gold ("2*pi", "pi/4"): math-verify would read "pi" as p*i.
        s = re.sub(r"(?<![A-Za-z])pi(?![A-Za-z])", r"\\pi", s)
        s = re.sub(r"(?<![A-Za-z])sqrt\(([^()]*)\)", r"\\sqrt{\1}", s)
    s = re.sub(r"\s+", " ", s).strip()
    return s


# --------------------------------------------------------------------------- notation

_UNICODE_MAP = {
    "\u2212": "-", "\u00d7": "\\times ", "\u22c5": "\\cdot ", "\u00b7": "\\cdot ",
    "\u00f7": "\\div ", "\u03c0": "\\pi ", "\u221e": "\\infty ", "\u2264": "\\le ",
    "\u2265": "\\ge ", "\u2260": "\\ne ", "\u222a": "\\cup ", "\u2229": "\\cap ",
    "\u2205": "\\emptyset ", "\u00b1": "\\pm ", "\u03b8": "\\theta ", "\u03b1": "\\alpha ",
    "\u03b2": "\\beta ", "\u00a0": " ", "\u2009": " ", "\u202f": " ",
}
_VULGAR = {
    "\u00bd": (1, 2), "\u2153": (1, 3), "\u2154": (2, 3), "\u00bc": (1, 4), "\u00be": (3, 4),
    "\u2155": (1, 5), "\u2156": (2, 5), "\u2157": (3, 5), "\u2158": (4, 5), "\u2159": (1, 6),
    "\u215a": (5, 6), "\u215b": (1, 8), "\u215c": (3, 8), "\u215d": (5, 8), "\u215e": (7, 8),
}
_SUPERSCRIPTS = str.maketrans("\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079\u207b",
                              "0123456789-")
_SUP_RUN_RE = re.compile("[\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079\u207b]+")
_SQRT_RE = re.compile("\u221a\\s*(\\([^()]*\\)|\\{[^{}]*\\}|\\d+(?:\\.\\d+)?|[A-Za-z])")


def _unicode_to_latex(s: str) -> str:
    """Unicode math notation (``½ π ∞ √2 x² −3``) as the LaTeX math-verify understands."""
    if s.isascii():
        return s
    for ch, (a, b) in _VULGAR.items():
        # "2½" is a mixed number: 2 + 1/2.
        s = re.sub(rf"(\d)\s*{ch}", rf"(\1+\\frac{{{a}}}{{{b}}})", s)
        s = s.replace(ch, f"\\frac{{{a}}}{{{b}}}")
    s = _SUP_RUN_RE.sub(lambda m: "^{" + m.group(0).translate(_SUPERSCRIPTS) + "}", s)
    s = _SQRT_RE.sub(lambda m: "\\sqrt{" + m.group(1).strip("(){}") + "}", s)
    for ch, rep in _UNICODE_MAP.items():
        s = s.replace(ch, rep)
    return s.strip()


_MD_WRAP_RE = re.compile(r"^(\*\*|__|\*)(?P<body>[^*]+?)\1$", re.DOTALL)


def _strip_markdown(s: str) -> str:
    """``**50**`` / ``*(C)*`` / ``__x__`` -> the content (markdown emphasis, not math)."""
    for _ in range(3):
        m = _MD_WRAP_RE.match(s)
        if m is None:
            break
        s = m.group("body").strip()
    return s


#: "The answer is", "Final answer:", "\\text{The answer is }" before the value itself.
_ANSWER_PHRASE_RE = re.compile(
    r"^(?:\\text(?:bf)?\{\s*)?(?:so\s*,?\s*|thus\s*,?\s*|therefore\s*,?\s*)?(?:the\s+)?"
    r"(?:final\s+)?answer(?:\s+is)?\s*:?\s*(?:\}\s*)?(?=\S)",
    re.IGNORECASE,
)
#: ``f(x) =``, ``f^{-1}(x) =``, ``g_1(3) =``: a named function's value is the answer. Not
#: ``x + y = 5`` (no function name) nor ``\\sin(x) = ...`` (a condition, not a value).
_FUNC_PREFIX_RE = re.compile(
    r"^[A-Za-z](?:_\{?\w{1,3}\}?)?(?:\^\{?-1\}?)?\s*\([^()=]{1,20}\)\s*=\s*(?P<rhs>[^=]+)$"
)
_EMPTYSET_RE = re.compile(r"\\varnothing(?![A-Za-z])|\\\{\s*\\\}|\\O(?![A-Za-z])")
_MIXED_RE = re.compile(r"(-?)(\d+)\s+(\d+)\s*/\s*(\d+)(?=\s|$)")
_REPEAT_OVERLINE_RE = re.compile(
    r"(?<![\d.])(-?)(\d*)\.(\d*)\\(?:overline|bar|dot)\{(\d{1,12})\}|"
    r"(?<![\d.])(-?)(\d*)\.(\d*)\\(?:overline|bar|dot)(\d)"
)
_REPEAT_DOTS_RE = re.compile(r"(?<![\d.])(-?)(\d*)\.(\d{2,40})\s*(?:\\[lc]?dots|\.\.\.|\u2026)")


def _rep_frac(sign: str, whole: str, fixed: str, rep: str) -> str:
    k, r = len(fixed), len(rep)
    num = (int(whole or "0") * 10**k + int(fixed or "0")) * (10**r - 1) + int(rep)
    den = 10**k * (10**r - 1)
    g = math.gcd(num, den)
    return f"{sign}\\frac{{{num // g}}}{{{den // g}}}"


def _repeating_to_frac(s: str) -> str:
    """Repeating decimals as exact fractions: ``0.\\overline{6}``, ``0.1\\overline{6}``,
    ``0.666...`` / ``0.142857142857\\ldots`` (a block written out at least twice, or one digit
    three times, before the dots). Dots after a non-repeating tail stay as they are."""
    def over(m: re.Match[str]) -> str:
        if m.group(4) is not None:
            return _rep_frac(m.group(1), m.group(2), m.group(3), m.group(4))
        return _rep_frac(m.group(5), m.group(6), m.group(7), m.group(8))

    s = _REPEAT_OVERLINE_RE.sub(over, s)

    def dots(m: re.Match[str]) -> str:
        digits = m.group(3)
        for r in range(1, len(digits) // 2 + 1):
            for k in range(0, len(digits) - 2 * r + 1):
                tail = digits[k:]
                block = tail[:r]
                need = 3 if r == 1 else 2
                if len(tail) >= need * r and tail == (block * (len(tail) // r + 1))[: len(tail)]:
                    return _rep_frac(m.group(1), m.group(2), digits[:k], block)
        return m.group(0)

    return _REPEAT_DOTS_RE.sub(dots, s)


_ONES = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * (i + 2) for i, w in enumerate(
    "twenty thirty forty fifty sixty seventy eighty ninety".split())}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6}
_FRACTION_WORDS = {
    w: d
    for d, ws in {
        2: ("half", "halves"), 3: ("third", "thirds"), 4: ("quarter", "quarters", "fourth",
        "fourths"), 5: ("fifth", "fifths"), 6: ("sixth", "sixths"), 7: ("seventh", "sevenths"),
        8: ("eighth", "eighths"), 9: ("ninth", "ninths"), 10: ("tenth", "tenths"),
    }.items()
    for w in ws
}
_NUMWORD_RE = re.compile(
    r"^(?P<w>(?:(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|"
    r"fifty|sixty|seventy|eighty|ninety|hundred|thousand|million|and)[\s-]*)+)(?P<rest>.*)$",
    re.IGNORECASE,
)


def _number_words(s: str) -> str:
    """``three`` -> ``3``, ``twenty-five apples`` -> ``25 apples``; anything else unchanged."""
    m = _NUMWORD_RE.match(s)
    if m is None or (m.group("rest") and not m.group("w")[-1:].isspace()):
        return s
    words = [w for w in re.split(r"[\s-]+", m.group("w").lower()) if w and w != "and"]
    if not words or words[0] in _SCALES:
        return s
    total = cur = 0
    for w in words:
        if w in _ONES:
            cur += _ONES[w]
        elif w in _TENS:
            cur += _TENS[w]
        elif w == "hundred":
            cur *= 100
        else:
            total += cur * _SCALES[w]
            cur = 0
    rest = m.group("rest").strip()
    value = total + cur
    first, _sp, after = rest.partition(" ")
    den = _FRACTION_WORDS.get(first.lower().strip(".,"))
    if den is not None:  # "one half", "two thirds": a fraction, not 1 or 2 of a unit
        return f"\\frac{{{value}}}{{{den}}} {after}".strip()
    return f"{value} {rest}".strip() if rest else str(value)


def nesting_depth(s: str) -> int:
    """Deepest ``{}``/``()`` nesting in ``s`` (escaped braces ignored); linear time.

    Failure mode: none; unbalanced brackets count as far as they go."""
    return match_brackets(s, "{(").depth


def collapse_redundant_groups(s: str) -> str:
    """``{{x}}`` -> ``{x}``, ``((x))`` -> ``(x)``: same-kind groups directly inside each
    other mean the same as one. Why: math-verify's LaTeX grammar is exponential in brace
    depth (15 redundant levels take seconds, 20 never finish); one pass, linear time.
    Failure mode: none; unbalanced brackets are left as they are."""
    if not re.search(r"\{\s*\{|\(\s*\(", s):
        return s
    pairs = match_brackets(s, "{(").pairs
    drop: set[int] = set()
    for i, j in pairs.items():
        k = i + 1  # the inner group may be padded with spaces: "{ {x} }"
        while k < j and s[k] == " ":
            k += 1
        end = j - 1
        while end > k and s[end] == " ":
            end -= 1
        if k < j and s[k] == s[i] and pairs.get(k) == end:
            drop.add(i)
            drop.add(j)
    if not drop:
        return s
    return "".join(c for k, c in enumerate(s) if k not in drop)


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
    return match_brackets(s).balanced


# --------------------------------------------------------------------------- math-verify


@lru_cache(maxsize=1)
def _mv() -> tuple[Any, Any, list[Any]]:
    """Import math-verify lazily (workers pre-import it; the parent never needs it)."""
    import logging

    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    # "Timeout is disabled" warnings are expected: the pool enforces the deadline.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    # The ANTLR LaTeX parser recurses once per term: at the default limit (1000) a
    # 1000-term sum fails to parse and came back "not equivalent". Python frames do not use
    # the C stack (CPython >= 3.11); a crash would still only cost this worker ("error").
    sys.setrecursionlimit(max(sys.getrecursionlimit(), MV_RECURSION_LIMIT))

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


def _hp_value(obj: Any) -> Any | None:
    """50-digit sympy value of a symbol-free finite sympy number, else None."""
    try:
        import sympy

        if not isinstance(obj, sympy.Expr) or obj.free_symbols or not obj.is_number:
            return None
        val = sympy.N(obj, 50)
        if not val.is_number or val.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):
            return None
        return val
    except Exception:  # noqa: BLE001 - any sympy failure just disables the numeric rules
        return None


#: A plain decimal literal: the only kind of answer treated as approximate.
_PLAIN_DECIMAL_RE = re.compile(r"-?(\d*)\.(\d+)")


def _approx_places(s: str) -> int | None:
    """Decimal places of ``s`` when the whole answer is a plain decimal, else None."""
    m = _PLAIN_DECIMAL_RE.fullmatch(s)
    return len(m.group(2)) if m else None


def _sig_digits(s: str) -> int:
    digits = s.lstrip("-").replace(".", "").lstrip("0")
    return len(digits)


def _numeric_decision(
    g: str, p: str, gold_obj: Any, gv: Any, pv: Any
) -> tuple[bool, str] | None:
    """Decide symbol-free values that exact arithmetic could not (irrational ones).

    * Neither side a plain decimal: both are exact expressions; equal only if their 50-digit
      values agree to a relative 1e-12 (math-verify's ``float_rounding=6`` compares tiny
      values absolutely and so equates ``10^{-8}\\sqrt{2}`` with ``10^{-8}``).
      Returns None (math-verify's own verdict stands) when they agree.
    * Prediction a plain decimal with ``d`` places, gold exact: correct iff the decimal has
      at least :data:`MIN_SIG_DIGITS` significant digits and is the gold value rounded or
      truncated to ``d`` places. A gold that is rational never gets
      here as equal: exact arithmetic already refused its truncated decimals.
    * Gold a plain decimal with ``d`` places (the problem asked for rounding): correct iff
      the prediction is within half a unit of the gold's last place *and* within 2 % of it.
    In every rule the accepted relative error is far below 2x, so values differing by a
    factor of two or more are never equal.
    """
    import sympy

    scale = max(abs(gv), abs(pv))
    diff = abs(gv - pv)
    gd, pd = _approx_places(g), _approx_places(p)
    if gd is None and pd is None:
        if scale == 0 or diff <= scale * sympy.Float("1e-12"):
            return None
        return False, f"values differ (relative difference {float(diff / scale):.3g})"
    if pd is not None and gd is None:
        if diff <= scale * sympy.Float("1e-30"):  # "3.0" for \\log_2 8
            return True, "decimal equals the exact value"
        if getattr(gold_obj, "is_rational", False):
            return False, "finite decimal vs exact rational"
        if _sig_digits(p) < MIN_SIG_DIGITS:
            return False, f"decimal with fewer than {MIN_SIG_DIGITS} significant digits"
        unit = sympy.Float(10) ** (-pd)
        rounded = diff <= unit / 2 * sympy.Float("1.000001")
        # Truncated: same sign, smaller magnitude, less than one unit short.
        truncated = bool(gv * pv > 0) and abs(pv) <= abs(gv) and abs(gv) - abs(pv) < unit
        ok = bool(rounded) or truncated
        return ok, f"decimal is the exact value rounded or truncated to {pd} places" if ok else (
            f"decimal differs from the exact value by {float(diff):.3g}")
    if gd is not None and pd is None:
        tol = min(sympy.Float("0.5") * sympy.Float(10) ** (-gd) * sympy.Float("1.000001"),
                  sympy.Float("0.02") * abs(gv))
        ok = diff <= tol
        return bool(ok), "prediction rounds to the decimal gold" if ok else (
            "prediction does not round to the decimal gold")
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


def _log2_size(v: Fraction) -> int:
    """An upper bound on ``log2(|v|)`` (0 for |v| < 1)."""
    return max(abs(v.numerator).bit_length() - v.denominator.bit_length() + 1, 0)


def _huge_sum_bits(s: str) -> float | None:
    """A lower bound on ``log2|s|`` for ``H + a + b ...`` where exactly one summand ``H`` is
    too large to compute and has a size bound, and the others are exact and much smaller
    (``10^{10^{10^{10}}} + 1``); None otherwise."""
    terms = _top_level_terms(s)
    if not terms or len(terms) > 100:
        return None
    huge: list[float] = []
    small_bits = 0
    for _sign, text in terms:
        try:
            v = exact_evaluate(text)
        except TooComplex as exc:
            if exc.min_bits is None:
                return None
            huge.append(exc.min_bits)
            continue
        if v is None:
            return None
        small_bits = max(small_bits, _log2_size(v.value))
    if len(huge) != 1 or huge[0] <= small_bits + len(terms) + 2:
        return None
    return huge[0] - 1


def _top_level_terms(s: str) -> list[tuple[int, str]] | None:
    """``s`` as signed top-level summands ``[(+1, "10^{10^{10}}"), (+1, "1")]`` (spaces
    removed), or None when brackets are unbalanced. Linear time."""
    terms: list[tuple[int, str]] = []
    depth = 0
    sign = 1
    cur: list[str] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n:
            cur.append(s[i : i + 2])
            i += 2
            continue
        if c in "{([":
            depth += 1
        elif c in "})]":
            depth -= 1
            if depth < 0:
                return None
        if depth == 0 and c in "+-" and "".join(cur).strip():
            prev = "".join(cur).rstrip()
            if not prev.endswith(("^", "_", "e", "E")):  # not an exponent's sign
                terms.append((sign, "".join(prev.split())))
                cur = []
                sign = 1 if c == "+" else -1
                i += 1
                continue
        if depth == 0 and c in "+-" and not "".join(cur).strip():
            sign = sign * (1 if c == "+" else -1)
            i += 1
            continue
        cur.append(c)
        i += 1
    if depth != 0:
        return None
    last = "".join("".join(cur).split())
    if last:
        terms.append((sign, last))
    return terms


def _cancel_common_terms(g: str, p: str) -> bool | None:
    """Decide ``H + a`` vs ``H + b`` where ``H`` is too large to compute: identical summands
    cancel (the same finite value on both sides), and what remains is compared exactly.
    None when anything but exactly computable summands would remain."""
    gt, pt = _top_level_terms(g), _top_level_terms(p)
    if gt is None or pt is None:
        return None
    rest_p = list(pt)
    rest_g: list[tuple[int, str]] = []
    for term in gt:
        if term in rest_p:
            rest_p.remove(term)
        else:
            rest_g.append(term)
    if len(rest_g) == len(gt):
        return None  # nothing cancelled: no progress
    totals: list[Fraction] = []
    for rest in (rest_g, rest_p):
        total = Fraction(0)
        for sign, text in rest:
            try:
                v = exact_evaluate(text)
            except TooComplex:
                return None
            if v is None or v.has_decimal:
                return None
            total += sign * v.value
        totals.append(total)
    return totals[0] == totals[1]


def _exact_verdict(g: str, p: str) -> Equivalence | None:
    """Decide with exact arithmetic (:mod:`fusedata.mathcheck.exact`) when both sides are
    numbers it understands; None to defer to math-verify.

    Rules: equal exact values are correct. Unequal values are incorrect, except that a
    *gold* written as a finite decimal with ``d`` places accepts an exact prediction within
    half a unit of its last place and 2 % (the problem asked for a rounded answer). A finite
    decimal *prediction* never equals a gold whose exact value differs (``0.142857`` is not
    ``1/7``: a truncated repeating decimal). A value too large to compute is ``incorrect``
    when its size bound proves it differs from the other side, else ``too_complex``; such
    values never go to math-verify (sympy would try to compute them).
    """
    results: list[ExactValue | TooComplex | None] = []
    for side in (g, p):
        try:
            results.append(exact_evaluate(side))
        except TooComplex as exc:
            results.append(exc)
    ge, pe = results
    big = [r for r in results if isinstance(r, TooComplex)]
    if big:
        small = [r for r in results if isinstance(r, ExactValue)]
        if len(big) == 1 and small:
            huge_side = g if isinstance(ge, TooComplex) else p
            min_bits = big[0].min_bits
            if min_bits is None:
                min_bits = _huge_sum_bits(huge_side)
            if min_bits is not None and _log2_size(small[0].value) + 2 < min_bits:
                return Equivalence(
                    "incorrect", f"exact: magnitudes differ (one side > 2^{min_bits:.3g})",
                    _short(g), _short(p),
                )
        cancelled = _cancel_common_terms(g, p)
        if cancelled is not None:
            return Equivalence(
                "correct" if cancelled else "incorrect",
                "exact: equal huge terms cancel, the rest "
                + ("agrees" if cancelled else "differs"),
                _short(g), _short(p),
            )
        return Equivalence("too_complex", f"exact: {big[0]}", _short(g), _short(p))
    if not (isinstance(ge, ExactValue) and isinstance(pe, ExactValue)):
        return None
    gd, pd = _show(ge.value), _show(pe.value)
    if ge.value == pe.value:
        return Equivalence("correct", "exact numeric match", gd, pd)
    if ge.has_decimal and not pe.has_decimal and ge.decimal_places is not None:
        diff = abs(ge.value - pe.value)
        tol = min(Fraction(1, 2 * 10**ge.decimal_places), abs(ge.value) / 50)
        if diff <= tol:
            return Equivalence("correct", "exact: prediction rounds to the decimal gold", gd, pd)
    if pe.has_decimal and not ge.has_decimal:
        return Equivalence("incorrect", "exact: finite decimal differs from exact gold", gd, pd)
    return Equivalence("incorrect", "exact numeric mismatch", gd, pd)


def _show(q: Fraction) -> str:
    """A short display of an exact value (huge ones by size: str() of a 10^5-digit int is slow
    and capped by Python)."""
    if max(abs(q.numerator).bit_length(), q.denominator.bit_length()) > 2000:
        return f"<rational of {abs(q.numerator).bit_length()}/{q.denominator.bit_length()} bits>"
    return str(q)


def _short(s: str) -> str:
    return s if len(s) <= 200 else s[:200] + "..."


def check_equivalence(gold: str, answer: str) -> Equivalence:
    """Compare an extracted ``answer`` to ``gold``.

    Order: normalisation (:func:`normalize_answer`), cheap string rules (identical normal
    forms, multiple-choice letters, plain words), exact arithmetic
    (:func:`_exact_verdict`: integers, rationals, repeating decimals, factorials, huge
    values by size bounds), exact tuples/sets of numbers, the nesting-depth cap
    (:data:`MV_MAX_DEPTH`), math-verify (gold first: it is not symmetric), then the numeric
    rules for symbol-free values (:func:`_numeric_decision`) and the equation guard.

    Verdicts: ``correct`` / ``incorrect``; ``too_complex`` when a value is too large or an
    answer too deeply nested to decide (unusable, never "incorrect"); ``error`` for an
    empty, malformed or unparseable *gold* (the label cannot be trusted either way) and for
    any unexpected exception inside math-verify/sympy (named in ``reason``). An empty,
    malformed or unparseable prediction is ``incorrect``. May still not return on
    pathological symbolic input: run it in the pool, which turns that into ``timeout``.
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
    if g == p or ("\\text" not in g and "".join(g.split()) == "".join(p.split())):
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

    exact = _exact_verdict(g, p)
    if exact is not None:
        return exact
    fast = _fast_verdict(g, p)
    if fast is not None:
        ok, why, gd, pd = fast
        return Equivalence("correct" if ok else "incorrect", why, gd, pd)

    depth = max(nesting_depth(g), nesting_depth(p))
    if depth > MV_MAX_DEPTH:
        return Equivalence(
            "too_complex", f"nesting depth {depth} > {MV_MAX_DEPTH} (not exact arithmetic)", g, p
        )
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
        # Percent answers have two readings (12.5\% = 12.5 = 0.125): math-verify's rules.
        numeric = "%" not in g and "%" not in p
        gv, pv = (_hp_value(gp[0]), _hp_value(pp[0])) if numeric else (None, None)
        if gv is not None and pv is not None:
            num = _numeric_decision(g, p, gp[0], gv, pv)
            approx = _approx_places(g) is not None or _approx_places(p) is not None
            if num is not None and (ok or approx):
                return Equivalence(
                    "correct" if num[0] else "incorrect", f"numeric: {num[1]}", gd, pd
                )
        if not ok:
            return Equivalence("incorrect", "math-verify: not equivalent", gd, pd)
        why = _equation_veto(gp[0], pp[0])
        if why:
            return Equivalence("incorrect", f"guard: {why}", gd, pd)
        return Equivalence("correct", "math-verify: equivalent", gd, pd)
    except MemoryError:
        return Equivalence("error", "memory limit exceeded", g, p)
    except Exception as exc:  # noqa: BLE001 - reported, never swallowed silently
        return Equivalence("error", f"{type(exc).__name__}: {exc}"[:300], g, p)
