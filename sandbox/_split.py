"""Runner side: split a job into what the untrusted process computes and what stays outside.

Why: the job process shares its interpreter with the solution, and a solution can reach
anything in it (frames, ``gc``, the harness's functions).  So the job only *computes* values
and the verdict is decided by the runner, which is never reachable from a job:

* ``cases`` / ``stdin_cases``: the expected outputs are removed before the job is sent to a
  worker (they never enter the worker's memory, hence not the forked job either);
* ``test`` code: every ``assert`` (anywhere, also inside functions) and every common
  ``self.assertX(...)`` call becomes ``__sandbox_check__(k, ...)``, which reports the computed
  side(s) as strict plain data.  When one side of a comparison is a literal (``== 2.5``,
  ``== [1, 2]``, ``set([1, 2])``...), that side is *held here* and replaced by nothing, so
  forging a pass requires producing the right values, i.e. solving the problem.  Comparisons
  whose both sides are computed are still compared here, on plain data only (no custom
  ``__eq__``); a solution that takes over its own process could forge those.
* Checks reached unconditionally (top-level asserts, straight-line asserts at the start of a
  test function or of a function the test code calls at top level, e.g. HumanEval's
  ``check(candidate)``) are *required*: a job that stops reporting early (a forged "done")
  is a failure.
* Tests that cannot be split (``raise`` statements, ``assertRaises``, other unittest assert
  methods) still run in process: the verdict then carries ``judged: "in_process"``.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field
from typing import Any

CHECK = "__sandbox_check__"
PLAIN = "__sandbox_plain__"
_CMP_OPS: dict[type, str] = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=",
                             ast.Gt: ">", ast.GtE: ">=", ast.In: "in", ast.NotIn: "not in",
                             ast.Is: "is", ast.IsNot: "is not"}
# unittest assert methods -> (op, number of positional operands)
_UT_METHODS: dict[str, tuple[str, int]] = {
    "assertEqual": ("==", 2), "assertEquals": ("==", 2), "assertListEqual": ("==", 2),
    "assertTupleEqual": ("==", 2), "assertDictEqual": ("==", 2), "assertSetEqual": ("==", 2),
    "assertSequenceEqual": ("==", 2), "assertMultiLineEqual": ("==", 2),
    "assertNotEqual": ("!=", 2), "assertTrue": ("truth", 1), "assertFalse": ("not", 1),
    "assertIn": ("in", 2), "assertNotIn": ("not in", 2), "assertIs": ("is", 2),
    "assertIsNot": ("is not", 2), "assertIsNone": ("is none", 1),
    "assertIsNotNone": ("is not none", 1), "assertGreater": (">", 2),
    "assertGreaterEqual": (">=", 2), "assertLess": ("<", 2), "assertLessEqual": ("<=", 2),
    "assertAlmostEqual": ("almost", 2), "assertNotAlmostEqual": ("not almost", 2),
    "assertCountEqual": ("counteq", 2),
}
# Calls whose *result* may be a non-plain builtin (iterators, types) inside an assert.
_NO_WRAP = {"map", "zip", "filter", "range", "enumerate", "reversed", "iter", "type",
            "print", "super"}
# Calls whose *arguments* may legitimately be non-plain (introspection, iteration).
_ARGS_FREE = {"isinstance", "issubclass", "type", "hasattr", "callable", "id", "repr", "str",
              "getattr", "len", "bool", "print", "iter", "next"}
_ARITH: dict[type, Any] = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
                           ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b,
                           ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b}
_LITERAL_CALLS = {"set": set, "frozenset": frozenset, "tuple": tuple, "list": list,
                  "float": float, "int": int, "str": str, "bool": bool, "dict": dict,
                  "sorted": sorted, "complex": complex}


@dataclass
class Check:
    """One split assertion: ``op`` applied to the job's value(s) and the held literal."""

    op: str
    held: str | None  # "l" / "r": which operand is held here; None: all computed in the job
    value: Any = None  # the held literal
    extra: dict[str, Any] = field(default_factory=dict)  # isclose/almost keyword literals
    line: int = 0
    src: str = ""
    required: bool = False

    @property
    def strong(self) -> bool:
        """Forging this check needs the held expected value (never in the job): an equality
        or membership against a held literal.  ``x < eps`` or a truth value can be forged
        by a solution that takes over its own process."""
        return self.held is not None and self.op in ("==", "in", "is", "isclose", "almost",
                                                      "counteq", "static")


