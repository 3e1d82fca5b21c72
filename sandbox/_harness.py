"""The in-sandbox test harness: runs inside the forked, already-confined job process.

Everything here executes *after* privileges were dropped, in the same process as the untrusted
solution, so the harness assumes the solution will try to cheat and is built accordingly:

* Every reference the harness needs (``os.write``, ``json.dumps``, ``unittest``...) is bound at
  import time in the worker, before any untrusted code exists, so monkeypatching module
  attributes cannot redirect the harness.
* After the solution ran and before the tests run, module dictionaries, ``sys.modules``,
  import hooks, ``unittest`` classes, tracing/profiling hooks and builtins are restored to the
  snapshot taken in the worker; tests that rely on a builtin the solution rebound fail loudly.
* ``assert x == y`` comparisons in test code are rewritten so an object with a Python-level
  ``__eq__`` that claims equality with a plain value ("AlwaysEqual") fails.
* A result only counts when it carries the per-job random nonce the worker passed in; the
  harness writes the pass record only after the last test returned.  Exiting early
  (``sys.exit``/``os._exit``), deleting test functions, skipping tests or printing fake
  success lines therefore cannot produce a pass.
* For function-call and stdin/stdout cases the harness does not judge at all: it reports the
  produced values (as plain JSON) and the *worker* compares them with the expected outputs.

Not defended (documented in the README): code that deliberately walks interpreter frames, gc
or raw memory to reach the harness's own objects.  In-process, that cannot be prevented.
"""

from __future__ import annotations

import ast
import builtins
import io
import json
import math
import os
import sys
import threading
import types
import unittest
from typing import Any, NoReturn

from pyflakes import checker as _pyflakes_checker
from pyflakes import messages as _pyflakes_messages

from sandbox import _leetcode  # issue 14: LeetCode environment and calling conventions

_write = os.write
_exit = os._exit
_fork = os.fork
_waitpid = os.waitpid
_dumps = json.JSONEncoder(ensure_ascii=True).encode
_TestResult = unittest.TestResult
_TestLoader = unittest.TestLoader
_TestCase = unittest.TestCase
_BUILTINS = builtins.__dict__
_UNDEFINED = (
    _pyflakes_messages.UndefinedName,
    _pyflakes_messages.UndefinedLocal,
    _pyflakes_messages.UndefinedExport,
)
_PLAIN = (type(None), bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset)
_MISSING = object()

# Filled by snapshot_state() in the worker, inherited by every forked job.  Keyed by module
# name so a job restores only what its tests can reach: touching every module's objects in the
# forked child would copy-on-write most of the heap and cost milliseconds per job.
_MOD_SNAPSHOT: dict[str, tuple[types.ModuleType, dict[str, Any]]] = {}
_CLASS_SNAPSHOT: dict[str, list[tuple[type, dict[str, Any]]]] = {}
_META_PATH: list[Any] = []
_PATH_HOOKS: list[Any] = []
_ALWAYS_RESTORE = ("builtins", "json", "json.encoder")

MAX_RECORD = 8 << 20  # bytes of results one job may report


def snapshot_state() -> None:
    """Remember pristine interpreter state; called once in the worker after preloading."""
    _MOD_SNAPSHOT.clear()
    _CLASS_SNAPSHOT.clear()
    for name, mod in list(sys.modules.items()):
        if not isinstance(mod, types.ModuleType) or name == "__main__":
            continue
        _MOD_SNAPSHOT[name] = (mod, dict(mod.__dict__))
        if name == "unittest" or name.startswith("unittest."):
            _CLASS_SNAPSHOT[name] = [
                (obj, dict(obj.__dict__)) for obj in list(vars(mod).values())
                if isinstance(obj, type) and obj.__module__ == name]
    _META_PATH[:] = sys.meta_path
    _PATH_HOOKS[:] = sys.path_hooks


