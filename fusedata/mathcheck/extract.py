"""Final-answer extraction from a full (chain-of-thought) solution.

Why a separate module: the verifier's correctness label is only as good as the span it
compares. Extraction is pure string work, runs in the parent process (so identical
(gold, answer) checks can be deduplicated before any sympy work) and must never
guess: a wrong extraction silently turns a DPO pair upside down. The rules are tried in a
fixed order and the rule that fired is recorded (``MathVerdict.rule``, stored in the verify
stage's ``verdict_detail``) so labels can be audited. Every regex here is linear-time: this
runs without a deadline.

The cascade, in order (the first that yields an answer wins):

1. ``boxed``: the last ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces honoured; the
   unbraced ``\\boxed 5`` is accepted; unclosed boxes of truncated outputs are skipped).
   Several boxes on the last box's line are a *list* (``boxed_multi``: joined with ``", "``)
   when the gold is list-shaped (a top-level comma or ``\\pm``; a parenthesised gold gets a
   parenthesised join) or when only list connectors (``,``/``and``/``or``/``x =``) separate
   them; otherwise they are a running computation (``\\boxed{12}, then \\boxed{8}, total
   \\boxed{20}``) and the last box is the answer (``boxed_last``).
2. Explicit answer markers; when several occur, the one latest in the text wins (models
   correct themselves), ties in this order:
   ``final_answer`` (``final answer is X`` / ``Final Answer: X``, including Minerva's
   ``Final Answer: The final answer is $X$. I hope it is correct.``),
   ``answer_label`` (a line ``Answer: X`` / ``**Answer:** X`` / a heading or bold line
   ``### Final answer`` / ``**Final Answer**`` with the answer on the next line),
   ``gsm8k`` (``#### 280``), ``answer_is`` (``... the answer is X``).
3. ``bold``: the last bold span holding a number, a choice letter or LaTeX in the last
   three lines (``Janet makes **$18**``).
4. ``last_sentence``: the last sentence with a digit (pleasantries such as "I hope this
   helps!" skipped): its last math span, else the right side of its last ``=`` (``earning
   16 x 2 = $32.``), else its only number. Several numbers and no ``=``: no answer.
5. ``bare``: the whole text when it is one short line (a bare final answer).
6. ``last_number`` (off by default): the last number of the text.

A marker's span is cleaned the same way everywhere: cut at the end of its sentence, math
delimiters and markdown emphasis removed, a box inside it preferred, and a prose span
(``Janet makes $18 every day``) reduced by the ``last_sentence`` logic; a pure computation
``16 \\times 2 = 32`` keeps its result.

Rules 2-6 are the configurable ``fallbacks``; :data:`DEFAULT_FALLBACKS` enables all but
``last_number``: on the labelled table in ``tests/mathcheck_table.py`` this is the
configuration that agrees best with human labels (``benchmarks/math_agreement.py``).
Nothing matched: ``rule == "no_answer"`` and ``answer is None``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from fusedata.mathcheck.brackets import match_brackets

__all__ = [
    "ALL_FALLBACKS",
    "DEFAULT_FALLBACKS",
    "Extraction",
    "extract_answer",
    "find_boxed",
]

ALL_FALLBACKS: tuple[str, ...] = (
    "answer_label",
    "gsm8k",
    "answer_is",
    "bold",
    "last_sentence",
    "bare",
    "last_number",
)
DEFAULT_FALLBACKS: tuple[str, ...] = tuple(f for f in ALL_FALLBACKS if f != "last_number")

#: A bare answer longer than this is assumed to be prose, not a final answer.
BARE_MAX_CHARS = 120
#: A marker's span with this many prose words (outside math) is a sentence to be reduced
#: to its answer ("The total is **$18**"); "45 degrees" or "2 and 3" is an answer.
PROSE_WORDS = 2

#: Words that do not make a span prose: list connectors and number words ("twenty-five").
_NOT_PROSE = frozenset(
    "and or zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty "
    "seventy eighty ninety hundred thousand million".split()
)
#: A digit, or a unicode character that writes a number (½, π, ∞, √, ∅).
_DIGITISH = "[0-9\u00bc-\u00be\u2150-\u215e\u03c0\u221e\u221a\u2205]"
_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_FINAL_RE = re.compile(r"final\s+answer\s*(?:is|:)[ \t]*:?[ \t]*\**[ \t]*(.*)", re.IGNORECASE)
_LABEL_RE = re.compile(
    r"^[ \t>*_#-]*(?:final\s+)?answer[ \t]*(?:\*\*|__)?[ \t]*(?::|：|(?=(?:\*\*|__)?[ \t]*$))"
    r"[ \t]*(?:\*\*|__)?[ \t]*(.*)$",
    re.IGNORECASE | re.MULTILINE,
)
_GSM8K_RE = re.compile(r"^[ \t]*####[ \t]*([^\n:]{1,40})$", re.MULTILINE)
_ANSWER_IS_RE = re.compile(
    r"(?<!final )(?<!final\n)\banswers?\s+(?:is|are|would\s+be|should\s+be)\s*:?[ \t]*(.*)",
    re.IGNORECASE,
)
_BOLD_RE = re.compile(r"\*\*([^*\n]{1,80})\*\*")
_NUMBER_RE = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?")
#: A number as written in prose, with its currency sign / percent / degree / fraction.
_PROSE_NUMBER_RE = re.compile(
    r"(?:\\?\$\s*)?-?(?:\d+\s+\d+/\d+(?!\d)|\d+(?:,\d{3})*(?:\.\d+)?(?:\s*/\s*\d+)?)"
    "(?:\\s*(?:\u03c0|\\\\pi\\b|\u221a\\d+))?"
    r"(?:\s*(?:\\?%|°))?"
    "|(?:\\d+\\s*)?[\u00bc-\u00be\u2150-\u215e]|[\u221e\u2205]|\u221a\\d+"
)
#: Words that mark a sentence's clause as its conclusion ("so he is left with 6 marbles").
_CONCLUSION_RE = re.compile(
    r"\b(?:so|therefore|thus|hence|total|totals|altogether|overall|in all|left|remain\w*|"
    r"final(?:ly)?|result\w*|answer)\b",
    re.IGNORECASE,
)
_MATH_SPAN_RE = re.compile(r"(?<!\\)\$\$?([^$]+?)(?<!\\)\$\$?|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.S)
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])[ \t]+(?=[A-Z\\$*(\d])|\n+")
_DISPLAY_START_RE = re.compile(r"(\\\[|\$\$)\s*")
_LEADING_ANSWER_RE = re.compile(
    r"^(\$[^$]{1,60}\$|[^\s(,;$]{1,40})(?:\s+[A-Za-z]+){0,2}?\s*"
    r"(?:\(|,|;|\u2014|--|\bbecause\b|\bsince\b|"
    r"\bwhich\b|\bas\b)",
    re.IGNORECASE,
)
#: A right-hand side that is a plain number (integer, decimal, fraction, root, pi multiple).
_NUMERIC_RHS_RE = re.compile(
    r"-?\s*(?:\d+(?:\.\d+)?|\\[dt]?frac\{-?\d+\}\{\d+\}|\d+/\d+)"
    r"(?:\s*\\(?:pi|sqrt\{\d+\}))?(?:\s*\\%)?"
)
_MINERVA_PREFIX_RE = re.compile(r"^\s*(?:the\s+)?final\s+answer\s+is\s*:?\s*", re.IGNORECASE)
#: Separators between boxes that make them one list of answers, not steps.
_LIST_GLUE_RE = re.compile(
    r"^(?:[ \t$,;.]|\\quad|\\qquad|\\text\{\s*(?:and|or)\s*\}|\band\b|\bor\b|"
    r"[A-Za-z](?:_\{?\d\}?)?\s*=)*$",
    re.IGNORECASE,
)
#: The same across lines and display math (``\\[ x = \\boxed{2} \\]\\n\\[ x = \\boxed{3} \\]``),
#: used only when the gold itself is a list.
_LIST_GLUE_LINES_RE = re.compile(
    r"^(?:[\s$,;.]|\\quad|\\qquad|\\\[|\\\]|\\\(|\\\)|\\text\{\s*(?:and|or)\s*\}|\band\b|"
    r"\bor\b|[A-Za-z](?:_\{?\d\}?)?\s*=)*$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Extraction:
    """Result of :func:`extract_answer`: the answer span (or None) and the rule that fired."""

    answer: str | None
    rule: str


def _box_content(text: str, start: int, pairs: dict[int, int]) -> tuple[str, int] | None:
    """Content of the box command ending at ``start`` and the index after it, or None."""
    i = start
    n = len(text)
    while i < n and text[i] in " \t":
        i += 1
    if i >= n:
        return None
    if text[i] == "{":
        close = pairs.get(i)
        if close is None:
            return None
        return text[i + 1 : close], close + 1
    # Unbraced form: \boxed 5  -> up to whitespace / '$'.
    m = re.match(r"[^\s$]{1,200}", text[i : i + 200])
    if m is None:
        return None
    return m.group(0), i + m.end()


def _find_boxes(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, content)`` of every well-formed box; linear time."""
    if "\\boxed" not in text and "\\fbox" not in text:
        return []
    # Computed once per text: matching each box separately is quadratic on a text of many
    # unclosed boxes (truncated generations), which are absent from ``pairs`` and skipped.
    pairs = match_brackets(text).pairs
    out: list[tuple[int, int, str]] = []
    for m in _BOX_RE.finditer(text):
        got = _box_content(text, m.end(), pairs)
        if got is not None:
            out.append((m.start(), got[1], got[0].strip()))
    return out