@dataclass
class TestSplit:
    """What the runner keeps for a ``test`` job: the checks and labels of the original."""

    checks: list[Check]
    labels: dict[str, str]  # "statement N" -> "statement N (line L: source)"
    in_process: list[str]  # why parts of the tests are judged inside the job (empty: none)


def literal(node: ast.AST) -> tuple[bool, Any]:
    """``(True, value)`` when ``node`` is a literal we can evaluate here without running any
    code: constants, containers of them, negation, and a few constructors of literals."""
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        items = []
        for e in node.elts:
            ok, v = literal(e)
            if not ok:
                return False, None
            items.append(v)
        try:
            return True, (tuple if isinstance(node, ast.Tuple) else
                          list if isinstance(node, ast.List) else set)(items)
        except TypeError:  # unhashable set item
            return False, None
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
        lok, a = literal(node.left)
        rok, b = literal(node.right)
        # small numbers only: evaluating must stay cheap and exact for any input
        if lok and rok and all(type(x) in (int, float) and abs(x) < 2 ** 64 for x in (a, b)):
            try:
                return True, _ARITH[type(node.op)](a, b)
            except (ArithmeticError, ValueError):
                return False, None
        return False, None
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in _LITERAL_CALLS and not node.keywords and len(node.args) <= 1):
        args = []
        for a in node.args:
            ok, v = literal(a)
            if not ok:
                return False, None
            args.append(v)
        try:
            return True, _LITERAL_CALLS[node.func.id](*args)
        except (ValueError, TypeError, OverflowError):
            return False, None
    return False, None


def _keywords_literal(kws: list[ast.keyword], allowed: set[str]) -> dict[str, Any] | None:
    out = {}
    for kw in kws:
        if kw.arg not in allowed:
            return None
        ok, v = literal(kw.value)
        if not ok:
            return None
        out[kw.arg] = v
    return out


class _Wrap(ast.NodeTransformer):
    """Inside an assertion, pass every call result through the strict plain-data check, so a
    custom object cannot fake a comparison through arithmetic (``abs(f(x) - y) < eps``) or a
    builtin (``sorted``, ``sum``...) before the final values are reported."""

    def __init__(self, top: ast.AST) -> None:
        self.top = top
        self.free: set[int] = set()

    def visit_Call(self, node: ast.Call) -> ast.AST:
        name = node.func.id if isinstance(node.func, ast.Name) else ""
        if name in _ARGS_FREE:
            self.free.update(id(a) for a in node.args)
        self.generic_visit(node)
        if node is self.top or name in _NO_WRAP or id(node) in self.free or name == CHECK:
            return node
        return ast.copy_location(ast.Call(ast.Name(PLAIN, ast.Load()), [node], []), node)

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        return node  # code in a lambda runs later, maybe outside any assertion


def _wrap(expr: ast.expr) -> ast.expr:
    return _Wrap(expr).visit(expr)