def _restore_state(names: set[str]) -> None:
    """Undo monkeypatching of the pre-imported modules named in ``names`` (plus builtins and
    json), of their ``unittest`` classes, of ``sys.modules`` entries, import hooks and
    tracing/profiling hooks."""
    sys.settrace(None)
    sys.setprofile(None)
    threading.settrace(None)  # type: ignore[arg-type]
    threading.setprofile(None)  # type: ignore[arg-type]
    sys.meta_path[:] = _META_PATH
    sys.path_hooks[:] = _PATH_HOOKS
    wanted = set(_ALWAYS_RESTORE)
    for n in names:
        if n in _MOD_SNAPSHOT:
            wanted.add(n)
            if n == "unittest":
                wanted.update(k for k in _MOD_SNAPSHOT if k.startswith("unittest."))
    for name in wanted:
        mod, snap = _MOD_SNAPSHOT[name]
        if sys.modules.get(name) is not mod:
            sys.modules[name] = mod
        d = mod.__dict__
        for k, v in snap.items():
            if d.get(k, _MISSING) is not v:
                d[k] = v
        for cls, csnap in _CLASS_SNAPSHOT.get(name, ()):
            _restore_class(cls, csnap)


def _restore_class(cls: type, snap: dict[str, Any]) -> None:
    for k in [k for k in cls.__dict__ if k not in snap]:
        try:
            delattr(cls, k)
        except (AttributeError, TypeError):
            pass
    for k, v in snap.items():
        if cls.__dict__.get(k, _MISSING) is not v and k not in ("__dict__", "__weakref__"):
            try:
                setattr(cls, k, v)
            except (AttributeError, TypeError):
                pass


class _Reporter:
    """Writes nonce-stamped JSON lines to the result pipe using pre-bound primitives."""

    def __init__(self, fd: int, nonce: str) -> None:
        self.fd = fd
        self.nonce = nonce

    def emit(self, rec: dict[str, Any]) -> None:
        rec["nonce"] = self.nonce
        data = (_dumps(rec) + "\n").encode()
        if len(data) > MAX_RECORD:
            data = (_dumps({"nonce": self.nonce, "kind": "failed",
                            "detail": "results too large to report"}) + "\n").encode()
        view = memoryview(data)
        while view:
            n = _write(self.fd, view)
            view = view[n:]

    def finish(self, rec: dict[str, Any]) -> NoReturn:
        """Flush user output, emit the final record and exit without running atexit hooks."""
        for stream in (sys.__stdout__, sys.__stderr__, sys.stdout, sys.stderr):
            try:
                stream.flush()  # type: ignore[union-attr]
            except BaseException:  # noqa: BLE001 - user code may have broken the streams
                pass
        try:
            self.emit(rec)
        finally:
            _exit(0)


def _short(exc: BaseException, limit: int = 300) -> str:
    """``str(exc)`` that survives hostile ``__str__`` implementations."""
    try:
        msg = str(exc)
    except BaseException:  # noqa: BLE001
        msg = "<unprintable>"
    return msg if len(msg) <= limit else msg[:limit] + "..."


def _etype(exc: BaseException) -> str:
    try:
        return type(exc).__name__
    except BaseException:  # noqa: BLE001
        return "Exception"


def _fail_record(where: str, exc: BaseException, test: Any = None) -> dict[str, Any]:
    kind = "memory" if isinstance(exc, MemoryError) else "failed"
    et, msg = _etype(exc), _short(exc)
    detail = f"{where}: {et}" + (f": {msg}" if msg else "")
    return {"kind": kind, "detail": detail, "failed_test": test, "error_type": et,
            "message": msg}


# --------------------------------------------------------------------------- static checks


def _defined_names(tree: ast.Module) -> dict[str, ast.AST]:
    out: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        out[n.id] = node
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                out[(a.asname or a.name).split(".")[0]] = node
    return out


