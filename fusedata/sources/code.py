"""Loaders for the coding sets, with test extraction into the sandbox job format.

The ``tests`` column holds a JSON string that the verify stage merges into a
sandbox job (``sandbox/__init__.py``: ``id`` and ``code`` come from the
response; exactly one test format).  ``meta.reference`` carries the dataset's own
solution as a job part (``code`` + ``entry_point``) for the optional
``reference_passes`` filter; it is not stored with the prompt.

* self-oss-instruct (``bigcode/self-oss-instruct-sc2-exec-filter-50k``): the published
  rows have no ``[Tests]`` tags.  The dataset's last build step (``SMART=1`` in
  bigcode-project/starcoder2-self-align ``src/star_align/sanitize_data.py``) joined the kept
  sections with blank lines, kept the tests only when the instruction mentions "test", and
  in about half of the rows appended 1-5 assertions to the *instruction* as ``Your code
  should pass the following assertion(s):`` (or ``... test case:``) plus a python block.
  Tests = that block; else the response's last python block holding an ``assert`` (rows
  whose instruction mentions tests).  Job: ``{"test": "<asserts>", "entry_point": "<func>"}``
  (the first function the asserts call that they do not define themselves).  The prompt is
  the instruction as published: the model sees the assertions, as in FuseChat-3.0.
* leetcode (``greengerong/leetcode``): the statement's examples are the ground truth (the
  row's ``python`` solves another problem or fails its own examples in about half of the
  rows).  Job: ``{"entry_point": "Solution.twoSum", "function": "twoSum", "cases":
  [{"input": [[2, 7, 11, 15], 9], "output": [0, 1]}], "env": "leetcode", "call": {...},
  "compare": {...}}`` with positional inputs in the statement's parameter order (the
  sandbox's LeetCode fields: ``sandbox/README.md``, "LeetCode jobs").  Design problems
  replay the operation list on the class (``entry_point`` = class name).

Rows whose tests cannot be extracted are dropped with the reason.
"""

from __future__ import annotations

import ast
import builtins
import json
import re
from typing import Any

from .base import LOADERS, DropRow, SourceSpec

_FENCED = re.compile(r"```[ \t]*([\w+#-]*)[^\n]*\n(.*?)```", re.DOTALL)


def _code_blocks(text: str, langs: tuple[str, ...] = ("python", "py", "python3", "")
                 ) -> list[str]:
    return [m.group(2) for m in _FENCED.finditer(text) if m.group(1).lower() in langs]


def _has_assert(code: str) -> bool:
    try:
        return any(isinstance(n, ast.Assert) for n in ast.walk(ast.parse(code)))
    except SyntaxError:
        return False


# --------------------------------------------------------------------------- self-oss-instruct

