"""A small, documented heuristic that labels a prompt ``code``, ``math`` or ``other``.

Why a heuristic and not a model: the seed only says "excluding code and math";
the filter runs over ~10^5 prompts on CPU inside the prompts stage, must be
deterministic and explainable (the drop reason says which rule fired), and
needs no download.  Its measured precision/recall on a hand-labelled sample of
English and Chinese prompts (``tests/fixtures/datasets/classifier_labelled.jsonl``)
is asserted in ``tests/test_sources_classify.py``.

Scoring (each signal adds points; a label needs >= :data:`THRESHOLD`):

code
  * a fenced code block (```), +3; inline code spans, +1;
  * lines that look like source code (``def f(``, ``#include``, ``import x``,
    ``public static``, ``console.log``, ``SELECT .. FROM``, ``x = foo(...)``,
    lines ending in ``{`` or ``;``), +1.5 each (max 4.5);
  * programming words (python, javascript, function, compile, API, regex, SQL,
    debug, 代码, 编程, 函数 with a language name, ...), +1.5 for the first, +1 more
    for a second kind; an explicit request to *write / implement / fix* code
    ("write a python function", "用Python实现"), +2.
math
  * LaTeX (``$..$``, ``\\frac``, ``\\sqrt``, ``\\begin{align}``, ...), +3;
  * arithmetic density: equations / operator expressions between numbers or
    single-letter variables (``3x + 5 = 20``, ``2^10``, ``17 * 23``), +1.5 each
    (max 4.5);
  * math words (solve, equation, integral, derivative, probability, prime,
    polynomial, 方程, 求解, 概率, 面积, 整数, ...), +1.5 for the first, +1 more for a
    second; a question asking for a numeric result ("how many", "what is the
    value", "求", "多少") together with numbers in the text, +1.5.

When both pass the threshold the higher score wins (ties: code, because a
program that computes something is still a coding request).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

THRESHOLD = 3.0

_FENCE = re.compile(r"```")
_INLINE = re.compile(r"(?<!`)`[^`\n]{1,80}`(?!`)")
_CODE_LINE = re.compile(
    r"^\s*(def \w+\(|class \w+[:(]|#include\b|import \w+|from \w+(\.\w+)* import\b|"
    r"public (static )?\w+|private \w+|function\s*\w*\s*\(|console\.log|System\.out|"
    r"print\(|return\b.*;?$|for\s*\(.*;.*;|while\s*\(|if\s*\(.*\)\s*\{|"
    r"(let|const|var)\s+\w+\s*=|\w+\s*=\s*\w+\(.*\)|SELECT\b.+\bFROM\b|"
    r"<\w+[^>]*>.*</\w+>|.*[{;]\s*$)",
    re.IGNORECASE | re.MULTILINE,
)
_CODE_WORDS = [
    re.compile(r"\b(python|javascript|typescript|java|c\+\+|c#|golang|rust|kotlin|swift|php|"
               r"ruby|scala|bash|shell script|sql|html|css|react|node\.?js|django|flask|"
               r"pandas|numpy|regex|regular expression|json|api|sdk|compiler?|"
               r"leetcode)\b", re.IGNORECASE),
    re.compile(r"\b(function|method|class|variable|array|linked list|string|integer array|"
               r"algorithm|recursion|recursive|runtime|debug|bug|exception|stack trace|"
               r"syntax|script|program|code|snippet|repository|git|database|query|"
               r"time complexity|data structure)s?\b", re.IGNORECASE),
    re.compile(r"(代码|编程|程序|脚本|算法|调试|编译|数据库|正则表达式|数组|链表|字符串|接口|"
               r"变量|报错|异常|类和对象)"),
]
_CODE_REQUEST = re.compile(
    r"\b(write|implement|create|fix|debug|refactor|optimi[sz]e|complete|develop|code)\b[^.?!\n]{0,40}"
    r"\b(function|program|script|class|method|code|query|algorithm|snippet|module|app)\b|"
    r"\b(in|using|with) (python|java|javascript|c\+\+|rust|go|sql|typescript|c#)\b|"
    r"(用|使用|基于)\s*(python|java|javascript|c\+\+|go|rust|sql|js|c语言)|"
    r"(写|编写|实现|完成|修改|优化)[^。？！\n]{0,12}(代码|程序|函数|脚本|算法|类)",
    re.IGNORECASE,
)
_LATEX = re.compile(r"(\$[^$\n]+\$|\\\(|\\\[|\\(frac|sqrt|sum|int|lim|cdot|times|pi|theta|"
                    r"alpha|beta|begin\{(align|equation|cases|pmatrix)\}|le|ge|neq|infty|binom|"
                    r"log|sin|cos|tan)\b)")
_ARITH = re.compile(
    r"(\d+(\.\d+)?|\b[a-z]\b|\))\s*([+\-*/×÷^=<>≤≥]|\*\*)\s*(\d+(\.\d+)?|\b[a-z]\b|\()"
    r"|\b\d+\s*%|\b[a-z]\^\d|\d+[a-z]\b\s*[+\-=]",
    re.IGNORECASE,
)
_MATH_WORDS = [
    re.compile(r"\b(solve|equation|inequalit(y|ies)|integral|integrate|derivative|"
               r"differentiate|probability|expected value|prime|polynomial|factori[sz]e|"
               r"theorem|prove|proof|geometry|triangle|circle|radius|area|perimeter|volume|"
               r"fraction|ratio|percent(age)?|sum of|product of|remainder|divisible|digits?|"
               r"integer|real numbers?|matrix|determinant|vector|logarithm|exponent|"
               r"sequence|series|arithmetic|geometric|calculate|compute|simplify|evaluate)\b",
               re.IGNORECASE),
    re.compile(r"\b(how many|how much|what is the (value|sum|product|probability|area|"
               r"smallest|largest|minimum|maximum|number)|find the|greatest|least)\b",
               re.IGNORECASE),
    re.compile(r"(方程|不等式|积分|导数|求导|概率|质数|素数|多项式|定理|证明|几何|三角形|"
               r"圆的|半径|面积|周长|体积|分数|比例|百分之|余数|整除|整数|实数|矩阵|向量|"
               r"对数|数列|等差|等比|计算|化简|求值|解方程|函数f|最大值|最小值)"),
]
_NUMERIC_QUESTION = re.compile(r"(\bhow (many|much)\b|\bwhat is\b|\bfind\b|求|多少|几个|是多少)",
                               re.IGNORECASE)
_NUMBER = re.compile(r"\d")


@dataclass(frozen=True)
class Classification:
    label: str  # "code" | "math" | "other"
    code_score: float
    math_score: float


def scores(text: str) -> tuple[float, float]:
    """(code score, math score) of ``text`` (see the module docstring)."""
    code = 0.0
    if _FENCE.search(text):
        code += 3
    elif _INLINE.search(text):
        code += 1
    code += min(4.5, 1.5 * len(_CODE_LINE.findall(text)))
    hits = sum(1 for r in _CODE_WORDS if r.search(text))
    code += (1.5 + (hits - 1)) if hits else 0
    if _CODE_REQUEST.search(text):
        code += 2

    math = 0.0
    if _LATEX.search(text):
        math += 3
    math += min(4.5, 1.5 * len(_ARITH.findall(text)))
    hits = sum(1 for r in _MATH_WORDS if r.search(text))
    math += (1.5 + (hits - 1)) if hits else 0
    if _NUMERIC_QUESTION.search(text) and _NUMBER.search(text):
        math += 1.5
    return code, math


def classify(text: str) -> Classification:
    """Label one prompt text ``code``, ``math`` or ``other``."""
    code, math = scores(text)
    if code >= THRESHOLD and code >= math:
        label = "code"
    elif math >= THRESHOLD:
        label = "math"
    elif code >= THRESHOLD:
        label = "code"
    else:
        label = "other"
    return Classification(label, code, math)


#: Magpie ``task_category`` values -> domain (other categories: ``other``)
MAGPIE_DOMAINS = {"Coding & Debugging": "code", "Math": "math"}
