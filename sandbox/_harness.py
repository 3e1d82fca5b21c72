"""The in-sandbox test harness: runs inside the forked, already-confined job process.

Everything here executes *after* privileges were dropped, in the same process as the untrusted
solution.  Nothing here decides a verdict: a solution can reach every object of its own
process (frames, ``gc``, this module's functions), so the harness only *computes* values and
reports them, and the runner judges (see :mod:`sandbox._split`):

* ``cases``: the return value of each call, reported as strict plain data (the expected
  outputs were removed before the job reached the worker);
* ``stdin_cases``: each run's stdout and exit status (expected outputs likewise absent);
* ``test`` code: every assertion was rewritten by the runner into ``__sandbox_check__(k, ...)``
  calls that report the computed operand(s); literal operands are held by the runner.
  Statements and test functions still run here, and an exception in them is reported as a
  failure (a job can always fail itself; it cannot produce the values of held checks).

Reports go through :func:`sandbox._plain.encode`, which accepts only exact plain types, and
are written with pre-bound ``os.write``; each line carries the per-job nonce so output the
solution prints cannot be mistaken for a report.  Before the tests run, monkeypatched
pre-imported modules, import hooks and tracing hooks are restored, so test code that is not an
assertion (set-up, helpers) sees the real library.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import io
import json
import os
import sys
import threading
import types
import unittest
from typing import Any, NoReturn

from pyflakes import checker as _pyflakes_checker
from pyflakes import messages as _pyflakes_messages

from sandbox import _leetcode  # issue 14: LeetCode environment and calling conventions
from sandbox._plain import PlainError, encode, type_name
from sandbox._plain import to_plain as to_plain  # re-exported: the conversion cases use

_write = os.write
_exit = os._exit
_fork = os.fork
_waitpid = os.waitpid
_esc = json.encoder.encode_basestring_ascii
_issubclass = issubclass
_type_flags = type.__dict__["__flags__"].__get__
_HEAPTYPE = 1 << 9
_BASE_STR = BaseException.__str__
_BASE_ARGS = BaseException.__dict__["args"].__get__
_TestCase = unittest.TestCase
_AsyncTestCase = unittest.IsolatedAsyncioTestCase
_asyncio_run = asyncio.run
_BUILTINS = builtins.__dict__
_UNDEFINED = (
    _pyflakes_messages.UndefinedName,
    _pyflakes_messages.UndefinedLocal,
    _pyflakes_messages.UndefinedExport,
)
_PLAIN_ARGS = (type(None), bool, int, float, str)
_MISSING = object()

# Filled by snapshot_state() in the worker, inherited by every forked job.  Keyed by module
# name so a job restores only what its tests can reach: touching every module's objects in the
# forked child would copy-on-write most of the heap and cost milliseconds per job.
_MOD_SNAPSHOT: dict[str, tuple[types.ModuleType, dict[str, Any]]] = {}
_CLASS_SNAPSHOT: dict[str, list[tuple[type, dict[str, Any]]]] = {}
_META_PATH: list[Any] = []
_PATH_HOOKS: list[Any] = []
_ALWAYS_RESTORE = ("builtins",)

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
    """Writes nonce-stamped JSON lines to the result pipe using pre-bound primitives.

    Records are assembled from pre-encoded parts (no ``json`` module: its classes can be
    patched by the solution)."""

    def __init__(self, fd: int, nonce: str) -> None:
        self.fd = fd
        self.nonce = nonce

    def emit(self, rec: dict[str, Any], raw: dict[str, str] | None = None) -> None:
        parts = [f'"nonce":"{self.nonce}"']
        for k, v in rec.items():
            try:
                parts.append(_esc(k) + ":" + encode(v, MAX_RECORD))
            except PlainError:
                parts.append(_esc(k) + ":null")
        for k, v in (raw or {}).items():
            parts.append(_esc(k) + ":" + v)
        data = ("{" + ",".join(parts) + "}\n").encode()
        if len(data) > MAX_RECORD:
            data = (f'{{"nonce":"{self.nonce}","kind":"failed",'
                    '"detail":"results too large to report"}\n').encode()
        view = memoryview(data)
        while view:
            n = _write(self.fd, view)
            view = view[n:]

    def finish(self, rec: dict[str, Any], raw: dict[str, str] | None = None) -> NoReturn:
        """Flush user output, emit the final record and exit without running atexit hooks."""
        for stream in (sys.__stdout__, sys.__stderr__, sys.stdout, sys.stderr):
            try:
                stream.flush()  # type: ignore[union-attr]
            except BaseException:  # noqa: BLE001 - user code may have broken the streams
                pass
        try:
            self.emit(rec, raw)
        finally:
            _exit(0)


def _short(exc: BaseException, limit: int = 300) -> str:
    """The message of ``exc`` without running the solution's code: a builtin exception type
    formats itself in C; for others only plain ``args`` are shown (a ``__str__`` defined by
    the solution would otherwise run inside the harness)."""
    try:
        args = _BASE_ARGS(exc)
        if not (_type_flags(type(exc)) & _HEAPTYPE):
            msg = type(exc).__str__(exc) if all(type(a) in _PLAIN_ARGS for a in args) \
                else "<message not shown>"
        elif all(type(a) in _PLAIN_ARGS for a in args):
            msg = _BASE_STR(exc)
        else:
            msg = "<message not shown>"
    except BaseException:  # noqa: BLE001
        msg = "<unprintable>"
    return msg if len(msg) <= limit else msg[:limit] + "..."


def _etype(exc: BaseException) -> str:
    try:
        return type_name(exc)
    except BaseException:  # noqa: BLE001
        return "Exception"


def _is_memory_error(exc: BaseException) -> bool:
    return _issubclass(type(exc), MemoryError)


def _fail_record(where: str, exc: BaseException, test: Any = None) -> dict[str, Any]:
    kind = "memory" if _is_memory_error(exc) else "failed"
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
    level.  ``known`` are extra defined names (from a prelude; None: unknown, so undefined
    names are not checked).  Pyflakes (a core dependency) is used as a library: only
    undefined-name messages are errors, because unused imports and the like do not make a
    solution wrong.
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
                                         builtins=set(known or ())).messages
    except RecursionError:
        msgs = []
    star = known is None or any(isinstance(m, _pyflakes_messages.ImportStarUsed) for m in msgs)
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
        if node is None and (known is None or head in known) and not method:
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


def _make_check(rep: _Reporter) -> Any:
    """``__sandbox_check__(k, *operands)``: report the computed operand(s) of split
    assertion ``k`` as plain data.  It never judges: the runner does, holding the literal
    operands.  A non-plain operand raises :class:`PlainError` (a failure, never a pass)."""

    def check(k: int, *operands: Any) -> None:
        parts = [encode(v) for v in operands]
        rep.emit({"kind": "check", "k": k}, {"v": "[" + ",".join(parts) + "]"})

    return check


def _plain(value: Any) -> Any:
    """``__sandbox_plain__``: let a call result inside an assertion through only if it is
    plain data (checked now) or a builtin iterator (its items are checked as they are
    consumed); objects of Python-defined classes could fake arithmetic or comparisons."""
    t = type(value)
    if t in _PLAIN_TYPES:
        encode(value)
        return value
    if not (_type_flags(t) & _HEAPTYPE):
        if hasattr(t, "__next__"):
            return _checked_iter(value)
        return value  # a C type (range, Decimal...): its operations are not the solution's
    raise PlainError(f"assertion operand of type {type_name(value)} is not plain data")


def _checked_iter(it: Any) -> Any:
    for x in it:
        yield _plain(x)


_PLAIN_TYPES = frozenset((type(None), bool, int, float, complex, str, bytes, list, tuple, dict,
                          set, frozenset))


class _MainRemover(ast.NodeTransformer):
    """Drop ``unittest.main()`` calls: the harness runs TestCase classes itself."""

    def visit_Expr(self, node: ast.Expr) -> ast.AST:
        v = node.value
        if (isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute)
                and v.func.attr == "main" and isinstance(v.func.value, ast.Name)
                and v.func.value.id == "unittest"):
            return ast.copy_location(ast.Pass(), node)
        return self.generic_visit(node)


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
        _asyncio_run(res)


async def _async_case(inst: Any, meth: str) -> None:
    """An ``IsolatedAsyncioTestCase`` method with its async set-up and tear-down."""
    await inst.asyncSetUp()
    res = getattr(inst, meth)()
    if hasattr(res, "__await__"):
        await res
    await inst.asyncTearDown()


class _TestPlan:
    """Test code parsed, rewritten and compiled in the worker (before fork), so each job
    does not redo it in a copy-on-write child."""

    def __init__(self, test: str) -> None:
        tree = ast.parse(test, "<test>")
        tree = _MainRemover().visit(tree)
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
    """Run every statement, test function and test method; report failures and the check
    values (via ``__sandbox_check__``), then a ``done`` record.  The runner decides."""
    used, stmts = plan.used, plan.stmts
    called, test_funcs, test_classes = plan.called, plan.test_funcs, plan.test_classes
    _restore_state(used)
    ns["__builtins__"] = _BUILTINS
    for name in sorted(used):
        if (name in _BUILTINS and name in ns and ns[name] is not _BUILTINS[name]
                and not name.startswith("__")):
            rep.finish({"kind": "failed", "failed_test": None, "error_type": "Tampering",
                        "detail": f"solution rebinds builtin {name!r}, which the tests use",
                        "message": name})
    ns["__sandbox_check__"] = _make_check(rep)
    ns["__sandbox_plain__"] = _plain
    count = 0
    for i, (s, co) in enumerate(stmts):
        label = f"statement {i + 1}"
        rep.emit({"kind": "progress", "at": label, "test": i + 1})
        try:
            exec(co, ns)
        except BaseException as e:  # noqa: BLE001 - SystemExit from the solution is a failure
            rep.finish(_fail_record(label, e, i + 1))
        if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import,
                              ast.ImportFrom)):
            count += 1
    for name, is_async in test_funcs:
        if name in called:
            continue
        fn = ns.get(name)
        if type(fn) is not types.FunctionType:
            rep.finish({"kind": "failed", "failed_test": name, "error_type": "Tampering",
                        "detail": f"test function {name!r} is missing", "message": name})
        label = f"test function {name}"
        rep.emit({"kind": "progress", "at": label, "test": name})
        try:
            _call_test(fn, is_async)
        except BaseException as e:  # noqa: BLE001
            rep.finish(_fail_record(label, e, name))
        count += 1
    for name, methods in test_classes:
        cls = ns.get(name)
        if not isinstance(cls, type):
            rep.finish({"kind": "failed", "failed_test": name, "error_type": "Tampering",
                        "detail": f"test class {name!r} is missing", "message": name})
        is_case = _issubclass(cls, _TestCase)
        if not is_case and not name.startswith("Test"):
            continue  # neither unittest nor pytest would collect it
        count += _run_class(rep, cls, name, methods, is_case)
    tampered = _tampered(used)
    if tampered:
        rep.finish({"kind": "failed", "failed_test": None, "error_type": "Tampering",
                    "detail": f"{tampered} changed while the tests ran", "message": tampered})
    rep.finish({"kind": "done", "count": count})


def _tampered(used: set[str]) -> str | None:
    """Re-check, after the tests, what non-assertion test code relied on: a thread left
    running by the solution could have re-patched it after the restore.  (Only a guard for
    in-process parts; split assertions are judged by the runner.)"""
    for mod_name in ("builtins", *sorted(used & _MOD_SNAPSHOT.keys())):
        mod, snap = _MOD_SNAPSHOT[mod_name]
        d = mod.__dict__
        for attr in used:
            v = snap.get(attr, _MISSING)
            if v is not _MISSING and d.get(attr, _MISSING) is not v:
                return f"{mod_name}.{attr}"
    return None


def _run_class(rep: _Reporter, cls: type, name: str, methods: list[tuple[str, bool]],
               is_case: bool) -> int:
    """Run a test class's methods directly (fresh instance each, set-up and tear-down), not
    through ``unittest``'s runner and result classes, which the solution could patch; a
    skip is a failure like any other exception."""
    label = f"test class {name}"
    if is_case:
        rep.emit({"kind": "progress", "at": label, "test": name})
        try:
            cls.setUpClass()  # type: ignore[attr-defined]
        except BaseException as e:  # noqa: BLE001
            rep.finish(_fail_record(label, e, name))
    for meth, is_async in methods:
        label = f"{name}.{meth}"
        rep.emit({"kind": "progress", "at": label, "test": label})
        try:
            inst = cls(meth) if is_case else cls()
            if is_case:
                inst.setUp()
            if is_case and _issubclass(cls, _AsyncTestCase):
                _asyncio_run(_async_case(inst, meth))
            else:
                _call_test(getattr(inst, meth), is_async)
            if is_case:
                inst.tearDown()
                inst.doCleanups()
        except BaseException as e:  # noqa: BLE001
            rep.finish(_fail_record(label, e, label))
    if is_case:
        try:
            cls.tearDownClass()  # type: ignore[attr-defined]
        except BaseException as e:  # noqa: BLE001
            rep.finish(_fail_record(f"test class {name}", e, name))
    return len(methods)


# ---------------------------------------------------------------- function-call cases


def _case_value(ns: dict[str, Any], entry_point: str, args: Any,
                call: dict[str, Any] | None = None) -> Any:
    """Call the entry point for one case and return its raw value (the one job-side step of
    the ``cases`` format; the runner compares).  ``Class.method`` gets a fresh instance."""
    if call is not None:  # issue 14 hook: trees/lists/design/in-place (job side)
        return _leetcode.call(ns, entry_point, args, call)
    head, _, method = entry_point.partition(".")
    target = ns[head]
    if method:
        target = getattr(target(), method)
    if isinstance(args, dict):
        return target(**args)
    return target(*(args if isinstance(args, list) else [args]))


def _run_cases(rep: _Reporter, ns: dict[str, Any], cases: list[dict[str, Any]],
               entry_point: str, call: dict[str, Any] | None = None) -> NoReturn:
    """Report each case's value as strict plain data (expected outputs are not here)."""
    _restore_state(set())
    results: list[str] = []
    for i, case in enumerate(cases):
        rep.emit({"kind": "progress", "at": f"case {i}"})
        try:
            value = _case_value(ns, entry_point, case.get("input"), call)
            results.append(encode({"value": value}))
        except BaseException as e:  # noqa: BLE001 - PlainError: not plain data, a failure
            results.append(encode({"error_type": _etype(e), "message": _short(e),
                                   "memory": _is_memory_error(e)}))
            break
    rep.finish({"kind": "results"}, {"results": "[" + ",".join(results) + "]"})


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