_OSS_TESTS = re.compile(
    r"Your code should pass the following (assertions?|test cases?):[ \t]*\n"
    r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)```", re.DOTALL)


def _entry_from_tests(test: str) -> str | None:
    """The first function the tests call that they neither define nor get from builtins."""
    tree = ast.parse(test)
    defined = {n.name for n in ast.walk(tree)
               if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}
    defined |= {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign)
                for t in n.targets if isinstance(t, ast.Name)}
    defined |= {a.asname or a.name.split(".")[0] for n in ast.walk(tree)
                if isinstance(n, ast.Import | ast.ImportFrom) for a in n.names}
    calls = sorted((n for n in ast.walk(tree)
                    if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)),
                   key=lambda n: (n.lineno, n.col_offset))
    for c in calls:
        name = c.func.id  # type: ignore[attr-defined]
        if name not in defined and name not in builtins.__dict__:
            return name
    return None


def extract_oss_tests(instruction: str, response: str) -> tuple[dict[str, Any], str]:
    """``(job part, reference code)`` for one self-oss-instruct row (raises DropRow)."""
    blocks = _code_blocks(response)
    m = _OSS_TESTS.search(instruction)
    if m:
        test = m.group(2)
        ref_blocks = blocks
        # rows whose instruction mentions tests also end the response with the test block
        if blocks and _has_assert(blocks[-1]) and len(blocks) > 1:
            ref_blocks = blocks[:-1]
    elif "test" in instruction.lower() and blocks and _has_assert(blocks[-1]):
        test, ref_blocks = blocks[-1], blocks[:-1]
    else:
        raise DropRow("no_assertions")
    test = test.strip("\n") + "\n"
    try:
        tree = ast.parse(test)
    except SyntaxError as e:
        raise DropRow(f"tests_syntax_error:line{e.lineno}") from None
    if not any(isinstance(n, ast.Assert) for n in ast.walk(tree)):
        raise DropRow("tests_without_assert")
    entry = _entry_from_tests(test)
    if entry is None:
        raise DropRow("no_entry_point_in_tests")
    if not ref_blocks:
        raise DropRow("no_reference_code")
    return {"test": test, "entry_point": entry}, "\n\n".join(b.strip("\n") for b in ref_blocks)


def self_oss_instruct(row: dict[str, Any], src: SourceSpec) -> dict[str, Any]:
    """bigcode/self-oss-instruct-sc2-exec-filter-50k: ``instruction`` (the prompt, possibly
    ending with the assertions), ``response`` (reasoning / implementation / explanation /
    tests joined by blank lines, some parts removed), plus ``fingerprint``, ``sha1``,
    ``seed``, ``concepts``, ``prompt``, ``id``.
    """
    instr = row.get("instruction")
    if not isinstance(instr, str) or not instr.strip():
        raise DropRow("missing_field:instruction" if instr is None else "empty_prompt")
    resp = row.get("response")
    if not isinstance(resp, str) or not resp.strip():
        raise DropRow("missing_field:response")
    job, ref = extract_oss_tests(instr, resp)
    return {"messages": [{"role": "user", "content": instr.strip()}], "gold": None,
            "tests": json.dumps(job, ensure_ascii=False), "existing_response": None,
            "meta": {"domain": "code", "reference": {"code": ref,
                                                      "entry_point": job["entry_point"]}}}


# --------------------------------------------------------------------------- leetcode

_MD_ESCAPE = re.compile(r"\\([\[\]_*()#|`~<>-])")
_BOLD = re.compile(r"(?<!\\)\*\*")
_EXAMPLE = re.compile(
    r"\*{0,2}Input:?\*{0,2}:?[ \t]*(?P<input>.+?)\s*\n\s*\*{0,2}Output:?\*{0,2}:?[ \t]*"
    r"(?P<output>.+?)[ \t]*(?=\n[ \t]*\n|\n[ \t]*\*{0,2}(?:Explanation|Example|Constraints|Note)"
    r"|\n[ \t]*\*\*|$)", re.DOTALL)
_DESIGN = re.compile(
    r"\*{0,2}Input:?\*{0,2}:?[ \t]*\n\s*(?P<ops>\\?\[.*?)\n\s*(?P<args>\\?\[.*?)\s*\n\s*"
    r"\*{0,2}Output:?\*{0,2}:?[ \t]*\n\s*(?P<output>\\?\[.*?)[ \t]*(?:\n|$)")
_JSON_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_BINARY = re.compile(r"^0[01]{7,}$")
#: "You can return the answer in any order" (not "the input is not given in any order")
_ANY_ORDER = re.compile(r"\b(return|answer|output|result)\b[^.]{0,80}?\bin\s+\W{0,3}any\W{0,3}"
                        r"\s+order", re.IGNORECASE)
_MULTIPLE = re.compile(
    r"(return|output|print)\s+\W{0,3}any\W{0,3}\s+(of\s+them|one\s+of\s+them|valid|such|"
    r"possible|solution|answer|of\s+the|one|array|string|list|permutation|arrangement|"
    r"subarray|subsequence)|multiple\s+(valid\s+)?(answers|solutions|results)"
    r"[^.]{0,40}\b(return|output)\s+\W{0,3}any|may also be returned|also (?:are |be )?accepted|is also a valid answer"
    r"|of\s+\W{0,3}any\W{0,3}\s+such", re.IGNORECASE)