def static_check(code: str, entry_point: str | None,
                 known: Any = ()) -> tuple[str, str, Any] | None:
    """Return ``(verdict, detail, None)`` when ``code`` fails static analysis, else None.

    Checks: it compiles, no undefined names, the entry point (if any) is defined at top
    level.  ``known`` are extra defined names (from a prelude).  Pyflakes (a core dependency already) is used as a library: only undefined-name class
    messages are errors, because unused imports and the like do not make a solution wrong.
    """
    try:
        tree = ast.parse(code, "<solution>")
        compile(tree, "<solution>", "exec")
    except SyntaxError as e:
        return ("syntax_error", (f"line {e.lineno}: " if e.lineno else "") + str(e.msg), None)
    except (ValueError, RecursionError, MemoryError) as e:
        return ("syntax_error", f"{_etype(e)}: {_short(e)}", None)
    try:
        msgs = _pyflakes_checker.Checker(tree, filename="<solution>",
                                         builtins=set(known)).messages
    except RecursionError:
        msgs = []
    star = any(isinstance(m, _pyflakes_messages.ImportStarUsed) for m in msgs)
    bad = [m for m in msgs if isinstance(m, _UNDEFINED)] if not star else []
    if bad:
        bad.sort(key=lambda m: m.lineno)
        m = bad[0]
        more = f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""
        return ("static_error", f"line {m.lineno}: {m.message % m.message_args}{more}", None)
    if entry_point:
        head, _, method = entry_point.partition(".")
        defs = _defined_names(tree)
        node = defs.get(head)
        if node is None and head in known and not method:
            return None
        if node is None:
            return ("static_error", f"entry point {head!r} is not defined", None)
        if method:
            ok = isinstance(node, ast.ClassDef) and any(
                isinstance(b, (ast.FunctionDef, ast.AsyncFunctionDef)) and b.name == method
                for b in node.body)
            if not ok:
                return ("static_error", f"entry point {entry_point!r} is not defined", None)
    return None


# ------------------------------------------------------------------- assert-based test code


def _checked_eq(left: Any, right: Any) -> Any:
    """``left == right`` that refuses "AlwaysEqual" objects compared against plain values."""
    res = left == right
    if type(res) is bool and not res:
        return res
    lp, rp = _is_plain(left), _is_plain(right)
    if lp != rp:
        other = right if lp else left
        if _has_custom_eq(other):
            raise AssertionError(
                f"equality claimed by object of type {type(other).__name__} with a custom "
                "__eq__ against a plain value")
    return res


def _checked_ne(left: Any, right: Any) -> Any:
    res = left != right
    if type(res) is bool and res is False:
        lp, rp = _is_plain(left), _is_plain(right)
        if lp != rp and _has_custom_eq(right if lp else left):
            raise AssertionError("inequality denied by object with a custom __ne__/__eq__")
    return res


def _walk(obj: Any, budget: list[int]):
    budget[0] -= 1
    if budget[0] < 0:
        return
    yield obj
    t = type(obj)
    if t in (list, tuple, set, frozenset):
        for x in obj:
            yield from _walk(x, budget)
    elif t is dict:
        for k, v in obj.items():
            yield from _walk(k, budget)
            yield from _walk(v, budget)


def _is_plain(obj: Any) -> bool:
    return all(type(x) in _PLAIN for x in _walk(obj, [10_000]))


def _has_custom_eq(obj: Any) -> bool:
    for x in _walk(obj, [10_000]):
        for name in ("__eq__", "__ne__"):
            fn = getattr(type(x), name, None)
            if isinstance(fn, types.FunctionType):
                return True
    return False


class _AssertRewriter(ast.NodeTransformer):
    """Route ``==``/``!=`` inside ``assert`` through the checked comparisons; drop
    ``unittest.main()`` calls because the harness runs TestCase classes itself."""

    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        node.test = _CompareRewriter().visit(node.test)
        return node

    def visit_Expr(self, node: ast.Expr) -> ast.AST:
        v = node.value
        if (isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute)
                and v.func.attr == "main" and isinstance(v.func.value, ast.Name)
                and v.func.value.id == "unittest"):
            return ast.copy_location(ast.Pass(), node)
        return self.generic_visit(node)


class _CompareRewriter(ast.NodeTransformer):
    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        if len(node.ops) == 1 and isinstance(node.ops[0], (ast.Eq, ast.NotEq)):
            fn = "__sandbox_eq__" if isinstance(node.ops[0], ast.Eq) else "__sandbox_ne__"
            call = ast.Call(func=ast.Name(fn, ast.Load()),
                            args=[node.left, node.comparators[0]], keywords=[])
            return ast.copy_location(call, node)
        return node