def _prelude_names(prelude: str) -> list[str] | None:
    """Names a prelude defines, found statically: the prelude is dataset text, so it only
    ever *runs* inside the job (after isolation, as the job uid), never in the worker.
    ``from M import *`` contributes the public names of M when M is already imported in the
    worker; otherwise None (unknown names: the undefined-name check is skipped)."""
    tree = ast.parse(prelude, "<prelude>")
    names = list(_defined_names(tree))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            mod = sys.modules.get(node.module or "")
            if node.level or mod is None:
                return None
            public = getattr(mod, "__all__", None)
            if not isinstance(public, (list, tuple)):
                public = [k for k in vars(mod) if not k.startswith("_")]
            names.extend(str(k) for k in public)
    return names


def prepare(job: dict[str, Any]) -> dict[str, Any]:
    """Static analysis and compilation, done in the worker *before* forking.

    This only parses and compiles untrusted text (it never executes it), and doing it once
    in the parent avoids repeating it in a copy-on-write child, which costs ~1 ms per job.
    Returns ``{"final": record}`` when the job is decided statically.
    """
    code = job["code"]
    entry = job.get("entry_point")
    known: list[str] | None = []
    prelude = job.get("prelude")
    if prelude:
        try:
            known = _prelude_names(prelude)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
            return {"final": {"kind": "sandbox_error",
                              "detail": f"prelude does not compile: {_etype(e)}: {_short(e)}"}}
    if job.get("env") == "leetcode":  # issue 14 hook: names the harness pre-defines
        known = None if known is None else [*known, *_leetcode.ENV_NAMES]
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
            # dataset text: it runs here, confined and unprivileged, never in the worker
            try:
                exec(prep["prelude_obj"], ns)
            except BaseException as e:  # noqa: BLE001
                rep.finish({"kind": "sandbox_error",
                            "detail": f"prelude failed: {_etype(e)}: {_short(e)}"})
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
            rep.finish({"kind": "memory" if _is_memory_error(e) else "sandbox_error",
                        "detail": f"harness error: {_etype(e)}: {_short(e)}"})
        finally:
            _exit(70)