_WITHIN = re.compile(r"within\s+`?10\^?\s*-\s*(\d+)`?", re.IGNORECASE)
_INPLACE = re.compile(r"in[- ]place|do not return anything|modify\s+`?\w+`?\s+in", re.IGNORECASE)
_MODIFY = re.compile(r"modify\s+(?:the\s+)?[`_*]*(\w+)", re.IGNORECASE)
_TREE_WORDS = re.compile(r"\btree\b|\bBST\b", re.IGNORECASE)
_LIST_WORDS = re.compile(r"linked[\s-]lists?", re.IGNORECASE)
_TREE_PARAM = re.compile(r"^(root\d*|root[A-Z]\w*|subRoot|original|cloned|tree\d*)$")
_LIST_PARAM = re.compile(r"^(head\w*|l\d|list\d|list[A-Z]\w*|node)$")
#: parameters only LeetCode's judge uses to build the input (cycle position, intersection)
_JUDGE_ONLY = {"pos", "skipA", "skipB", "intersectVal"}
_FLOAT_TEXT = re.compile(r"(?<![\w.])-?\d+\.(\d+)(?![\w.])")


def _unescape(s: str) -> str:
    return _MD_ESCAPE.sub(r"\1", s)


def _strip_artifact(s: str) -> str:
    # The dataset's HTML-to-markdown conversion appended one space inside most string
    # literals ("abcabcbb " for "abcabcbb"); remove it so cases match LeetCode's.
    return _JSON_STRING.sub(lambda m: '"' + (m.group(1)[:-1] if m.group(1).endswith(" ")
                                             else m.group(1)) + '"', s)


def _clean(text: str) -> str:
    """Bold markers and markdown escapes out of an example literal."""
    return _unescape(_BOLD.sub("", text)).strip()


def parse_value(text: str) -> Any:
    """A LeetCode example literal -> JSON data (raises ValueError).

    A 32-digit bit string with leading zeros (``00000010100101000001111010011100``, Reverse
    Bits) is the integer it spells in binary; a trailing parenthesised note
    (``964176192 (00111001...)``) is ignored.
    """
    t = _strip_artifact(_clean(text).rstrip(","))
    t = re.sub(r"^(\S+)\s+\(.*\)$", r"\1", t, flags=re.DOTALL)
    if _BINARY.match(t):
        return int(t, 2)
    try:
        return json.loads(t)
    except json.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(t.replace("true", "True").replace("false", "False")
                                .replace("null", "None"))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
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
    """``nums = [2,7,11,15], target = 9`` -> ``{"nums": [...], "target": 9}`` (ValueError).

    Inputs may span several lines and carry bold markers inside literals.
    """
    text = _clean(text)
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


def _norm(name: str) -> str:
    return name.replace("_", "").lower()


def camel(name: str) -> str:
    """``length_of_longest_substring`` / ``two-sum`` -> ``lengthOfLongestSubstring``."""
    parts = [p for p in re.split(r"[_\-\s]+", name) if p]
    if not parts:
        return name
    return parts[0][:1].lower() + parts[0][1:] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def reference_functions(python: str) -> list[tuple[str, list[str]]]:
    """``(entry point, parameter names without self)`` of every function the reference
    defines (top-level functions and class methods, in source order)."""
    code = "\n\n".join(_code_blocks(python)) or python
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    out: list[tuple[str, list[str]]] = []

    def params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
        names = [a.arg for a in fn.args.posonlyargs + fn.args.args]
        return names[1:] if names and names[0] in ("self", "cls") else names

    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            out.append((node.name, params(node)))
        elif isinstance(node, ast.ClassDef):
            for sub in node.body:
                if isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef) \
                        and not sub.name.startswith("__"):
                    out.append((f"{node.name}.{sub.name}", params(sub)))
    return out


def _match_reference(python: str, names: list[str], slug: str = "") -> str | None:
    """The reference function whose parameters are the example's (same order, names equal
    up to case and underscores), skipping helpers defined before the entry point."""
    want = [_norm(n) for n in names]
    hits = [e for e, params in reference_functions(python) if [_norm(p) for p in params] == want]
    if len(hits) > 1:  # a helper with the same parameters: prefer the slug's name, else the last
        named = [e for e in hits if _norm(e.split(".")[-1]) in _norm(slug)]
        return (named or hits)[-1]
    return hits[0] if hits else None


def _arity_reference(python: str, names: list[str]) -> str | None:
    """Cross-check only: the reference's last-defined function when it takes as many
    parameters as the examples (``grid`` for ``obstacleGrid``).  It may solve another
    problem, so it never names the prompt's method."""
    funcs = reference_functions(python)
    if funcs and len(funcs[-1][1]) == len(names):
        return funcs[-1][0]
    return None


