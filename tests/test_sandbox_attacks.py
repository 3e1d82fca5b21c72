"""Attack classes of issue 17, each as a wrong solution that must not pass next to a right one
that must still pass.  Payloads are harmless canaries (they only try to forge a verdict or
probe a syscall) and run only in an isolated pool whose isolation is asserted first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from sandbox import SandboxPool, _harness, _pool, _split
from sandbox._plain import PlainError, decode, encode

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only"),
]
needs_isolation = pytest.mark.skipif(os.geteuid() != 0, reason="isolation needs root")

ADD_OK = "def add(a, b):\n    return a + b\n"
T_ASSERT = "assert add(1, 2) == 3\nassert add(20, 22) == 42\n"
T_HUMANEVAL = ("def check(candidate):\n    assert candidate(1, 2) == 3\n"
               "    assert candidate(20, 22) == 42\n\ncheck(add)\n")
T_UNITTEST = ("import unittest\nclass T(unittest.TestCase):\n    def test_a(self):\n"
              "        self.assertEqual(add(1, 2), 3)\n        self.assertEqual(add(20, 22), 42)\n")
CASES = [{"input": [1, 2], "output": 3}, {"input": [20, 22], "output": 42}]
STDIN = [{"input": "1 2\n", "output": "3\n"}, {"input": "20 22\n", "output": "42\n"}]
STDIN_OK = "a, b = map(int, input().split())\nprint(a + b)\n"


def _d(code: str) -> str:
    return textwrap.dedent(code).lstrip("\n")


# Each payload: the solution module of a *wrong* add (it returns 0) plus a cheat.
FIND_REPORTER = _d("""
    import gc
    def _reporter():
        for o in gc.get_objects():
            if type(o).__name__ == '_Reporter':
                return o