def find_boxed(text: str) -> list[tuple[int, str]]:
    """All well-formed ``\\boxed``/``\\fbox`` contents as ``(start_offset, content)``.

    Unclosed boxes (truncated output) are skipped rather than guessed at. Linear time.
    """
    return [(start, content) for start, _end, content in _find_boxes(text)]


def _math_span_matches(s: str) -> list[tuple[int, int, str]]:
    """``(start, end, content)`` of ``$..$`` / ``\\(..\\)`` / ``\\[..\\]`` spans that are
    math, not two currency signs around prose (``$2 each, earning 16 x 2 = $32``)."""
    out = []
    for m in _MATH_SPAN_RE.finditer(s):
        body = next(g for g in m.groups() if g is not None).strip()
        if len(re.findall(r"(?<!\\)\b[A-Za-z]{3,}\b", re.sub(r"\\text\{[^{}]*\}", "", body))) < 2:
            out.append((m.start(), m.end(), body))
    return out


def _math_spans(s: str) -> list[str]:
    return [body for _s, _e, body in _math_span_matches(s)]


def _last_math_answer(sent: str) -> str | None:
    """The last math span with a digit or command; spans joined only by list glue
    (``$x = 2$ or $x = 3$``) are one list answer."""
    spans = [t for t in _math_span_matches(sent) if re.search(r"[\d\\]", t[2])]
    if not spans:
        return None
    run = [spans[-1]]
    for prev in reversed(spans[:-1]):
        if not _LIST_GLUE_RE.match(sent[prev[1] : run[0][0]]):
            break
        run.insert(0, prev)
    if len(run) == 1:
        return _rhs_of_computation(run[0][2])
    return ", ".join(_strip_var(body) for _s, _e, body in run)


