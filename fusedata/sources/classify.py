"""A small, documented heuristic that labels a prompt ``code``, ``math`` or ``other``.

Why a heuristic and not a model: the seed only says "excluding code and math";
the filter runs over ~10^5 prompts on CPU inside the prompts stage, must be
deterministic and explainable (the drop reason says which rule fired), and
needs no download.  Its measured precision/recall on a hand-labelled sample of
English and Chinese prompts (``tests/fixtures/datasets/classifier_labelled.jsonl``)
is asserted in ``tests/test_sources_classify.py``.

Scoring (each signal adds points; a label needs >= :data:`THRESHOLD` = 2):

code
  * a fenced code block, +3 (an inline code span, +1); lines that look like
    source code (``def f(``, ``#include``, ``SELECT .. FROM``, ``if x:``, lines
    ending in ``{``/``;``), +1.5 each (max 4.5);
  * a language / tool / library name (Python, SQL, React, git, pandas, 正则表达式 ...), +2;
  * programming concepts (function, algorithm, linked list, O(n), 代码, 递归, 二叉树 ...),
    +1.5 per distinct term (max 3);
  * a request to write / implement / fix code ("write a ... function", "in Python",
    "用Python", "编写...程序"), +2; an error message (``TypeError:``), +2;
    code-like identifiers (``snake_case``, ``camelCase``, ``obj.call(``), +1.
math
  * LaTeX (``$..$``, ``\\frac``, ``\\sqrt`` ...), +3;
  * arithmetic: operator expressions between numbers or one-letter variables
    (``3x + 7 = 25``, ``2^10``, ``12 × 25``) outside source-code lines, +1.5 each
    (max 4.5);
  * math terms (solve, probability, remainder, how many, 方程, 面积, 概率, 多少元 ...),
    +1.5 per distinct term (max 3);
  * a question asking for a quantity ("how many", "find", "求", "多少") with a
    number in the text, +1.5; two or more numbers, +1.

The higher score wins when both reach the threshold (ties: code, because a
program that computes something is still a coding request).

Word boundaries are ASCII-aware: in Python's unicode regexes a CJK character is
a word character, so ``\\bpython\\b`` would miss "用Python写".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

THRESHOLD = 2.0

# ASCII-aware word boundaries: in Python's unicode regexes a CJK character is a word
# character, so r"\bpython\b" would miss "用Python写".
_L = r"(?<![A-Za-z0-9_])"
_R = r"(?![A-Za-z0-9_])"


def _terms(words: str, flags: int = re.IGNORECASE) -> re.Pattern[str]:
    return re.compile(_L + "(" + words + ")" + _R, flags)


_FENCE = re.compile(r"```")
_INLINE = re.compile(r"(?<!`)`[^`\n]{1,80}`(?!`)")
_CODE_LINE = re.compile(
    r"^\s*(def \w+\(|class \w+[:(]|#include\b|import \w+|from \w+(\.\w+)* import\b|"
    r"public (static )?\w+|private \w+|function\s*\w*\s*\(|console\.log|System\.out|"
    r"print\(|return\s+\S|for\s*\(.*;.*;|while\s*\(|if\s*\(.*\)\s*\{|"
    r"(let|const|var)\s+\w+\s*=|\w+\s*=\s*\w+\(.*\)|SELECT\b.+\bFROM\b|for \w+ in .+:|"
    r"(if|elif|else|try|except|with|while)\b.*:\s*$|<\w+[^>]*>.*</\w+>|.*[{;]\s*$)",
    re.IGNORECASE | re.MULTILINE,
)
#: languages, tools and libraries: one of them is a strong signal on its own
_CODE_TOOLS = _terms(
    r"python[23]?|javascript|typescript|java|c\+\+|c#|golang|go语言|rust|kotlin|swift|php|ruby|"
    r"scala|bash|shell|powershell|sql|mysql|postgres(ql)?|html|css|react|vue|angular|node\.?js|"
    r"django|flask|pandas|numpy|pytorch|tensorflow|regex|regular expression|git|linux|docker|"
    r"kubernetes|api|rest api|json|pytest|npm|pip|jupyter|excel vba|leetcode"
)
_CODE_TOOLS_ZH = re.compile(r"正则表达式|正则|命令行|终端")
#: programming concepts; each distinct one adds a little
_CODE_WORDS = _terms(
    r"functions?|methods?|class(es)?|variables?|arrays?|linked lists?|strings? of|integers? array|"
    r"array of integers|algorithms?|recursion|recursive(ly)?|runtime|debug(ging)?|bugs?|"
    r"exceptions?|stack trace|syntax|scripts?|programs?|programming|code|snippet|compile[rd]?|"
    r"repository|commit|branch(es)?|database|query|queries|time complexity|data structures?|"
    r"binary search( tree)?|hash ?map|cache|loop|component|server|endpoint|unit tests?|refactor|"
    r"implementation|o\(n\)|o\(1\)|o\(log n\)|indices|frontend|backend|http|dictionary|"
    r"interface|stack|queue|deploy(ment)?|containers?|sort(ing)?|flexbox|div|decorator|"
    r"lambda|pointer|segfault|memory leak|thread|async|callback|regex|csv|file"
)
_CODE_WORDS_ZH = re.compile(
    r"代码|编程|程序|脚本|算法|调试|编译|数据库|数组|链表|字符串|接口|变量|报错|异常|函数|递归|"
    r"二叉树|闭包|单例|线程|并发|爬虫|组件|端口|进程|查询|表结构|元组|列表|分支|合并|依赖|"
    r"模式|命令|斐波那契|栈|队列|排序|部署|复杂度|装饰器|指针|段错误|内存|深拷贝|容器"
)
_ERROR = re.compile(r"\b\w*(Error|Exception)\b[:\s]|Traceback|segmentation fault|undefined is not",
                    re.IGNORECASE)
_IDENT = re.compile(r"\b[a-z]+_[a-z_]+\b|\b[a-z]+[A-Z]\w*\b|\w+\.\w+\(|\w+\(\)")
_CODE_REQUEST = re.compile(
    _L + r"(write|implement|create|fix|debug|refactor|optimi[sz]e|complete|develop|convert)" + _R
    + r"[^.?!\n]{0,50}" + _L + r"(functions?|programs?|scripts?|class|methods?|code|query|"
    r"algorithm|snippet|module|app|component|server|tests?|loop|cache|tree|list|stack|queue)" + _R
    + r"|" + _L + r"(in|using|with|to) (python[23]?|java|javascript|c\+\+|rust|go|sql|typescript|"
    r"c#|bash)" + _R
    + r"|(用|使用|基于|请用)\s*(python|java|javascript|c\+\+|go|rust|sql|js|c语言|shell|pandas)"
    r"|(写|编写|实现|完成|修改|优化|设计)[^。？！\n]{0,16}(代码|程序|函数|脚本|算法|类|组件|语句|"
    r"查询|爬虫|表结构|模式)",
    re.IGNORECASE,
)
_LATEX = re.compile(r"(\$[^$\n]+\$|\\\(|\\\[|\\(frac|dfrac|sqrt|sum|int|lim|cdot|times|pi|"
                    r"theta|alpha|beta|begin\{(align|equation|cases|pmatrix)\}|le|ge|neq|infty|"
                    r"binom|log|sin|cos|tan)\b)")
_ARITH = re.compile(
    r"(\d+(\.\d+)?|(?<![A-Za-z])[a-z](?![A-Za-z])|\))\s*([+\-*/×÷^=<>≤≥]|\*\*)\s*"
    r"(\d+(\.\d+)?|(?<![A-Za-z])[a-z](?![A-Za-z])|\()"
    r"|(?<!\d)\d+\s*%|(?<![A-Za-z])[a-z]\^\d|\d+[a-z](?![A-Za-z])\s*[+\-=]|[a-z]²|log[₂₁₀\d]",
    re.IGNORECASE,
)
_MATH_WORDS = _terms(
    r"solve|equations?|inequalit(y|ies)|integral|integrate|derivative|differentiate|"
    r"probability|expected value|primes?|polynomials?|factori[sz]e|theorem|prove|proof|"
    r"irrational|rational|square root|geometry|triangle|circle|radius|area|perimeter|volume|"
    r"fractions?|ratio|percent(age)?|sum of|product of|remainder|divisible|digits?|integers?|"
    r"real (numbers?|solutions?)|matrix|determinant|vectors?|logarithm|exponent|sequence|series|"
    r"arithmetic|geometric|calculate|compute|simplify|evaluate|limit|angle|degrees|"
    r"ways to (arrange|choose|select)|permutations?|combinations?|greatest common divisor|gcd|"
    r"lcm|least common multiple|multiple of|average|speed|diagonals?|polygon|decagon|"
    r"hexagon|pentagon|mph|km/h|how many|how much|what is the (value|sum|product|probability|area|smallest|"
    r"largest|minimum|maximum|number)|find the|catch up"
)
_MATH_WORDS_ZH = re.compile(
    r"方程|不等式|积分|导数|求导|概率|质数|素数|多项式|定理|证明|几何|三角形|圆|半径|面积|周长|"
    r"体积|表面积|分数|比例|百分之|余数|整除|整数|实数|矩阵|行列式|向量|对数|数列|等差|等比|计算|"
    r"化简|求值|解集|最大值|最小值|斜边|直角|选法|排列|组合|几分之几|三分之|打[一二三四五六七八九]折|"
    r"速度|千米|厘米|公里|多少元|还剩|一共|平均|倍数|公倍数|公约数|倍|顶点|坐标|骰子"
)
_NUMERIC_QUESTION = re.compile(r"(\bhow (many|much)\b|\bwhat is\b|\bfind\b|求|多少|几个|是多少)",
                               re.IGNORECASE)
_NUMBER = re.compile(r"\d")


def _distinct(pattern: re.Pattern[str], text: str) -> int:
    return len({m.group(0).lower() for m in pattern.finditer(text)})


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
    if _CODE_TOOLS.search(text) or _CODE_TOOLS_ZH.search(text):
        code += 2
    concepts = _distinct(_CODE_WORDS, text) + _distinct(_CODE_WORDS_ZH, text)
    code += min(3.0, 1.5 * concepts)
    if _CODE_REQUEST.search(text):
        code += 2
    if _ERROR.search(text):
        code += 2
    if _IDENT.search(text):
        code += 1

    math = 0.0
    if _LATEX.search(text):
        math += 3
    # arithmetic inside source-code lines (``return fib(n-1) + fib(n-2)``) is code, not math
    prose = "\n".join(ln for ln in text.splitlines() if not _CODE_LINE.match(ln))
    math += min(4.5, 1.5 * len(_ARITH.findall(prose)))
    terms = _distinct(_MATH_WORDS, text) + _distinct(_MATH_WORDS_ZH, text)
    math += min(3.0, 1.5 * terms)
    numbers = len(re.findall(r"\d+(?:\.\d+)?", text))
    if _NUMERIC_QUESTION.search(text) and numbers:
        math += 1.5
    if numbers >= 2:
        math += 1.0
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
