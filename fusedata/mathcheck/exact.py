r"""Exact evaluation of numeric answers (integers, rationals, repeating decimals, factorials).

Why this exists: math-verify compares numbers through sympy floats with an absolute
rounding (``float_rounding=6``), which equates ``1/2004!`` with ``1/2006!`` (both round to
0), accepts the truncated decimal ``0.142857`` for ``1/7`` and cannot decide
``10^{10^{10}}`` vs ``3`` before its time limit. Most gold answers (OpenMathInstruct-2,
GSM8K, MATH) are plain numbers, so a small exact evaluator decides them first: values are
:class:`fractions.Fraction` (Python big integers), never floats.

Grammar (a subset of LaTeX; anything else is "not exact", ``None``, and goes to
math-verify)::

    expr    := term (("+" | "-") term)*
    term    := unary ((\times | \cdot | * | / | \div) unary | <implicit product> unary)*
    unary   := ("-" | "+") unary | power
    power   := postfix ("^" (group | digit | unary))?          (right associative)
    postfix := atom "!"*
    atom    := number | "(" expr ")" | "[" expr "]" | "{" expr "}" | \frac{expr}{expr}
             | \sqrt{expr} (perfect squares only) | \binom{expr}{expr}
    number  := digits ["." digits] [\overline{digits}]

The parser is recursive descent without backtracking, so its cost is linear in the input
length and in the nesting depth; nesting deeper than :data:`MAX_DEPTH` raises
:class:`TooComplex` instead of exhausting the stack. Results larger than
:data:`MAX_BITS` (``10^{10^{10}}``, ``(10^{10})!``) are never computed: :class:`TooComplex`
carries a lower bound on their size, which is enough to prove them unequal to an ordinary
number (``10^{10^{10}} != 3``) without computing them.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["MAX_BITS", "MAX_DEPTH", "ExactValue", "TooComplex", "evaluate"]

#: Largest numerator/denominator computed exactly (bits). ``2^{2^{2^{2^2}}}`` = 2^65536
#: (65,537 bits) and ``2004!`` (~19,000 bits) fit; ``10^{10^{10}}`` does not.
MAX_BITS = 1_000_000
#: Deepest bracket / ``\frac`` nesting the evaluator accepts.
MAX_DEPTH = 1000


class TooComplex(Exception):  # noqa: N818 - a verdict name, not an error
    """The value is too large (or too deeply nested) to compute exactly.

    ``min_bits`` is a lower bound on ``log2(|value|)`` when the value is huge (None when the
    expression is too deep rather than too large), used to prove it differs from a small
    value.
    """

    def __init__(self, why: str, min_bits: float | None = None) -> None:
        super().__init__(why)
        self.min_bits = min_bits
        #: Token span of the sub-expression that was too large (set by the parser).
        self.span: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class ExactValue:
    """An exact rational value; ``decimal_places`` is set when a finite decimal literal
    (not a repeating one) was involved, i.e. the writer may have rounded or truncated."""

    value: Fraction
    decimal_places: int | None = None

    @property
    def has_decimal(self) -> bool:
        return self.decimal_places is not None


class _NotExact(Exception):
    """The string is outside the grammar (symbols, irrational values, text, ...)."""


_TOKEN_RE = re.compile(
    r"\s+|(?P<num>\d+(?:\.\d*)?|\.\d+)|(?P<cmd>\\[A-Za-z]+)|(?P<op>[-+*/^!(){}\[\]])"
)
_MUL_CMDS = {"\\times", "\\cdot", "\\ast"}
_DIV_CMDS = {"\\div"}
_IGNORED_CMDS = {"\\left", "\\right", "\\big", "\\Big", "\\bigl", "\\bigr", "\\Bigl", "\\Bigr"}


def _tokens(s: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    n = len(s)
    while pos < n:
        m = _TOKEN_RE.match(s, pos)
        if m is None:
            raise _NotExact(f"unexpected {s[pos]!r}")
        pos = m.end()
        if m.group("num") is not None:
            out.append(("num", m.group("num")))
        elif m.group("cmd") is not None:
            cmd = m.group("cmd")
            if cmd in _IGNORED_CMDS:
                continue
            out.append(("cmd", cmd))
        elif m.group("op") is not None:
            out.append(("op", m.group("op")))
    return out


def _bits(q: Fraction) -> int:
    return max(q.numerator.bit_length(), q.denominator.bit_length())


def _merge_places(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


class _Parser:
    def __init__(self, toks: list[tuple[str, str]]) -> None:
        self.t = toks
        self.i = 0
        self.depth = 0

    # -- helpers
    def peek(self) -> tuple[str, str] | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self, kind: str, text: str | None = None) -> str:
        tok = self.peek()
        if tok is None or tok[0] != kind or (text is not None and tok[1] != text):
            raise _NotExact(f"expected {text or kind}")
        self.i += 1
        return tok[1]

    def at(self, kind: str, text: str) -> bool:
        tok = self.peek()
        return tok is not None and tok == (kind, text)

    def _close(self, open_at: int) -> int:
        """Token index just past the group opened at ``open_at`` (``len`` if unclosed)."""
        depth = 0
        for k in range(open_at, len(self.t)):
            if self.t[k] == ("op", "{"):
                depth += 1
            elif self.t[k] == ("op", "}"):
                depth -= 1
                if depth == 0:
                    return k + 1
        return len(self.t)

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise TooComplex(f"nesting deeper than {MAX_DEPTH}")

    # -- grammar
    def expr(self) -> ExactValue:
        v = self.term()
        while True:
            if self.at("op", "+"):
                self.i += 1
                w = self.term()
                v = self._combine(v, w, v.value + w.value)
            elif self.at("op", "-"):
                self.i += 1
                w = self.term()
                v = self._combine(v, w, v.value - w.value)
            else:
                return v

    def term(self) -> ExactValue:
        v = self.unary()
        while True:
            tok = self.peek()
            if tok is None:
                return v
            if tok in (("op", "*"),) or (tok[0] == "cmd" and tok[1] in _MUL_CMDS):
                self.i += 1
                w = self.unary()
                v = self._combine(v, w, self._mul(v.value, w.value))
            elif tok == ("op", "/") or (tok[0] == "cmd" and tok[1] in _DIV_CMDS):
                self.i += 1
                w = self.unary()
                if w.value == 0:
                    raise _NotExact("division by zero")
                v = self._combine(v, w, self._mul(v.value, 1 / w.value))
            elif tok[0] == "cmd" and tok[1] in ("\\frac", "\\dfrac", "\\tfrac", "\\sqrt"):
                # "2\sqrt{9}" is a product; "3\frac{1}{2}" is a mixed number in answers.
                w = self.unary()
                if tok[1] != "\\sqrt" and self._is_mixed(v, w):
                    v = self._combine(v, w, v.value + (w.value if v.value >= 0 else -w.value))
                else:
                    v = self._combine(v, w, self._mul(v.value, w.value))
            elif tok in (("op", "("), ("op", "{")) or (
                tok[0] == "cmd" and tok[1] in ("\\binom",)
            ):
                w = self.unary()
                v = self._combine(v, w, self._mul(v.value, w.value))
            else:
                return v

    @staticmethod
    def _is_mixed(v: ExactValue, w: ExactValue) -> bool:
        return (
            v.value.denominator == 1
            and not v.has_decimal
            and 0 < w.value < 1
            and not w.has_decimal
        )

    def unary(self) -> ExactValue:
        if self.at("op", "-"):
            self.i += 1
            self.enter()
            v = self.unary()
            self.depth -= 1
            return ExactValue(-v.value, v.decimal_places)
        if self.at("op", "+"):
            self.i += 1
            return self.unary()
        return self.power()

    def power(self) -> ExactValue:
        start = self.i
        base = self.postfix()
        if not self.at("op", "^"):
            return base
        self.i += 1
        self.enter()
        tok = self.peek()
        if tok == ("op", "{"):
            open_at = self.i
            try:
                exp = self.atom()
            except TooComplex as exc:
                # b^E with E huge and positive (E > 2^min_bits) and an integer b >= 2 is
                # at least 2^E: its size alone proves it differs from any computable value.
                huge_exp = exc.min_bits is not None and exc.span == (open_at + 1, self._close(open_at) - 1)
                if huge_exp and base.value.denominator == 1 and abs(base.value) >= 2:
                    tower = TooComplex("power tower too large", min_bits=math.inf)
                    tower.span = (start, self._close(open_at))
                    raise tower from exc
                raise
        elif tok is not None and tok[0] == "num" and "." not in tok[1]:
            # "2^10" in LaTeX is 2^1 followed by 0; plain-text answers mean 2^{10}. Only a
            # single digit is unambiguous.
            if len(tok[1]) != 1:
                raise _NotExact("ambiguous unbraced exponent")
            self.i += 1
            exp = ExactValue(Fraction(int(tok[1])))
        else:
            exp = self.unary()
        self.depth -= 1
        try:
            value = self._pow(base.value, exp.value)
        except TooComplex as exc:
            exc.span = (start, self.i)
            raise
        return ExactValue(value, _merge_places(base.decimal_places, exp.decimal_places))

    def postfix(self) -> ExactValue:
        start = self.i
        v = self.atom()
        while self.at("op", "!"):
            self.i += 1
            try:
                v = ExactValue(self._factorial(v.value), v.decimal_places)
            except TooComplex as exc:
                exc.span = (start, self.i)
                raise
        return v

    def group(self, open_: str, close: str) -> ExactValue:
        self.take("op", open_)
        self.enter()
        v = self.expr()
        self.depth -= 1
        self.take("op", close)
        return v

    def atom(self) -> ExactValue:
        tok = self.peek()
        if tok is None:
            raise _NotExact("unexpected end")
        kind, text = tok
        if kind == "num":
            self.i += 1
            return self._number(text)
        if kind == "op" and text in "([{":
            return self.group(text, {"(": ")", "[": "]", "{": "}"}[text])
        if kind == "cmd":
            self.i += 1
            if text in ("\\frac", "\\dfrac", "\\tfrac"):
                a = self.group("{", "}")
                b = self.group("{", "}")
                if b.value == 0:
                    raise _NotExact("division by zero")
                return ExactValue(
                    self._mul(a.value, 1 / b.value),
                    _merge_places(a.decimal_places, b.decimal_places),
                )
            if text == "\\binom":
                a = self.group("{", "}")
                b = self.group("{", "}")
                return ExactValue(
                    self._binom(a.value, b.value), _merge_places(a.decimal_places, b.decimal_places)
                )
            if text == "\\sqrt":
                if self.at("op", "["):
                    raise _NotExact("n-th root")
                a = self.group("{", "}")
                return ExactValue(self._sqrt(a.value), a.decimal_places)
        raise _NotExact(f"unsupported {text!r}")

    def _number(self, text: str) -> ExactValue:
        if self.at("cmd", "\\overline"):
            self.i += 1
            self.take("op", "{")
            rep = self.take("num")
            self.take("op", "}")
            if not rep.isdigit():
                raise _NotExact("bad repeating block")
            whole, _, frac = text.partition(".")
            if "." not in text:
                raise _NotExact("\\overline without a decimal point")
            k, r = len(frac), len(rep)
            base = Fraction(int(whole or "0") * 10**k + int(frac or "0"), 10**k)
            return ExactValue(base + Fraction(int(rep), 10**k * (10**r - 1)))
        if "." in text:
            places = len(text.partition(".")[2])
            return ExactValue(Fraction(text.rstrip(".") or "0"), places)
        return ExactValue(Fraction(int(text)))

    # -- arithmetic with size guards
    @staticmethod
    def _combine(a: ExactValue, b: ExactValue, value: Fraction) -> ExactValue:
        return ExactValue(value, _merge_places(a.decimal_places, b.decimal_places))

    @staticmethod
    def _mul(a: Fraction, b: Fraction) -> Fraction:
        if _bits(a) + _bits(b) > MAX_BITS:
            raise TooComplex("product too large", min_bits=None)
        return a * b

    @staticmethod
    def _pow(base: Fraction, exp: Fraction) -> Fraction:
        if exp.denominator != 1:
            root = exp.denominator
            if base < 0 or root > 64:
                raise _NotExact("fractional power")
            out = _Parser._pow(base, Fraction(exp.numerator))
            num, den = _iroot(out.numerator, root), _iroot(out.denominator, root)
            if num is None or den is None:
                raise _NotExact("irrational root")
            return Fraction(num, den)
        e = exp.numerator
        if base in (0, 1) or (base == -1):
            if base == 0 and e < 0:
                raise _NotExact("division by zero")
            return base**e
        size = abs(e) * math.log2(max(abs(base.numerator), base.denominator))
        if size > MAX_BITS:
            huge = base.denominator == 1 and e > 0
            raise TooComplex("power too large", min_bits=size if huge else None)
        return base**e

    @staticmethod
    def _factorial(v: Fraction) -> Fraction:
        if v.denominator != 1 or v < 0:
            raise _NotExact("factorial of a non-natural number")
        n = v.numerator
        # log2(n!) >= n*log2(n/e)
        size = n * math.log2(n / math.e) if n > 2 else 1.0
        if size > MAX_BITS:
            raise TooComplex("factorial too large", min_bits=size)
        return Fraction(math.factorial(n))

    @staticmethod
    def _binom(a: Fraction, b: Fraction) -> Fraction:
        if a.denominator != 1 or b.denominator != 1 or a < 0 or b < 0:
            raise _NotExact("binomial of non-naturals")
        n, k = a.numerator, b.numerator
        if min(k, n - k) * math.log2(max(n, 2)) > MAX_BITS:
            raise TooComplex("binomial too large")
        return Fraction(math.comb(n, k))

    @staticmethod
    def _sqrt(v: Fraction) -> Fraction:
        if v < 0:
            raise _NotExact("square root of a negative number")
        num, den = _iroot(v.numerator, 2), _iroot(v.denominator, 2)
        if num is None or den is None:
            raise _NotExact("irrational square root")
        return Fraction(num, den)


def _iroot(n: int, k: int) -> int | None:
    """Exact integer k-th root of ``n >= 0``, or None."""
    if n < 2:
        return n
    if k == 2:
        r = math.isqrt(n)
        return r if r * r == n else None
    r = round(n ** (1.0 / k)) if n.bit_length() < 1000 else None
    if r is None:
        return None
    for c in (r - 1, r, r + 1):
        if c >= 0 and c**k == n:
            return c
    return None


def evaluate(s: str) -> ExactValue | None:
    """Exact value of a numeric LaTeX / plain-text answer, or None if it is not one.

    Failure modes: returns None for anything outside the grammar in the module docstring
    (symbols, ``\\pi``, irrational roots, percent signs, text, tuples); raises
    :class:`TooComplex` when the value would exceed :data:`MAX_BITS` or the nesting exceeds
    :data:`MAX_DEPTH`. Never returns a rounded value.
    """
    try:
        toks = _tokens(s)
    except _NotExact:
        return None
    if not toks:
        return None
    p = _Parser(toks)
    old = sys.getrecursionlimit()
    # Each nesting level costs a few Python frames (no C stack in CPython >= 3.11).
    sys.setrecursionlimit(max(old, 12 * MAX_DEPTH + 200))
    try:
        v = p.expr()
        if p.i != len(toks):
            return None
        return v
    except TooComplex as exc:
        # The size bound describes the sub-expression that overflowed; it bounds the whole
        # value only when that sub-expression is the whole answer (not "10^{10^{10}} - ...").
        if exc.span != (0, len(toks)):
            exc.min_bits = None
        raise
    except _NotExact:
        return None
    except (ZeroDivisionError, OverflowError, ValueError):
        return None
    finally:
        sys.setrecursionlimit(old)