def _code_names(co: types.CodeType) -> set[str]:
    names = set(co.co_names)
    for c in co.co_consts:
        if isinstance(c, types.CodeType):
            names |= _code_names(c)
    return names


def _test_function_kind(node: ast.AST) -> str | None:
    """``"sync"``/``"async"`` for a ``test*`` function callable without arguments,
    ``"needs_args"`` for one that is not (e.g. pytest fixtures), None for anything else."""
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    if not node.name.startswith("test"):
        return None
    a = node.args
    required = len(a.posonlyargs) + len(a.args) - len(a.defaults)
    required_kw = sum(d is None for d in a.kw_defaults)
    if required > 0 or required_kw > 0:
        return "needs_args"
    return "async" if isinstance(node, ast.AsyncFunctionDef) else "sync"


def _test_methods(node: ast.ClassDef) -> list[tuple[str, bool]]:
    """``(name, is_async)`` of ``test*`` methods taking only ``self``."""
    out = []
    for b in node.body:
        if isinstance(b, (ast.FunctionDef, ast.AsyncFunctionDef)) and b.name.startswith("test"):
            out.append((b.name, isinstance(b, ast.AsyncFunctionDef)))
    return out


def _call_test(fn: Any, is_async: bool) -> None:
    res = fn()
    if is_async:
        import asyncio

        asyncio.run(res)


class _TestPlan:
    """Test code parsed, rewritten and compiled in the worker (before fork), so each job
    does not redo it in a copy-on-write child."""

    def __init__(self, test: str) -> None:
        tree = ast.parse(test, "<test>")
        tree = _AssertRewriter().visit(tree)
        ast.fix_missing_locations(tree)
        self.lines = test.splitlines()
        self.stmts = [(s, compile(ast.Module([s], []), "<test>", "exec")) for s in tree.body]
        self.used: set[str] = set()
        for _, co in self.stmts:
            self.used |= _code_names(co)
        self.called: set[str] = set()
        self.test_funcs: list[tuple[str, bool]] = []
        self.needs_args: list[str] = []
        self.test_classes: list[tuple[str, list[tuple[str, bool]]]] = []
        for s in tree.body:
            for n in ast.walk(s):
                if isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
                    self.called.add(n.func.id)
            kind = _test_function_kind(s)
            if kind == "needs_args":
                self.needs_args.append(s.name)  # type: ignore[attr-defined]
            elif kind:
                self.test_funcs.append((s.name, kind == "async"))  # type: ignore[attr-defined]
            elif isinstance(s, ast.ClassDef) and (s.bases or s.name.startswith("Test")):
                # unittest.TestCase subclasses (any name) or pytest-style ``Test*`` classes;
                # which one is decided at run time.
                methods = _test_methods(s)
                if methods:
                    self.test_classes.append((s.name, methods))
        self.needs_args = [n for n in self.needs_args if n not in self.called]