class _Splitter(ast.NodeTransformer):
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.checks: list[Check] = []
        self.in_process: list[str] = []

    def _src(self, node: ast.AST) -> str:
        ln = getattr(node, "lineno", 0)
        return self.lines[ln - 1].strip()[:120] if 0 < ln <= len(self.lines) else ""

    def _emit(self, node: ast.AST, chk: Check, operands: list[ast.expr]) -> ast.Expr:
        chk.line, chk.src = getattr(node, "lineno", 0), self._src(node)
        k = len(self.checks)
        self.checks.append(chk)
        call = ast.Call(ast.Name(CHECK, ast.Load()),
                        [ast.Constant(k)] + [_wrap(o) for o in operands], [])
        return ast.copy_location(ast.Expr(call), node)

    def _split_compare(self, node: ast.AST, op: str, left: ast.expr,
                       right: ast.expr) -> ast.Expr:
        lok, lval = literal(left)
        rok, rval = literal(right)
        if op in ("is", "is not") and not (rok and rval in (None, True, False)
                                           and type(rval) in (type(None), bool)):
            # identity of two computed objects does not survive serialisation: the job
            # reports the boolean (still plain data)
            cmp = ast.Compare(left, [ast.Is() if op == "is" else ast.IsNot()], [right])
            return self._emit(node, Check("truth", None), [cmp])
        if rok:
            return self._emit(node, Check(op, "r", rval), [left])
        if lok and op not in ("is", "is not"):
            return self._emit(node, Check(op, "l", lval), [right])
        return self._emit(node, Check(op, None), [left, right])

    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        t = node.test
        ok, value = literal(t)
        if ok:  # ``assert True``: decided here, nothing for the job to compute
            return self._emit(node, Check("static", "r", value), [])
        if isinstance(t, ast.Compare) and len(t.ops) == 1 and type(t.ops[0]) in _CMP_OPS:
            return self._split_compare(node, _CMP_OPS[type(t.ops[0])], t.left, t.comparators[0])
        if isinstance(t, ast.UnaryOp) and isinstance(t.op, ast.Not):
            return self._emit(node, Check("not", None), [t.operand])
        if (isinstance(t, ast.Call) and isinstance(t.func, ast.Attribute)
                and t.func.attr == "isclose" and isinstance(t.func.value, ast.Name)
                and t.func.value.id == "math" and len(t.args) == 2):
            extra = _keywords_literal(t.keywords, {"rel_tol", "abs_tol"})
            ok, v = literal(t.args[1])
            if extra is not None and ok:
                return self._emit(node, Check("isclose", "r", v, extra), [t.args[0]])
        return self._emit(node, Check("truth", None), [t])

    def visit_Raise(self, node: ast.Raise) -> ast.AST:
        self.in_process.append(f"line {node.lineno}: raise")
        return node

    def visit_Expr(self, node: ast.Expr) -> ast.AST:
        c = node.value
        if (isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)
                and isinstance(c.func.value, ast.Name) and c.func.value.id == "self"
                and c.func.attr.startswith(("assert", "fail"))):
            spec = _UT_METHODS.get(c.func.attr)
            if spec and len(c.args) >= spec[1] and len(c.args) <= spec[1] + 1:
                return self._split_unittest(node, c, *spec)
            self.in_process.append(f"line {node.lineno}: self.{c.func.attr}")
            return node
        return self.generic_visit(node)

    def visit_With(self, node: ast.With) -> ast.AST:
        for item in node.items:
            e = item.context_expr
            if isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute) and (
                    e.func.attr.startswith("assert") or e.func.attr == "raises"):
                self.in_process.append(f"line {node.lineno}: {e.func.attr}")
        return self.generic_visit(node)

    def _split_unittest(self, node: ast.Expr, c: ast.Call, op: str, n: int) -> ast.AST:
        args = c.args[:n]
        if op in ("almost", "not almost"):
            extra = _keywords_literal(c.keywords, {"places", "delta", "msg"})
            if extra is None:
                self.in_process.append(f"line {node.lineno}: self.{c.func.attr}")  # type: ignore[attr-defined]
                return node
            extra.pop("msg", None)
            ok, v = literal(args[1])
            return self._emit(node, Check(op, "r", v, extra) if ok else Check(op, None, None,
                                                                               extra),
                              [args[0]] if ok else args)
        if any(kw.arg != "msg" for kw in c.keywords):
            self.in_process.append(f"line {node.lineno}: self.{c.func.attr}")  # type: ignore[attr-defined]
            return node
        if op in ("is none", "is not none"):
            return self._emit(node, Check("is" if op == "is none" else "is not", "r", None),
                              args)
        if n == 1:
            return self._emit(node, Check(op, None), args)
        if op == "counteq":
            ok, v = literal(args[1])
            return self._emit(node, Check(op, "r", v) if ok else Check(op, None),
                              args[:1] if ok else args)
        return self._split_compare(node, op, args[0], args[1])


def _straight_line(body: list[ast.stmt], checks: list[Check], called: set[str]) -> None:
    """Mark checks in the unconditional prefix of ``body`` required; collect names called."""
    for s in body:
        if isinstance(s, ast.Expr) and isinstance(s.value, ast.Call):
            f = s.value.func
            if isinstance(f, ast.Name) and f.id == CHECK:
                k = s.value.args[0]
                checks[k.value].required = True  # type: ignore[attr-defined]
                continue
            if isinstance(f, ast.Name):
                called.add(f.id)
            continue
        if isinstance(s, (ast.Expr, ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Import,
                          ast.ImportFrom, ast.Pass, ast.FunctionDef, ast.AsyncFunctionDef,
                          ast.ClassDef)):
            continue
        return