def _arg_kind(name: str, value: Any, content: str) -> str | None:
    if not isinstance(value, list):
        return None
    if _TREE_WORDS.search(content) and _TREE_PARAM.match(name) and \
            all(v is None or not isinstance(v, list) for v in value):
        return "tree"
    if _LIST_WORDS.search(content):
        if _LIST_PARAM.match(name) and all(not isinstance(v, list) for v in value):
            return "list"
        if name == "lists" and all(isinstance(v, list) for v in value):
            return "list[]"
    return None


def _string_groups(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(g, list) and all(isinstance(x, str) for x in g) for g in value)


def _float_tolerance(content: str, output_texts: list[str]) -> float | None:
    """``abs_tol`` from "within 10-5" in the statement, or from outputs printed with >= 4
    decimals (``2.00000`` -> 1e-5: the judge accepts that precision)."""
    tol = None
    m = _WITHIN.search(content)
    if m:
        tol = 10.0 ** -int(m.group(1))
    places = [len(m.group(1)) for t in output_texts for m in _FLOAT_TEXT.finditer(_clean(t))]
    if places and max(places) >= 4:
        t2 = 10.0 ** -max(places)
        tol = max(tol or 0.0, t2)
    return tol


def _design_cases(content: str) -> tuple[str, list[dict[str, Any]]]:
    cases, cls = [], None
    for m in _DESIGN.finditer(content):
        try:
            ops = parse_value(m.group("ops"))
            args = parse_value(m.group("args"))
            out = parse_value(m.group("output"))
        except ValueError:
            raise DropRow("unparsable_example") from None
        if not (isinstance(ops, list) and isinstance(args, list) and isinstance(out, list)
                and len(ops) == len(args) == len(out) and ops
                and all(isinstance(o, str) for o in ops)):
            raise DropRow("unparsable_design_example")
        if cls is not None and ops[0] != cls:
            raise DropRow("design_examples_disagree")
        cls = ops[0]
        cases.append({"input": [ops, args], "output": out})
    if not cases or cls is None:
        raise DropRow("no_examples")
    return cls, cases


def extract_leetcode(content: str, python: str, slug: str) -> dict[str, Any]:
    """Everything the loader needs for one problem (raises DropRow):
    ``job`` (the tests part), ``signature`` (for the prompt), ``reference`` (job part for
    the dataset's solution, or None when it does not match the examples) and ``kind``."""
    if _MULTIPLE.search(content):
        raise DropRow("multiple_valid_answers")
    compare: dict[str, Any] = {}
    if _ANY_ORDER.search(content):
        compare["mode"] = "any_order"
    examples = list(_EXAMPLE.finditer(content))
    if _DESIGN.search(content) or not examples:
        if not _DESIGN.search(content):
            raise DropRow("no_examples")
        cls, cases = _design_cases(content)
        compare.pop("mode", None)  # results come in operation order
        tol = _float_tolerance(content, [json.dumps(c["output"]) for c in cases])
        if tol is not None:
            compare["abs_tol"] = tol
        job: dict[str, Any] = {"entry_point": cls, "cases": cases, "env": "leetcode",
                               "call": {"design": True}}
        if compare:
            job["compare"] = compare
        ref = next((e for e, _ in reference_functions(python) if e.split(".")[0] == cls), None)
        return {"job": job, "signature": f"class {cls}",
                "reference": {"entry_point": cls, "call": {"design": True}} if ref else None,
                "kind": "design"}
    parsed: list[tuple[dict[str, Any], Any]] = []
    outputs_text = []
    for ex in examples:
        try:
            kwargs = parse_inputs(ex.group("input"))
            output = parse_value(ex.group("output"))
        except ValueError:
            raise DropRow("unparsable_example") from None
        parsed.append((kwargs, output))
        outputs_text.append(ex.group("output"))
    names = list(parsed[0][0])
    if any(list(k) != names for k, _ in parsed):
        raise DropRow("examples_disagree_on_parameters")
    if _JUDGE_ONLY & set(names):
        raise DropRow("judge_only_parameter")
    if "dummy_input" in names:
        raise DropRow("codec_roundtrip")
    if _TREE_WORDS.search(content) or _LIST_WORDS.search(content):
        for n in names:  # "two given nodes, `p` and `q`": the judge passes node objects
            m = re.search(rf"\bnodes?\b([^.`]{{0,20}})`{re.escape(n)}`", content)
            if m and "value" not in m.group(1):  # "the nodes of value `p`" are integers
                raise DropRow("node_reference_argument")
    kinds = [None] * len(names)
    for kwargs, _ in parsed:
        for i, n in enumerate(names):
            k = _arg_kind(n, kwargs[n], content)
            if k is not None:
                kinds[i] = k
    call: dict[str, Any] = {}
    node_io = any(kinds)
    if node_io:
        call["args"] = kinds
        if any(isinstance(o, list) for _, o in parsed):
            call["returns"] = "node"
    if _INPLACE.search(content):
        m = _MODIFY.search(content)
        target = m.group(1) if m and m.group(1) in names else names[0]
        call["inplace"] = names.index(target)
    tol = _float_tolerance(content, outputs_text)
    if tol is not None:
        compare["abs_tol"] = tol
    if not any(isinstance(o, list) for _, o in parsed):
        compare.pop("mode", None)  # the order of a scalar answer cannot vary
    if compare.get("mode") == "any_order" and all(_string_groups(o) for _, o in parsed):
        # groups of words (anagram groups): the judge ignores the order inside groups too;
        # lists of numbers keep their inner order (permutations differ only by it)
        compare["mode"] = "any_order_deep"
    ref_entry = _match_reference(python, names, slug.replace("-", ""))
    method = camel(ref_entry.split(".")[-1]) if ref_entry else camel(slug)
    ref_entry = ref_entry or _arity_reference(python, names)
    cases = [{"input": [k[n] for n in names], "output": o} for k, o in parsed]
    job = {"entry_point": f"Solution.{method}", "function": method, "cases": cases,
           "env": "leetcode", "call": call}
    if compare:
        job["compare"] = compare
    kind = ("tree" if "tree" in kinds or "tree[]" in kinds else
            "list" if "list" in kinds or "list[]" in kinds else
            "in_place" if "inplace" in call else
            "float" if "abs_tol" in compare else
            "any_order" if compare.get("mode") else "plain")
    return {"job": job, "signature": f"def {method}({', '.join(['self', *names])})",
            "reference": {"entry_point": ref_entry, "call": call} if ref_entry else None,
            "kind": kind}