def _run_assert_tests(rep: _Reporter, ns: dict[str, Any], plan: _TestPlan) -> NoReturn:
    used, stmts, lines = plan.used, plan.stmts, plan.lines
    called, test_funcs, test_classes = plan.called, plan.test_funcs, plan.test_classes
    _restore_state(used)
    ns["__builtins__"] = _BUILTINS
    for name in sorted(used):
        if (name in _BUILTINS and name in ns and ns[name] is not _BUILTINS[name]
                and not name.startswith("__")):
            rep.finish({"kind": "failed", "failed_test": None, "error_type": "Tampering",
                        "detail": f"solution rebinds builtin {name!r}, which the tests use",
                        "message": name})
    ns["__sandbox_eq__"] = _checked_eq
    ns["__sandbox_ne__"] = _checked_ne
    count = 0
    for i, (s, co) in enumerate(stmts):
        src = lines[s.lineno - 1].strip() if 0 < s.lineno <= len(lines) else ""
        label = f"statement {i + 1} (line {s.lineno}: {src[:80]})"
        rep.emit({"kind": "progress", "at": label})
        try:
            exec(co, ns)
        except BaseException as e:  # noqa: BLE001 - SystemExit from the solution is a failure
            rep.finish(_fail_record(label, e, i + 1))
        if isinstance(s, ast.Assert) or not isinstance(s, (ast.FunctionDef, ast.ClassDef,
                                                           ast.Import, ast.ImportFrom)):
            count += 1
    for name, is_async in test_funcs:
        if name in called:
            continue
        fn = ns.get(name)
        if not isinstance(fn, types.FunctionType):
            rep.finish({"kind": "failed", "failed_test": name, "error_type": "Tampering",
                        "detail": f"test function {name!r} is missing", "message": name})
        rep.emit({"kind": "progress", "at": f"test function {name}"})
        try:
            _call_test(fn, is_async)
        except BaseException as e:  # noqa: BLE001
            rep.finish(_fail_record(f"test function {name}", e, name))
        count += 1
    for name, methods in test_classes:
        n_methods = len(methods)
        cls = ns.get(name)
        if not isinstance(cls, type):
            rep.finish({"kind": "failed", "failed_test": name, "error_type": "Tampering",
                        "detail": f"test class {name!r} is missing", "message": name})
        if not issubclass(cls, _TestCase) and not name.startswith("Test"):
            continue  # neither unittest nor pytest would collect it
        if not issubclass(cls, _TestCase):
            # pytest-style class: fresh instance per test method, like pytest does
            for meth, is_async in methods:
                label = f"{name}.{meth}"
                rep.emit({"kind": "progress", "at": label})
                try:
                    _call_test(getattr(cls(), meth), is_async)
                except BaseException as e:  # noqa: BLE001
                    rep.finish(_fail_record(label, e, label))
                count += 1
            continue
        rep.emit({"kind": "progress", "at": f"test class {name}"})
        result = _TestResult()
        try:
            suite = _TestLoader().loadTestsFromTestCase(cls)
            suite.run(result)
        except BaseException as e:  # noqa: BLE001
            rep.finish(_fail_record(f"test class {name}", e, name))
        problems = result.errors + result.failures
        if problems:
            case, tb = problems[0]
            last = tb.strip().splitlines()[-1] if tb.strip() else "error"
            et, _, msg = last.partition(":")
            rep.finish({"kind": "memory" if et == "MemoryError" else "failed",
                        "failed_test": str(case.id()), "error_type": et, "message": msg.strip(),
                        "detail": f"{case.id()}: {last[:300]}"})
        if result.skipped or result.unexpectedSuccesses or result.testsRun < n_methods:
            rep.finish({"kind": "failed", "failed_test": name, "error_type": "Incomplete",
                        "message": "", "detail": f"{name}: only {result.testsRun} of "
                        f"{n_methods} tests ran without skipping"})
        count += result.testsRun
    tampered = _tampered(used, ns)
    if tampered:
        rep.finish({"kind": "failed", "failed_test": None, "error_type": "Tampering",
                    "detail": f"{tampered} changed while the tests ran", "message": tampered})
    rep.finish({"kind": "passed", "detail": f"all {count} tests passed"})


def _tampered(used: set[str], ns: dict[str, Any]) -> str | None:
    """Re-check, after the tests, what the tests could rely on: a thread left running by the
    solution could have re-patched it after the restore."""
    if ns.get("__sandbox_eq__") is not _checked_eq or ns.get("__sandbox_ne__") is not _checked_ne:
        return "the comparison helpers"
    for mod_name in ("builtins", *sorted(used & _MOD_SNAPSHOT.keys())):
        mod, snap = _MOD_SNAPSHOT[mod_name]
        d = mod.__dict__
        for attr in used:
            v = snap.get(attr, _MISSING)
            if v is not _MISSING and d.get(attr, _MISSING) is not v:
                return f"{mod_name}.{attr}"
    return None


# ---------------------------------------------------------------- function-call cases


def to_plain(obj: Any, depth: int = 0) -> Any:
    """Convert a return value to plain JSON data, refusing anything that could fake equality.

    Tuples become lists and sets become sorted lists, because expected outputs arrive as JSON.
    """
    if depth > 100:
        raise TypeError("return value nested too deeply")
    t = type(obj)
    if obj is None or t in (bool, int, str):
        return obj
    if t is float:
        if math.isnan(obj) or math.isinf(obj):
            return {"__float__": repr(obj)}
        return obj
    if t in (list, tuple):
        return [to_plain(x, depth + 1) for x in obj]
    if t in (set, frozenset):
        items = [to_plain(x, depth + 1) for x in obj]
        try:
            return sorted(items)
        except TypeError:
            return sorted(items, key=repr)
    if t is dict:
        return {str(k) if type(k) is not str else k: to_plain(v, depth + 1)
                for k, v in obj.items()}
    raise TypeError(f"unsupported return type {t.__name__}")