def _strip_var(body: str) -> str:
    """``x = 2`` -> ``2`` inside a list of roots."""
    m = re.fullmatch(r"[A-Za-z](?:_\{?\d\}?)?\s*=\s*(.+)", body.strip())
    return m.group(1).strip() if m else body.strip()


def _words_outside_math(s: str) -> int:
    """Prose words in ``s`` (3+ letters, not LaTeX commands, not list connectors)."""
    plain = s
    for span in _math_spans(s):
        plain = plain.replace(span, " ")
    plain = re.sub(r"\\[A-Za-z]+|\{[^{}]*\}", " ", plain)
    words = re.findall(r"[A-Za-z]{3,}", plain)
    return sum(w.lower() not in _NOT_PROSE for w in words)


def _rhs_of_computation(s: str) -> str:
    """``16 \\times 2 = 32`` -> ``32``; ``x = 5`` and ``f(x) = 2x`` are kept (the checker
    knows how to compare equations; only a letter-free left side is a computation)."""
    if "=" not in s or any(op in s for op in ("\\le", "\\ge", "<", ">", "\\ne")):
        return s
    parts = s.split("=")
    rhs = parts[-1].strip()
    lhs = re.sub(r"\\(?:times|cdot|div|frac|dfrac|tfrac|left|right|sqrt)", " ", parts[0])
    if not re.search(r"[A-Za-z]", lhs):
        return rhs or s
    # "\\frac{a}{b} = \\frac{3}{4}", "a + b = 12": a named quantity equal to a number states
    # that number. Lists ("x = 2 or x = 3", "x = 1, y = 2") stay whole.
    if re.search(r",|\b(?:or|and)\b|\\text", s) or not _NUMERIC_RHS_RE.fullmatch(rhs):
        return s
    return rhs