def leetcode(row: dict[str, Any], src: SourceSpec) -> dict[str, Any]:
    """greengerong/leetcode: ``id``, ``slug``, ``title``, ``difficulty``, ``content``
    (markdown statement with ``**Input:** .. / **Output:** ..`` examples), and reference
    solutions ``python``, ``java``, ``c++``, ``javascript`` (fenced code + explanation).

    Cases come from the statement's examples; the signature from the example parameter
    names, with the method name of the reference solution when its parameters are the
    examples' (else from the slug).  With ``options.signature_hint`` (default true) the
    prompt ends with the expected signature so that a correct answer is also a testable
    one.  ``meta.reference`` lets the ``reference_passes`` filter cross-check the dataset's
    solution; it never changes the cases.
    """
    content = row.get("content")
    if not isinstance(content, str) or not content.strip():
        raise DropRow("missing_field:content" if content is None else "empty_prompt")
    python = row.get("python")
    python = python if isinstance(python, str) else ""
    slug = str(row.get("slug") or row.get("title") or "solve")
    info = extract_leetcode(content, python, slug)
    job = info["job"]
    prompt = _unescape(content).strip()
    if src.options.get("signature_hint", True):
        if info["kind"] == "design":
            prompt += f"\n\nWrite the solution in Python 3 as `{info['signature']}`."
        else:
            prompt += (f"\n\nWrite the solution in Python 3 as `class Solution` with the method "
                       f"`{info['signature']}`.")
    ref = None
    if info["reference"] is not None:
        code = "\n\n".join(_code_blocks(python))
        ref = {"code": code, **{k: v for k, v in job.items() if k not in ("function",)},
               **info["reference"]}
    return {"messages": [{"role": "user", "content": prompt}], "gold": None,
            "tests": json.dumps(job, ensure_ascii=False), "existing_response": None,
            "meta": {"domain": "code", "difficulty": row.get("difficulty"),
                     "problem_kind": info["kind"], "reference": ref}}


LOADERS.update({"leetcode": leetcode, "self_oss_instruct": self_oss_instruct})