def _mark_required(tree: ast.Module, checks: list[Check]) -> None:
    called: set[str] = set()
    for s in tree.body:  # each top-level statement is run by the harness
        body = [s]
        if (isinstance(s, ast.If) and isinstance(s.test, ast.Compare)
                and isinstance(s.test.left, ast.Name) and s.test.left.id == "__name__"):
            body = s.body
        _straight_line(body, checks, called)
    explicit = set(called)
    for s in tree.body:
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = s.args
            no_args = not (a.posonlyargs or a.args or a.kwonlyargs)
            if s.name in explicit or (s.name.startswith("test") and no_args):
                _straight_line(s.body, checks, set())
        elif isinstance(s, ast.ClassDef):
            for b in s.body:
                if isinstance(b, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                        and b.name.startswith("test"):
                    _straight_line(b.body, checks, set())


def split_test(test: str) -> tuple[str, TestSplit] | None:
    """Rewrite test code for the job; None when it does not parse (the worker reports it)."""
    try:
        tree = ast.parse(test, "<test>")
        lines = test.splitlines()
        sp = _Splitter(lines)
        labels = {}
        for i, s in enumerate(tree.body):
            ln = s.lineno
            src = lines[ln - 1].strip() if 0 < ln <= len(lines) else ""
            labels[f"statement {i + 1}"] = f"statement {i + 1} (line {ln}: {src[:80]})"
        tree = sp.visit(tree)
        ast.fix_missing_locations(tree)
        _mark_required(tree, sp.checks)
        rewritten = ast.unparse(tree)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    in_process = list(sp.in_process)
    if not sp.checks:
        in_process.append("no assertion could be split")
    return rewritten, TestSplit(sp.checks, labels, in_process)


def split_job(job: dict[str, Any]) -> tuple[dict[str, Any], TestSplit | None]:
    """The job as the worker may see it (no expected values) and what the runner keeps."""
    sent = dict(job)
    if "cases" in job:
        sent["cases"] = [{"input": c["input"]} for c in job["cases"]]
        return sent, None
    if "stdin_cases" in job:
        sent["stdin_cases"] = [{"input": c["input"]} for c in job["stdin_cases"]]
        return sent, None
    res = split_test(job["test"])
    if res is None:
        return sent, None
    sent["test"], held = res
    return sent, held


def apply_check(chk: Check, got: list[Any]) -> tuple[bool, str]:
    """Evaluate one check on decoded plain values; ``(ok, message)``."""
    if chk.op == "static":
        return (bool(chk.value), "" if chk.value else "assertion is false")
    if (chk.held and len(got) != 1) or (not chk.held and len(got) != (
            1 if chk.op in ("truth", "not") else 2)):
        return False, "malformed check report"
    if chk.held == "r":
        a, b = (got[0], chk.value)
    elif chk.held == "l":
        a, b = (chk.value, got[0])
    else:
        a, b = (got + [None])[:2]
    op = chk.op
    try:
        if op == "==":
            ok = a == b
        elif op == "!=":
            ok = a != b
        elif op == "<":
            ok = a < b
        elif op == "<=":
            ok = a <= b
        elif op == ">":
            ok = a > b
        elif op == ">=":
            ok = a >= b
        elif op == "in":
            ok = a in b
        elif op == "not in":
            ok = a not in b
        elif op == "is":
            ok = a is b
        elif op == "is not":
            ok = a is not b
        elif op == "truth":
            ok = bool(a)
        elif op == "not":
            ok = not a
        elif op == "isclose":
            ok = math.isclose(a, b, **chk.extra)
        elif op in ("almost", "not almost"):
            if "delta" in chk.extra:
                near = a == b or abs(a - b) <= chk.extra["delta"]
            else:
                near = a == b or round(abs(a - b), chk.extra.get("places", 7)) == 0
            ok = near if op == "almost" else not near
        elif op == "counteq":
            rest = list(b)
            ok = True
            for x in a:
                try:
                    rest.remove(x)
                except ValueError:
                    ok = False
                    break
            ok = ok and not rest
        else:
            return False, f"unknown check {op!r}"
    except Exception as e:  # noqa: BLE001 - e.g. TypeError comparing list < int
        return False, f"{type(e).__name__}: {e}"
    if ok:
        return True, ""
    if op == "==" and chk.held:
        want, have = (b, a) if chk.held == "r" else (a, b)
        return False, f"expected {_short(want)}, got {_short(have)}"
    if op in ("truth", "not"):
        return False, f"assertion is false (value {_short(a)})"
    return False, f"{_short(a)} {op} {_short(b)} is false"


def _short(x: Any, n: int = 200) -> str:
    s = repr(x)
    return s if len(s) <= n else s[:n] + "..."