def _answer_from_sentence(sent: str) -> str | None:
    """The answer stated in one prose sentence, or None when it is not clear which."""
    sent = sent.strip().rstrip(".!").strip()
    bold = [b.strip() for b in _BOLD_RE.findall(sent) if _answer_like(b)]
    if bold:
        return _rhs_of_computation(bold[-1].strip("$ "))
    math_answer = _last_math_answer(sent)
    if math_answer:
        return math_answer
    plain = sent.replace("**", "")
    if "=" in plain:
        nums = _PROSE_NUMBER_RE.findall(plain.rsplit("=", 1)[1])
        if nums:
            return nums[0].strip()
    nums = list(_PROSE_NUMBER_RE.finditer(plain))
    if len(nums) == 1:
        return nums[0].group(0).strip()
    # "..., earning $18": a sentence ending on a number states it, unless the number ends a
    # list ("the roots are 2 and 3").
    if not nums:
        return None
    last = nums[-1]
    before, after = plain[: last.start()], plain[last.end() :].strip(" .!)")
    listed = re.search(r"\b(?:and|or)\s*$", before) or before.rstrip().endswith(",")
    if listed:
        return None
    if not after:
        return last.group(0).strip()
    # "... so he is left with 6 marbles": a concluding clause, then at most a unit.
    clause = re.split(r"[,;:]", before)[-1]
    if _CONCLUSION_RE.search(clause) and len(after.split()) <= 3 and not re.search(r"\d", after):
        return last.group(0).strip()
    return None


def _answer_like(s: str) -> bool:
    s = s.strip()
    if not s or s.endswith(":") or len(s) > 80:
        return False
    return bool(re.search(r"\d|\\[A-Za-z]|^\(?[A-E]\)?$", s))