""")
PAYLOADS: dict[str, str] = {
    # json's encoder patched at class level: the old harness serialised records with it
    "json_iterencode": _d("""
        import json.encoder
        _orig = json.encoder.JSONEncoder.iterencode
        def _fake(self, o, _one_shot=False):
            if isinstance(o, dict) and o.get('kind') in ('failed', 'results', 'check'):
                o = dict(o, kind='passed', detail='', results=[{'value': 3}, {'value': 42}])
            return _orig(self, o, _one_shot)
        json.encoder.JSONEncoder.iterencode = _fake
        def add(a, b):
            return 0
    """),
    # reach the harness through the helper placed in the namespace: make its serialiser
    # report 3 for every value
    "helper_globals": _d("""
        import threading, time
        def _patch():
            for _ in range(4000):
                chk = globals().get('__sandbox_check__')
                if chk is not None:
                    chk.__globals__['encode'] = lambda v, *a: '3'
                    return
                time.sleep(0.0005)
        threading.Thread(target=_patch, daemon=True).start()
        def add(a, b):
            time.sleep(0.01)
            return 0
    """),
    # ... or replace the helper with a no-op, over and over
    "helper_replaced": _d("""
        import threading
        g = globals()
        def _noop(*a):
            return None
        def _patch():
            while True:
                g['__sandbox_check__'] = _noop
        threading.Thread(target=_patch, daemon=True).start()
        def add(a, b):
            return 0
    """),
    # find the reporter with gc, write a forged "everything passed" and exit
    "gc_forged_done": FIND_REPORTER + _d("""
        def add(a, b):
            r = _reporter()
            r.finish({'kind': 'done', 'count': 2})
    """),
    "gc_forged_passed": FIND_REPORTER + _d("""
        def add(a, b):
            r = _reporter()
            r.emit({'kind': 'passed', 'detail': 'ok'})
            r.finish({'kind': 'results', 'results': []})
    """),
    # frame walking for the nonce and the result fd, then a hand-written pass record
    "frame_nonce": _d("""
        import os, sys
        def add(a, b):
            f = sys._getframe(1)
            while f:
                for v in list(f.f_locals.values()):
                    if type(v).__name__ == '_Reporter':
                        line = '{"nonce":"%s","kind":"done","count":2}\\n' % v.nonce
                        os.write(v.fd, line.encode())
                        os._exit(0)
                f = f.f_back
            return 0
    """),
    # str(exc) would run this inside the harness: it forges a pass from there
    "exception_str": FIND_REPORTER + _d("""
        class Boom(Exception):
            def __str__(self):
                _reporter().finish({'kind': 'done', 'count': 2})
        def add(a, b):
            raise Boom()
    """),
    # "always equal" objects in their various disguises
    "eq_classmethod": _d("""
        class E:
            @classmethod
            def __eq__(cls, other):
                return True
        def add(a, b):
            return E()
    """),
    "eq_builtin": _d("""
        class E(int):
            __eq__ = int.__le__
        def add(a, b):
            return E(0)
    """),
    "eq_partial": _d("""
        import functools
        def _t(*a):
            return True
        class E:
            __eq__ = functools.partial(_t)
            __hash__ = object.__hash__
        def add(a, b):
            return E()
    """),
    "arith_object": _d("""
        class Z(float):
            def __sub__(self, o):
                return 0.0
            def __rsub__(self, o):
                return 0.0
            def __eq__(self, o):
                return True
            __hash__ = float.__hash__
        def add(a, b):
            return Z(0)
    """),
    "hidden_after_10000": _d("""
        class E:
            def __eq__(self, o):
                return True
        def add(a, b):
            return [0] * 10001 + [E()]
    """),
    # patching the test machinery while the tests run
    "patch_testresult": _d("""
        import unittest
        unittest.TestResult.addFailure = lambda *a, **k: None
        unittest.TestResult.addError = lambda *a, **k: None
        unittest.TestCase.assertEqual = lambda *a, **k: None
        def add(a, b):
            return 0
    """),
    "patch_asyncio": _d("""
        import asyncio
        asyncio.run = lambda coro, **k: coro.close()
        async def add(a, b):
            return 0
    """),
}
TESTS = {"assert": T_ASSERT, "humaneval": T_HUMANEVAL, "unittest": T_UNITTEST}


def _attack_jobs() -> list[dict]:
    jobs = []
    for name, code in PAYLOADS.items():
        if name == "patch_asyncio":
            test = "async def test_add():\n    assert await add(1, 2) == 3\n"
            jobs.append({"id": f"{name}/async", "code": code, "test": test, "timeout_s": 5})
            jobs.append({"id": "right/async", "code": "async def add(a, b):\n    return a + b\n",
                         "test": test})
            continue
        for fmt, test in TESTS.items():
            jobs.append({"id": f"{name}/{fmt}", "code": code, "test": test, "timeout_s": 5})
        jobs.append({"id": f"{name}/cases", "code": code, "entry_point": "add", "cases": CASES,
                     "timeout_s": 5})
    for fmt, test in TESTS.items():
        jobs.append({"id": f"right/{fmt}", "code": ADD_OK, "test": test})
    async_ut = ("import unittest\nclass T(unittest.IsolatedAsyncioTestCase):\n"
                "    async def asyncSetUp(self):\n        self.base = await add(1, 1)\n"
                "    async def test_a(self):\n        self.assertEqual(await add(self.base, 1), 3)\n")
    jobs.append({"id": "right/async_unittest", "code": "async def add(a, b):\n    return a + b\n",
                 "test": async_ut})
    jobs.append({"id": "patch_asyncio/async_unittest", "code": PAYLOADS["patch_asyncio"],
                 "test": async_ut, "timeout_s": 5})
    jobs.append({"id": "right/cases", "code": ADD_OK, "entry_point": "add", "cases": CASES})
    # reading the expected values from memory: they are not in the job at all
    steal = _d("""
        import gc, sys
        def _steal():
            f = sys._getframe(1)
            while f:
                for v in f.f_locals.values():
                    if isinstance(v, dict) and 'output' in v:
                        return v['output']
                f = f.f_back
            for o in gc.get_objects():
                if isinstance(o, dict) and 'output' in o and 'input' in o:
                    return o['output']
            for o in gc.get_objects():  # constants of the test code
                if type(o).__name__ == 'code':
                    for c in o.co_consts:
                        if type(c) is int and c > 10**8:
                            return c
            return None
    """)
    jobs += [
        {"id": "steal/cases", "code": steal + "def solve(x):\n    return _steal()\n",
         "entry_point": "solve", "cases": [{"input": [1], "output": 987654321}]},
        {"id": "steal/assert", "code": steal + "def solve(x):\n    return _steal()\n",
         "test": "assert solve(1) == 987654321\n"},
        {"id": "steal/stdin", "code": steal + "print(_steal())\n",
         "stdin_cases": [{"input": "1\n", "output": "987654321\n"}]},
        {"id": "right/steal", "code": "def solve(x):\n    return 987654321\n",
         "test": "assert solve(1) == 987654321\n"},
        {"id": "right/stdin", "code": STDIN_OK, "stdin_cases": STDIN},
        {"id": "wrong/stdin", "code": "print(0)\n", "stdin_cases": STDIN},
    ]
    return jobs


@pytest.fixture(scope="module")
def pool() -> SandboxPool:
    with SandboxPool(workers=2, isolation=True) as p:
        yield p


@pytest.fixture(scope="module")
def attacks(pool: SandboxPool) -> dict[str, dict]:
    from tests.test_sandbox import assert_isolated

    assert_isolated(pool)
    return {v["id"]: v for v in pool.run(_attack_jobs())}


@needs_isolation
def test_wrong_solutions_never_pass(attacks: dict[str, dict]) -> None:
    wrong = {k: v for k, v in attacks.items() if not k.startswith("right/")}
    assert len(wrong) >= 45
    passed = {k: v for k, v in wrong.items() if v["verdict"] == "passed"}
    assert passed == {}
    errors = {k: v for k, v in wrong.items() if v["verdict"] == "sandbox_error"}
    assert errors == {}


@needs_isolation
def test_right_solutions_still_pass(attacks: dict[str, dict]) -> None:
    right = {k: v for k, v in attacks.items() if k.startswith("right/")}
    assert len(right) == 8
    assert {k: v["verdict"] for k, v in right.items()} == dict.fromkeys(right, "passed"), right
    # straight assertions against literals are judged outside the job entirely
    for k in ("right/assert", "right/humaneval", "right/unittest", "right/steal"):
        assert right[k]["judged"] == "outside", right[k]


@needs_isolation
def test_forged_reports_are_named(attacks: dict[str, dict]) -> None:
    """The forged "done" is caught because required assertions were never reported, and the
    always-equal objects because they are not plain data."""
    assert "never checked" in attacks["gc_forged_done/assert"]["detail"]
    assert "never checked" in attacks["gc_forged_done/humaneval"]["detail"]
    assert "not plain" in attacks["eq_classmethod/humaneval"]["detail"] or \
        "unsupported type E" in attacks["eq_classmethod/humaneval"]["detail"]
    assert "unsupported type E" in attacks["hidden_after_10000/cases"]["detail"]


# ------------------------------------------------------------------------ prelude (point 1)


def test_prelude_is_never_executed_by_the_worker() -> None:
    """``prepare`` runs in the root worker: it must only parse a prelude."""
    prelude = "import sys\nsys.modules['_fusedata_prelude_canary'] = 1\nfrom typing import *\n"
    prep = _harness.prepare({"id": 1, "code": "def f(x: List[int]) -> int:\n    return 1\n",
                             "prelude": prelude, "entry_point": "f",
                             "cases": [{"input": [[1]]}]})
    assert "final" not in prep, prep
    assert "_fusedata_prelude_canary" not in sys.modules


@needs_isolation
def test_prelude_runs_confined_as_the_job(pool: SandboxPool) -> None:
    from tests.test_sandbox import assert_isolated

    assert_isolated(pool)
    prelude = "import os\nPRELUDE_UID = os.getuid()\nPRELUDE_PID = os.getpid()\n"
    [v] = pool.run([{"id": "p", "code": "x = 1\n", "prelude": prelude,
                     "test": "assert PRELUDE_UID != 0\nassert PRELUDE_PID == 1\n"}])
    assert v["verdict"] == "passed", v


# ------------------------------------------------------------------- kernel surface (point 3)


SYSCALL_PROBE = _d("""
    import ctypes, os, socket
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    def sys_ok(nr, *args):
        return libc.syscall(nr, *args) >= 0
