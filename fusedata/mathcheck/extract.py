"""Final-answer extraction from a full (chain-of-thought) solution.

Why a separate module: the verifier's correctness label is only as good as the span it
compares. Extraction is pure string work, runs in the parent process (so identical
(gold, answer) checks can be deduplicated before any sympy work) and must never
guess: a wrong extraction silently turns a DPO pair upside down. The rules are tried in a
fixed order and the rule that fired is recorded so labels can be audited.

Rules, in order:

``boxed``
    The last ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces honoured; the unbraced form
    ``\\boxed 5`` is accepted). If the same line holds several boxes
    (``\\boxed{2} and \\boxed{3}``) they are joined with ``", "`` (rule ``boxed_multi``).
``final_answer``
    ``final answer is ...`` / ``final answer: ...`` (to the end of that line).
Fallbacks (configurable, see :data:`DEFAULT_FALLBACKS`):
    ``answer_is`` (``the answer is ...``), ``bare`` (the whole text when it is a short single
    line, i.e. the caller passed a bare final answer) and ``last_number`` (off by default:
    the last number of a chain of thought is too often an intermediate value).

Nothing matched: ``rule == "no_answer"`` and ``answer is None``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ALL_FALLBACKS",
    "DEFAULT_FALLBACKS",
    "Extraction",
    "extract_answer",
    "find_boxed",
]

DEFAULT_FALLBACKS: tuple[str, ...] = ("answer_is", "bare")
ALL_FALLBACKS: tuple[str, ...] = ("answer_is", "bare", "last_number")

#: A bare answer longer than this is assumed to be prose, not a final answer.
BARE_MAX_CHARS = 120

_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_FINAL_RE = re.compile(r"final\s+answer\s*(?:is|:)\s*:?\s*(.+)", re.IGNORECASE)
_ANSWER_IS_RE = re.compile(r"\banswer\s+is\s*:?\s*(.+)", re.IGNORECASE)
_NUMBER_RE = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?")


@dataclass(frozen=True, slots=True)
class Extraction:
    """Result of :func:`extract_answer`: the answer span (or None) and the rule that fired."""

    answer: str | None
    rule: str


def _match_braced(text: str, open_idx: int) -> int | None:
    """Return the index just past the brace closing ``text[open_idx] == "{"``.

    Escaped braces (``\\{``) do not count. Returns None when the group is unclosed, which
    happens for truncated generations; the caller then falls through to the next rule.
    """
    depth = 0
    i = open_idx
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def _box_content(text: str, start: int) -> tuple[str, int] | None:
    """Content of the box command ending at ``start`` and the index after it, or None."""
    i = start
    n = len(text)
    while i < n and text[i] in " \t":
        i += 1
    if i >= n:
        return None
    if text[i] == "{":
        end = _match_braced(text, i)
        if end is None:
            return None
        return text[i + 1 : end - 1], end
    # Unbraced form: \boxed 5  -> up to whitespace / '$'.
    m = re.match(r"[^\s$]+", text[i:])
    if m is None:
        return None
    return m.group(0), i + m.end()


def find_boxed(text: str) -> list[tuple[int, str]]:
    """All well-formed ``\\boxed``/``\\fbox`` contents as ``(start_offset, content)``.

    Unclosed boxes (truncated output) are skipped rather than guessed at.
    """
    out: list[tuple[int, str]] = []
    for m in _BOX_RE.finditer(text):
        got = _box_content(text, m.end())
        if got is not None:
            out.append((m.start(), got[0].strip()))
    return out


def _clean_tail(span: str) -> str:
    """Strip sentence punctuation and math delimiters from a prose answer span."""
    s = span.strip()
    # Stop at a sentence break such as ". I hope" (decimals like 3.5 have no space).
    s = re.split(r"\.\s+(?=[A-Z])|\.\s*$", s, maxsplit=1)[0].strip()
    boxed = find_boxed(s)
    if boxed:
        return boxed[-1][1]
    for left, right in (("$$", "$$"), ("$", "$"), ("\\[", "\\]"), ("\\(", "\\)")):
        if s.startswith(left) and s.endswith(right) and len(s) >= len(left) + len(right):
            s = s[len(left) : len(s) - len(right)].strip()
    return s.rstrip(".").strip()


def extract_answer(text: str, fallbacks: Sequence[str] = DEFAULT_FALLBACKS) -> Extraction:
    """Extract the final answer from ``text`` (a full response or a bare answer).

    Failure modes: returns ``Extraction(None, "no_answer")`` when no rule matches, including
    when the only box is unclosed (truncated generation). An unknown fallback name raises
    ``ValueError`` (a typo must not silently disable a rule).
    """
    unknown = [f for f in fallbacks if f not in ALL_FALLBACKS]
    if unknown:
        raise ValueError(f"unknown fallback rule(s) {unknown}; known: {ALL_FALLBACKS}")
    if not text or not text.strip():
        return Extraction(None, "no_answer")

    boxes = [(pos, c) for pos, c in find_boxed(text) if c]
    if boxes:
        last_pos, last = boxes[-1]
        line_start = text.rfind("\n", 0, last_pos) + 1
        same_line = [c for pos, c in boxes if pos >= line_start]
        if len(same_line) > 1:
            return Extraction(", ".join(same_line), "boxed_multi")
        return Extraction(last, "boxed")

    finals = list(_FINAL_RE.finditer(text))
    if finals:
        ans = _clean_tail(finals[-1].group(1))
        if ans:
            return Extraction(ans, "final_answer")

    for rule in fallbacks:
        if rule == "answer_is":
            hits = list(_ANSWER_IS_RE.finditer(text))
            if hits:
                ans = _clean_tail(hits[-1].group(1))
                if ans:
                    return Extraction(ans, "answer_is")
        elif rule == "bare":
            s = text.strip()
            if "\n" not in s and len(s) <= BARE_MAX_CHARS:
                ans = _clean_tail(s)
                if ans:
                    return Extraction(ans, "bare")
        elif rule == "last_number":
            nums = _NUMBER_RE.findall(text)
            if nums:
                return Extraction(nums[-1], "last_number")
    return Extraction(None, "no_answer")