def _clean_tail(span: str, text_after: str = "") -> str | None:
    """The answer in the text following a marker (``Answer:``, ``final answer is``, ...).

    ``text_after`` is the rest of the response after the marker's line, used when the
    marker line itself is empty (``### Final answer`` followed by ``$42$``).
    """
    s = span.strip()
    if not s.strip("*_: \t"):
        rest = text_after.lstrip()
        m = _DISPLAY_START_RE.match(rest)
        if m:  # "**Final Answer:**\n\\[\n y = ... \n\\]": the whole display
            close = rest.find("\\]" if m.group(1) == "\\[" else "$$", m.end())
            s = rest[m.end() : close] if close != -1 else ""
            s = " ".join(s.split())
        else:
            s = next((ln.strip() for ln in rest.splitlines() if ln.strip()), "")
    for _ in range(3):  # "Final Answer: The final answer is $42$." (Minerva)
        s = _MINERVA_PREFIX_RE.sub("", s)
    s = s.strip().strip("*_").strip()
    s = s.lstrip(":").strip()
    # Stop at a sentence break such as ". I hope" (decimals like 3.5 have no space); the
    # dots of a repeating decimal ("0.333...") are part of the answer.
    s = re.split(r"(?<![\\.])\.\s+(?=[A-Z])|(?<!\.)\.\s*$", s, maxsplit=1)[0].strip()
    boxed = find_boxed(s)
    if boxed:
        return boxed[-1][1] or None
    bold = [b for b in _BOLD_RE.findall(s) if _answer_like(b)]
    if bold and bold[-1].strip() != s.strip("*").strip():
        return _clean_tail(bold[-1])  # "60 - 40 = **20** cups": the emphasised value
    s = s.replace("**", "")
    for left, right in (("$$", "$$"), ("$", "$"), ("\\[", "\\]"), ("\\(", "\\)")):
        if (
            s.startswith(left)
            and s.endswith(right)
            and len(s) >= len(left) + len(right)
            and left not in s[len(left) : len(s) - len(right)]
        ):
            s = s[len(left) : len(s) - len(right)].strip()
    if not s.endswith("..."):
        s = s.rstrip(".")
    s = s.strip().strip("*_").strip()
    if not s:
        return None
    words = _words_outside_math(s)
    if words:
        # "5 (corresponding to ...)" / "12 apples, since ..." / "5, not 6": answer first.
        m = _LEADING_ANSWER_RE.match(s)
        if m and re.search(_DIGITISH + r"|\\", m.group(1)):
            return _rhs_of_computation(m.group(1).strip("$"))
    if words >= PROSE_WORDS:
        return _answer_from_sentence(s)
    spans = _math_spans(s)
    if len(spans) == 1 and not re.search(r"\d", _MATH_SPAN_RE.sub("", s)):
        s = spans[0]  # "$45$ degrees" -> "45"
    return _rhs_of_computation(s)


def _split_boxes(boxes: list[tuple[int, int, str]], text: str, gold: str | None) -> Extraction:
    """One answer from several boxes: a list, or the last step of a computation."""
    last = boxes[-1][2]
    shape = _gold_shape(gold)
    # Boxes separated only by list glue (",", "and", "or", "x =", line breaks and display
    # delimiters when the gold is a list) form one list of answers.
    glue = _LIST_GLUE_RE if shape == "scalar" else _LIST_GLUE_LINES_RE
    run = [boxes[-1]]
    for prev in reversed(boxes[:-1]):
        if not glue.match(text[prev[1] : run[0][0]]):
            break
        run.insert(0, prev)
    line_start = text.rfind("\n", 0, boxes[-1][0]) + 1
    same_line = [b for b in boxes if b[0] >= line_start]
    if shape != "scalar" and len(same_line) > len(run):
        run = same_line  # list-shaped gold: every box on the answer line
    if len(run) == 1:
        return Extraction(last, "boxed_last" if len(same_line) > 1 else "boxed")
    joined = ", ".join(c for _s, _e, c in run)
    if shape == "tuple":
        joined = f"({joined})"
    return Extraction(joined, "boxed_multi")


def _gold_shape(gold: str | None) -> str:
    """``"tuple"`` for ``(a, b)``, ``"list"`` for ``a, b`` / ``\\{a, b\\}`` / ``\\pm``,
    ``"scalar"`` otherwise (also when no gold is given)."""
    if not gold:
        return "scalar"
    g = gold.strip().strip("$").strip()
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", g):
        return "scalar"  # thousands separators, not a list
    if "\\pm" in g or "\\mp" in g:
        return "list"
    depth = 0
    top_comma = False
    for c in g:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            top_comma = True
    if top_comma:
        return "list"
    if g.startswith("(") and g.endswith(")") and "," in g:
        return "tuple"
    if g.startswith("\\{") and "," in g:
        return "list"
    return "scalar"


