"""Loaders for the coding sets, with test extraction into the sandbox job format.

The ``tests`` column holds a JSON string that the verify stage merges into a
sandbox job (``sandbox/__init__.py``: ``id`` and ``code`` come from the
response; exactly one test format):

* self-oss-instruct: ``{"test": "<assert statements>", "entry_point": "<func>"}``; the
  asserts come from the python block of the response's ``[Tests]`` section and
  run after the candidate code in the same namespace; ``entry_point`` (the
  implementation's function the asserts call) lets the sandbox check statically
  that the candidate defines it.
* leetcode: ``{"entry_point": "Solution.twoSum", "cases": [{"input": {"nums": [2, 7, 11,
  15], "target": 9}, "output": [0, 1]}], "prelude": "from typing import *\\n..."}``
  (keyword arguments by parameter name; ``Class.method`` is the sandbox's
  convention: a fresh ``Solution()`` per case).  ``function`` holds the bare method
  name for verifiers that also accept a top-level function.

Rows whose tests cannot be extracted are dropped with the reason.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from ..prompts import LOADERS, DropRow
from ..recipe import PromptSource

#: what LeetCode's judge pre-imports; model solutions rely on it (``List[int]`` etc.)
LEETCODE_PRELUDE = (
    "from typing import *\n"
    "import collections, heapq, bisect, itertools, functools, math, string, re\n"
    "from collections import *\nfrom heapq import *\nfrom bisect import *\n"
    "from itertools import *\nfrom functools import *\nfrom math import *\n"
)

_FENCED = re.compile(r"```[ \t]*([\w+#-]*)[^\n]*\n(.*?)```", re.DOTALL)


def _code_blocks(text: str, langs: tuple[str, ...] = ("python", "py", "python3", "")
                 ) -> list[str]:
    return [m.group(2) for m in _FENCED.finditer(text) if m.group(1).lower() in langs]


# --------------------------------------------------------------------------- self-oss-instruct

_SECTION = re.compile(r"^\s*(?:\[(\w+)\]|#{1,4}\s*(\w+)\s*:?)\s*$", re.MULTILINE)


def _sections(response: str) -> dict[str, str]:
    """Split a self-oss-instruct response at ``[Reasoning]``/``[Implementation]``/... headings."""
    marks = [(m.start(), m.end(), (m.group(1) or m.group(2)).lower())
             for m in _SECTION.finditer(response)]
    out: dict[str, str] = {}
    for i, (_, end, name) in enumerate(marks):
        stop = marks[i + 1][0] if i + 1 < len(marks) else len(response)
        out.setdefault(name, response[end:stop])
    return out


def _defined_functions(code: str) -> list[str]:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def _called_names(code: str) -> list[str]:
    tree = ast.parse(code)
    return [n.func.id for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]


def extract_oss_tests(response: str) -> dict[str, Any]:
    """The sandbox test job part for one self-oss-instruct response (raises DropRow)."""
    secs = _sections(response)
    if "tests" not in secs:
        raise DropRow("no_tests_section")
    blocks = _code_blocks(secs["tests"])
    if not blocks:
        raise DropRow("tests_without_code_block")
    test = "\n".join(b.strip("\n") for b in blocks).strip() + "\n"
    try:
        tree = ast.parse(test)
    except SyntaxError as e:
        raise DropRow(f"tests_syntax_error:line{e.lineno}") from None
    if not any(isinstance(n, ast.Assert) for n in ast.walk(tree)):
        raise DropRow("tests_without_assert")
    job: dict[str, Any] = {"test": test}
    impl = "\n".join(_code_blocks(secs.get("implementation", "")))
    called = _called_names(test)
    for fn in _defined_functions(impl):
        if fn in called:
            job["entry_point"] = fn
            break
    return job


def self_oss_instruct(row: dict[str, Any], src: PromptSource) -> dict[str, Any]:
    """bigcode/self-oss-instruct-sc2-exec-filter-50k: ``instruction`` (the prompt),
    ``response`` ([Reasoning]/[Implementation]/[Explanation]/[Tests] sections), plus
    ``fingerprint``, ``sha1``, ``seed``, ``concepts``, ``prompt``, ``id``.
    """
    instr = row.get("instruction")
    if not isinstance(instr, str) or not instr.strip():
        raise DropRow("missing_field:instruction" if instr is None else "empty_prompt")
    resp = row.get("response")
    if not isinstance(resp, str) or not resp.strip():
        raise DropRow("missing_field:response")
    job = extract_oss_tests(resp)
    return {"messages": [{"role": "user", "content": instr.strip()}], "gold": None,
            "tests": json.dumps(job, ensure_ascii=False), "existing_response": None,
            "meta": {"domain": "code"}}


# --------------------------------------------------------------------------- leetcode

_MD_ESCAPE = re.compile(r"\\([\[\]_*()#|`~<>-])")
_EXAMPLE = re.compile(
    r"\*{0,2}Input:?\*{0,2}:?[ \t]*(?P<input>.+?)\s*\n\s*\*{0,2}Output:?\*{0,2}:?[ \t]*"
    r"(?P<output>.+?)[ \t]*(?:\n|$)",
)
_JSON_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_DEF = re.compile(r"^[ \t]*def (\w+)\s*\((.*?)\)\s*(?:->\s*[^:]+)?:", re.MULTILINE | re.DOTALL)
_LINKED = re.compile(r"\b(ListNode|TreeNode|Node|NestedInteger|Employee|Interval)\b")


def _unescape(s: str) -> str:
    return _MD_ESCAPE.sub(r"\1", s)


def _strip_artifact(s: str) -> str:
    # The dataset's HTML-to-markdown conversion appended one space inside every string
    # literal ("abcabcbb " for "abcabcbb"); remove it so cases match LeetCode's.
    return _JSON_STRING.sub(lambda m: '"' + (m.group(1)[:-1] if m.group(1).endswith(" ")
                                             else m.group(1)) + '"', s)


def parse_value(text: str) -> Any:
    """A LeetCode example literal -> JSON data (raises ValueError)."""
    t = _strip_artifact(_unescape(text).strip().rstrip(","))
    try:
        return json.loads(t)
    except json.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(t.replace("true", "True").replace("false", "False")
                                .replace("null", "None"))
    except (ValueError, SyntaxError):
        raise ValueError(f"not a literal: {text[:60]!r}") from None


def _split_top(s: str) -> list[str]:
    """Split at commas outside brackets and string literals."""
    parts, depth, cur, quote = [], 0, [], None
    i = 0
    while i < len(s):
        c = s[i]
        if quote:
            cur.append(c)
            if c == "\\" and i + 1 < len(s):
                cur.append(s[i + 1])
                i += 1
            elif c == quote:
                quote = None
        elif c in "\"'":
            quote = c
            cur.append(c)
        elif c in "[{(":
            depth += 1
            cur.append(c)
        elif c in "]})":
            depth -= 1
            cur.append(c)
        elif c == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


_KW = re.compile(r"^\s*([A-Za-z_]\w*)\s*=\s*(.*)$", re.DOTALL)


def parse_inputs(text: str) -> dict[str, Any]:
    """``nums = [2,7,11,15], target = 9`` -> ``{"nums": [...], "target": 9}`` (ValueError)."""
    text = _unescape(text)
    pieces: list[str] = []
    for p in _split_top(text):
        if _KW.match(p) or not pieces:
            pieces.append(p)
        else:
            pieces[-1] += "," + p
    out: dict[str, Any] = {}
    for p in pieces:
        m = _KW.match(p)
        if not m:
            raise ValueError(f"not 'name = value': {p.strip()[:60]!r}")
        out[m.group(1)] = parse_value(m.group(2))
    return out


def reference_signature(python: str) -> tuple[str, list[str]]:
    """Method name and parameter names (without ``self``) of the reference solution."""
    blocks = _code_blocks(python) or [python]
    m = _DEF.search(blocks[0])
    if not m:
        raise DropRow("no_function_in_reference_solution")
    params = []
    for p in _split_top(m.group(2)):
        name = p.split(":")[0].split("=")[0].strip().lstrip("*")
        if name and name != "self":
            params.append(name)
    return m.group(1), params


def extract_leetcode_tests(content: str, python: str) -> dict[str, Any]:
    """The sandbox test job part for one leetcode problem (raises DropRow)."""
    if _LINKED.search(python):
        raise DropRow(f"unsupported_io:{_LINKED.search(python).group(1)}")
    name, params = reference_signature(python)
    examples = list(_EXAMPLE.finditer(content))
    if not examples:
        # design problems list calls and arguments under a bare "**Input**" heading
        raise DropRow("design_problem" if re.search(r"\*\*Input\*\*\s*\n", content)
                      else "no_examples")
    cases = []
    for ex in examples:
        try:
            kwargs = parse_inputs(ex.group("input"))
            output = parse_value(ex.group("output"))
        except ValueError:
            raise DropRow("unparsable_example") from None
        if sorted(kwargs) != sorted(params):
            raise DropRow("example_params_differ_from_signature")
        cases.append({"input": kwargs, "output": output})
    return {"entry_point": f"Solution.{name}", "function": name, "cases": cases,
            "prelude": LEETCODE_PRELUDE}


def leetcode(row: dict[str, Any], src: PromptSource) -> dict[str, Any]:
    """greengerong/leetcode: ``id``, ``slug``, ``title``, ``difficulty``, ``content``
    (markdown statement with ``**Input:** .. / **Output:** ..`` examples), and reference
    solutions ``python``, ``java``, ``c++``, ``javascript`` (fenced code + explanation).

    Cases come from the examples; the method name and parameter order from the
    reference python solution.  Problems on linked lists / trees (inputs that are
    not plain JSON) and design problems (no ``name = value`` inputs) are dropped.
    With ``options.signature_hint`` (default true) the prompt ends with the
    expected signature so that a correct answer is also a testable one.
    """
    content = row.get("content")
    if not isinstance(content, str) or not content.strip():
        raise DropRow("missing_field:content" if content is None else "empty_prompt")
    python = row.get("python")
    if not isinstance(python, str) or not python.strip():
        raise DropRow("no_reference_solution")
    job = extract_leetcode_tests(content, python)
    prompt = _unescape(content).strip()
    if src.options.get("signature_hint", True):
        _, params = reference_signature(python)
        sig = ", ".join(["self", *params])
        prompt += (f"\n\nWrite the solution in Python 3 as `class Solution` with the method "
                   f"`def {job['function']}({sig})`.")
    return {"messages": [{"role": "user", "content": prompt}], "gold": None,
            "tests": json.dumps(job, ensure_ascii=False), "existing_response": None,
            "meta": {"domain": "code", "difficulty": row.get("difficulty")}}


LOADERS.update({"leetcode": leetcode, "self_oss_instruct": self_oss_instruct})