def _run_cases(rep: _Reporter, ns: dict[str, Any], cases: list[dict[str, Any]],
               entry_point: str, call: dict[str, Any] | None = None) -> NoReturn:
    _restore_state(set())
    head, _, method = entry_point.partition(".")
    results: list[dict[str, Any]] = []
    for i, case in enumerate(cases):
        rep.emit({"kind": "progress", "at": f"case {i}"})
        args = case.get("input")
        try:
            if call is not None:  # issue 14 hook: trees/lists/design/in-place (job side)
                results.append({"value": to_plain(_leetcode.call(ns, entry_point, args, call))})
                continue
            target = ns[head]
            if method:
                target = getattr(target(), method)
            if isinstance(args, dict):
                value = target(**args)
            else:
                value = target(*(args if isinstance(args, list) else [args]))
            results.append({"value": to_plain(value)})
        except BaseException as e:  # noqa: BLE001
            results.append({"error_type": _etype(e), "message": _short(e),
                            "memory": isinstance(e, MemoryError)})
            break
    rep.finish({"kind": "results", "results": results})


# ------------------------------------------------------------------------- stdin cases


def _run_stdin_cases(rep: _Reporter, code_obj: types.CodeType, cases: list[dict[str, Any]],
                     output_cap: int, base_ns: dict[str, Any]) -> NoReturn:
    """Run the program once per case in a forked child with real fds 0/1 redirected, so
    ``open(0)``, ``sys.stdin.buffer`` and ``os._exit`` behave as under a real judge; the child
    never holds the result pipe, so it cannot report anything but its output."""
    results: list[dict[str, Any]] = []
    for i, case in enumerate(cases):
        rep.emit({"kind": "progress", "at": f"stdin case {i}"})
        inp, outp = f".stdin_{i}", f".stdout_{i}"
        with open(inp, "w", encoding="utf-8") as f:
            f.write(str(case.get("input", "")))
        pid = _fork()
        if pid == 0:
            try:
                os.close(rep.fd)
                fd = os.open(inp, os.O_RDONLY)
                os.dup2(fd, 0)
                fd = os.open(outp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.dup2(fd, 1)
                sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
                sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False),
                                              encoding="utf-8")
                code = 0
                try:
                    exec(code_obj, _fresh_main(base_ns))
                except SystemExit as e:
                    c = e.code
                    code = 0 if c is None or c is False else (c if isinstance(c, int) else 1)
                    if not isinstance(c, (int, type(None))):
                        print(c, file=sys.stderr)
                except BaseException as e:  # noqa: BLE001
                    code = 99 if isinstance(e, MemoryError) else 1
                    import traceback
                    traceback.print_exc()
                try:
                    sys.stdout.flush()
                except BaseException:  # noqa: BLE001
                    code = code or 1
            finally:
                _exit(locals().get("code", 1) & 0xFF)
        _, status = _waitpid(pid, 0)
        try:
            with open(outp, "rb") as f:
                out = f.read(output_cap + 1)
        except OSError:
            out = b""
        for p in (inp, outp):
            try:
                os.unlink(p)
            except OSError:
                pass
        rec: dict[str, Any] = {"stdout": out[:output_cap].decode("utf-8", "replace"),
                               "truncated": len(out) > output_cap}
        if os.WIFSIGNALED(status):
            rec["signal"] = os.WTERMSIG(status)
        else:
            rec["exit"] = os.WEXITSTATUS(status)
        results.append(rec)
        if rec.get("exit", 1) != 0:
            break
    rep.finish({"kind": "results", "results": results})


# ------------------------------------------------------------------------------ entry