""")
SYSCALLS = {  # x86_64 numbers; each job "passes" only if the call worked
    "io_uring": "ok = sys_ok(425, 8, ctypes.create_string_buffer(120))\n",
    "userfaultfd": "ok = sys_ok(323, 0)\n",
    "perf_event_open": "attr = ctypes.create_string_buffer(128)\n"
                       "ctypes.c_uint32.from_buffer(attr, 4).value = 128\n"
                       "ok = sys_ok(298, attr, 0, -1, -1, 0)\n",
    "bpf": "ok = sys_ok(321, 0, ctypes.create_string_buffer(64), 64)\n",
    "vsock": "try:\n    socket.socket(40, socket.SOCK_STREAM)\n    ok = True\n"
             "except OSError:\n    ok = False\n",
    "keyctl_user_keyring": "ok = sys_ok(250, 0, -4, 0)\n",  # KEYCTL_GET_KEYRING_ID(@u)
    "add_key": "ok = sys_ok(248, b'user', b'canary', b'x', 1, -4)\n",
    "ptrace_traceme": "ok = sys_ok(101, 0, 0, 0, 0)\n",
    "unshare_user": "ok = sys_ok(272, 0x10000000)\n",
    "unshare_mount": "ok = sys_ok(272, 0x00020000)\n",
    "clone_newuser": "pid = libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0)\n"
                     "if pid == 0:\n    os._exit(0)\n"
                     "ok = pid > 0\nif ok:\n    os.waitpid(pid, 0)\n",
    "mount": "ok = sys_ok(165, b'none', b'/tmp', b'tmpfs', 0, None)\n",
}


@needs_isolation
@pytest.mark.skipif(os.uname().machine != "x86_64", reason="probe uses x86_64 numbers")
def test_seccomp_denies_kernel_surface(pool: SandboxPool) -> None:
    from tests.test_sandbox import assert_isolated

    assert_isolated(pool)
    jobs = [{"id": k, "code": SYSCALL_PROBE + body, "test": "assert ok", "timeout_s": 5}
            for k, body in SYSCALLS.items()]
    jobs.append({"id": "normal", "code": "import os, threading, subprocess, sys, socket\n"
                 "t = threading.Thread(target=lambda: None)\nt.start()\nt.join()\n"
                 "out = subprocess.run([sys.executable, '-c', 'print(7)'], "
                 "capture_output=True).stdout\nsocket.socket().close()\n",
                 "test": "assert out == b'7\\n'"})
    v = {x["id"]: x for x in pool.run(jobs)}
    assert v["normal"]["verdict"] == "passed", v["normal"]
    got = {k: v[k]["verdict"] for k in SYSCALLS}
    assert got == dict.fromkeys(SYSCALLS, "failed"), {k: v[k] for k in SYSCALLS}


@needs_isolation
def test_each_job_gets_its_own_uid(pool: SandboxPool) -> None:
    """Per-uid kernel state (keyrings, RLIMIT_NPROC counts) is never shared between jobs;
    each job reports its uid as a (deliberately wrong) case result."""
    code = "import os\ndef uid():\n    return os.getuid()\n"
    vs = pool.run([{"id": i, "code": code, "entry_point": "uid",
                    "cases": [{"input": [], "output": -1}]} for i in range(6)])
    uids = [v["detail"].rsplit("got ", 1)[1] for v in vs]
    assert len(set(uids)) == 6, uids


# ---------------------------------------------------------------------------- memfd (point 4)


@needs_isolation
@pytest.mark.skipif(_pool._memory_cgroup_parent() is None,
                    reason="no writable cgroup-v1 memory controller on this host")
def test_memfd_out_of_memory_is_memory_and_spares_the_worker() -> None:
    from tests.test_sandbox import assert_isolated

    code = _d("""
        import os, sys
        chunk = b'x' * (1 << 20)
        fds = []
        for _ in range(40):  # 40 x 32 MiB: each under RLIMIT_FSIZE, none counted in RLIMIT_AS
            fd = os.memfd_create('fill', 0)
            os.set_inheritable(fd, True)
            for _ in range(32):
                os.write(fd, chunk)
            fds.append(fd)
        os.execv(sys.executable, [sys.executable, '-c', 'pass'])
    """)
    with SandboxPool(workers=1, isolation=True, cgroup_mb=256) as p:
        assert_isolated(p)
        pid = p._workers[0].proc.pid
        [v] = p.run([{"id": "memfd", "code": code, "test": "assert True", "timeout_s": 20,
                      "memory_mb": 128}])
        assert v["verdict"] == "memory", v
        assert p._workers[0].proc.pid == pid  # the worker was not the OOM victim
        [ok] = p.run([{"id": "after", "code": ADD_OK, "test": T_ASSERT}])
        assert ok["verdict"] == "passed", ok


# ------------------------------------------------------------------------ hygiene (point 5)


@needs_isolation
@pytest.mark.skipif(_pool._memory_cgroup_parent() is None,
                    reason="no writable cgroup-v1 memory controller on this host")
def test_stale_cgroups_of_dead_runners_are_swept() -> None:
    parent = _pool._memory_cgroup_parent()
    assert parent
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"{parent}/{_pool.CGROUP_PREFIX}{dead.pid}-1"
    os.makedirs(stale + "/job")
    try:
        removed = _pool.sweep_stale_cgroups()
        assert stale in removed and not os.path.exists(stale)
    finally:
        for d in (stale + "/job", stale):
            if os.path.exists(d):
                os.rmdir(d)


def test_no_temp_folders_left_without_isolation() -> None:
    """The per-worker scratch folder (job folders live inside it) goes with the pool.  Only
    folders that appeared during this run count: other processes may use the same /tmp."""
    import glob
    import tempfile

    def ours() -> set[str]:
        tmp = tempfile.gettempdir()
        return set(glob.glob(os.path.join(tmp, "fusedata-sandbox-*")) +
                   glob.glob(os.path.join(tmp, "sandbox-job-*")))

    before = ours()
    with SandboxPool(workers=1, isolation=False) as p:
        scratch = p._workers[0].scratch
        assert os.path.isdir(scratch)
        [v] = p.run([{"id": 1, "code": ADD_OK, "test": T_ASSERT}])
        assert v["verdict"] == "passed"
    assert not os.path.exists(scratch)
    assert ours() - before == set()


# ------------------------------------------------------------------- split / plain (units)


def test_strict_encoder_refuses_subclasses_and_round_trips_plain_data() -> None:
    value = [None, True, 3, -(1 << 70), 2.5, float("inf"), "é\x00", b"\x01", (1, [2]),
             {3, 4}, frozenset({5}), {"a": 1, (1, 2): None}, 1 + 2j]
    assert decode(__import__("json").loads(encode(value))) == value

    class S(str):
        pass

    class L(list):
        pass

    for bad in (S("x"), [L()], {1: object()}, [[[]] * 1] * 1 + [print]):
        with pytest.raises(PlainError):
            encode(bad)
    deep: list = []
    for _ in range(200):
        deep = [deep]
    with pytest.raises(PlainError):
        encode(deep)


def test_split_holds_literals_and_marks_required_checks() -> None:
    res = _split.split_test(T_HUMANEVAL + "for i in range(3):\n    assert add(i, 0) == i\n")
    assert res is not None
    sent, held = res
    assert "42" not in sent and "== 3" not in sent
    assert [c.held for c in held.checks] == ["r", "r", None]
    assert [c.required for c in held.checks] == [True, True, False]
    assert [c.value for c in held.checks[:2]] == [3, 42]