def _marker_candidates(text: str, enabled: set[str]) -> list[tuple[int, int, str, str]]:
    """``(position, priority, rule, answer)`` for every explicit answer marker."""
    out: list[tuple[int, int, str, str]] = []

    def add(rule: str, prio: int, m: re.Match[str]) -> None:
        ans = _clean_tail(m.group(1), text[m.end() : m.end() + 2000])
        if ans:
            out.append((m.start(), prio, rule, ans))

    for m in _FINAL_RE.finditer(text):
        add("final_answer", 0, m)
    if "answer_label" in enabled:
        for m in _LABEL_RE.finditer(text):
            add("answer_label", 1, m)
    if "gsm8k" in enabled:
        for m in _GSM8K_RE.finditer(text):
            if re.search(r"\d", m.group(1)):
                add("gsm8k", 2, m)
    if "answer_is" in enabled:
        for m in _ANSWER_IS_RE.finditer(text):
            add("answer_is", 3, m)
    return out


def _last_lines(text: str, n: int) -> list[str]:
    return [ln for ln in text.strip().splitlines() if ln.strip()][-n:]


def _bold_rule(text: str) -> str | None:
    for line in reversed(_last_lines(text, 3)):
        bold = [b for b in _BOLD_RE.findall(line) if _answer_like(b)]
        if bold:
            return _clean_tail(bold[-1])
    return None


def _last_sentence_rule(text: str) -> str | None:
    lines = _last_lines(text, 3)
    sentences = [s for ln in lines for s in _SENTENCE_SPLIT_RE.split(ln) if s.strip()]
    for sent in reversed(sentences[-3:]):
        if re.search(_DIGITISH, sent):
            # A sentence cut off mid-way (truncated output) states nothing.
            if not re.search(r"(?:[.!]|\$|\\\]|\*\*)[\s)]*$", sent):
                return None
            return _answer_from_sentence(sent)
    return None


def extract_answer(
    text: str, fallbacks: Sequence[str] = DEFAULT_FALLBACKS, gold: str | None = None
) -> Extraction:
    """Extract the final answer from ``text`` (a full response or a bare answer).

    ``gold``, when given, is used only for its *shape* (list/tuple vs single value) to decide
    whether several boxes on one line are a list; its value is never looked at.
    Failure modes: returns ``Extraction(None, "no_answer")`` when no rule matches, including
    when the only box is unclosed (truncated generation) or the last sentence has several
    candidate numbers. An unknown fallback name raises ``ValueError`` (a typo must not
    silently disable a rule).
    """
    unknown = [f for f in fallbacks if f not in ALL_FALLBACKS]
    if unknown:
        raise ValueError(f"unknown fallback rule(s) {unknown}; known: {ALL_FALLBACKS}")
    if not text or not text.strip():
        return Extraction(None, "no_answer")
    enabled = set(fallbacks)

    found = _find_boxes(text)
    boxes = [b for b in found if b[2]]
    last_cmd = max((m.start() for m in _BOX_RE.finditer(text)), default=-1)
    if last_cmd >= 0 and not (found and found[-1][0] == last_cmd):
        # The last box is unclosed: a truncated generation. Never guess from what precedes.
        return Extraction(None, "no_answer")
    if boxes:
        return _split_boxes(boxes, text, gold)

    markers = _marker_candidates(text, enabled)
    if markers:
        _pos, _prio, rule, ans = max(markers, key=lambda t: (t[0], -t[1]))
        return Extraction(ans, rule)

    if "bold" in enabled:
        ans = _bold_rule(text)
        if ans:
            return Extraction(ans, "bold")
    s = text.strip()
    single_short = (
        "\n" not in s
        and len(s) <= BARE_MAX_CHARS
        and len(_SENTENCE_SPLIT_RE.split(s)) == 1
        and _words_outside_math(s) < PROSE_WORDS
    )
    if "last_sentence" in enabled and not (single_short and "bare" in enabled):
        ans = _last_sentence_rule(text)
        if ans:
            return Extraction(ans, "last_sentence")
    if "bare" in enabled and single_short:
        ans = _clean_tail(s)
        if ans:
            return Extraction(ans, "bare")
    if "last_number" in enabled:
        nums = _NUMBER_RE.findall(text)
        if nums:
            return Extraction(nums[-1], "last_number")
    return Extraction(None, "no_answer")