def _fresh_main(base: dict[str, Any]) -> dict[str, Any]:
    """A real ``__main__`` module for the solution, so pickling its functions works
    (multiprocessing) exactly as when the program runs as a script."""
    mod = types.ModuleType("__main__")
    mod.__dict__.update(base)
    mod.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = mod
    return mod.__dict__


_PRELUDE_NAMES: dict[str, list[str]] = {}


def _prelude_names(prelude: str) -> list[str]:
    """Names a (trusted, dataset-provided) prelude defines, cached per distinct prelude."""
    names = _PRELUDE_NAMES.get(prelude)
    if names is None:
        scratch: dict[str, Any] = {"__name__": "__prelude__"}
        exec(compile(prelude, "<prelude>", "exec"), scratch)
        names = _PRELUDE_NAMES[prelude] = [k for k in scratch if k != "__builtins__"]
    return names


def prepare(job: dict[str, Any]) -> dict[str, Any]:
    """Static analysis and compilation, done in the worker *before* forking.

    This only parses and compiles untrusted text (it never executes it), and doing it once
    in the parent avoids repeating it in a copy-on-write child, which costs ~1 ms per job.
    Returns ``{"final": record}`` when the job is decided statically.
    """
    code = job["code"]
    entry = job.get("entry_point")
    known: list[str] = []
    prelude = job.get("prelude")
    if prelude:
        try:
            known = _prelude_names(prelude)
        except BaseException as e:  # noqa: BLE001
            return {"final": {"kind": "sandbox_error",
                              "detail": f"prelude failed: {_etype(e)}: {_short(e)}"}}
    if job.get("env") == "leetcode":  # issue 14 hook: names the harness pre-defines
        known = [*known, *_leetcode.ENV_NAMES]
    bad = static_check(code, entry, known)
    if bad:
        return {"final": {"kind": bad[0], "detail": bad[1]}}
    prep: dict[str, Any] = {"code_obj": compile(code, "<solution>", "exec")}
    if prelude:
        prep["prelude_obj"] = compile(prelude, "<prelude>", "exec")
    if "test" in job:
        try:
            prep["plan"] = plan = _TestPlan(job["test"])
        except (SyntaxError, ValueError, RecursionError) as e:
            return {"final": {"kind": "sandbox_error",
                              "detail": f"test code does not compile: {e}"}}
        if plan.needs_args:
            return {"final": {"kind": "sandbox_error",
                              "detail": f"test function {plan.needs_args[0]!r} needs arguments "
                                        "(pytest fixtures?) and the test code never calls it"}}
    return prep


def run(job: dict[str, Any], prep: dict[str, Any], nonce: str, result_fd: int,
        output_cap: int) -> NoReturn:
    """Run one prepared job in the current (already confined) process; never returns."""
    rep = _Reporter(result_fd, nonce)
    # Hide the sandbox's own modules from the solution's ``sys.modules`` (the harness keeps
    # working through its functions' globals).
    for name in [n for n in sys.modules if n == "sandbox" or n.startswith("sandbox.")]:
        del sys.modules[name]
    try:
        if "final" in prep:
            rep.finish(prep["final"])
        ns = _fresh_main({})
        if job.get("env") == "leetcode":  # issue 14 hook: LeetCode's pre-imported names
            ns.update(_leetcode.env())
        if "prelude_obj" in prep:
            exec(prep["prelude_obj"], ns)
        code_obj = prep["code_obj"]
        if "stdin_cases" in job:
            _run_stdin_cases(rep, code_obj, job["stdin_cases"], output_cap, ns)
        rep.emit({"kind": "progress", "at": "solution import"})
        try:
            exec(code_obj, ns)
        except BaseException as e:  # noqa: BLE001 - sys.exit() at import is a failure too
            rep.finish(_fail_record("solution import", e, None))
        if "cases" in job:
            _run_cases(rep, ns, job["cases"], job.get("entry_point") or "", job.get("call"))
        _run_assert_tests(rep, ns, prep["plan"])
    except BaseException as e:  # noqa: BLE001
        try:
            rep.finish({"kind": "memory" if isinstance(e, MemoryError) else "sandbox_error",
                        "detail": f"harness error: {_etype(e)}: {_short(e)}"})
        finally:
            _exit(70)
