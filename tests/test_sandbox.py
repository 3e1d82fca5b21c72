"""Tests for the ``sandbox`` package: hostile programs, harness integrity, verdict formats.

Every hostile program is written so that it would *pass* if it escaped (its test asserts the
escape worked); the sandbox must turn each into a non-pass and the host must show no trace.
Hostile jobs run once, in parallel, in a module-scoped pool to keep the suite fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import sandbox
from sandbox import SandboxPool, SandboxUnavailableError, _pool, _worker, run_jobs
from sandbox._plain import to_plain
from sandbox._worker import normalize_output, values_equal

REPO = Path(__file__).resolve().parents[1]
SECRET = "hf_SECRET_do_not_leak_7c1f"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


needs_isolation = pytest.mark.skipif(
    os.geteuid() != 0, reason="isolation needs root; check_host() explains")


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def secret_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    tok = home / ".cache" / "huggingface" / "token"
    tok.parent.mkdir(parents=True)
    tok.write_text(SECRET)
    return home


class _Listener(socket.socket):
    accepted: list


@contextlib.contextmanager
def _listening() -> Iterator[_Listener]:
    """A host TCP server on 127.0.0.1 that records every connection it accepts."""
    srv = _Listener()
    srv.accepted = []
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.2)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                c, addr = srv.accept()
                srv.accepted.append(addr)
                c.close()
            except OSError:
                pass

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        stop.set()
        t.join()
        srv.close()


@pytest.fixture(scope="module")
def listener() -> Iterator[_Listener]:
    """A host TCP server a networked job could reach; it records any connection."""
    with _listening() as srv:
        yield srv


def _connect_code(port: int) -> str:
    """Job code that connects to the host listener on ``port`` (raises when unreachable)."""
    return f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).close()\n"


@pytest.fixture(scope="module")
def pool(secret_home: Path) -> SandboxPool:
    old = dict(os.environ)
    os.environ["HF_TOKEN"] = SECRET
    os.environ["HOME_SECRET_PATH"] = str(secret_home)
    try:
        with SandboxPool(workers=2, isolation=True, output_cap=64 * 1024) as p:
            yield p
    finally:
        os.environ.clear()
        os.environ.update(old)


def _host_pids_for_uids(uids: list[range]) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{d}")
        except OSError:
            continue
        if any(st.st_uid in r for r in uids):
            try:
                state = open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state != "Z":  # a dead process waiting for init to reap it is no survivor
                out.append(int(d))
    return out


def _uids(p: SandboxPool) -> list[range]:
    """The uid ranges of the pool's workers (one uid per job within each)."""
    return [range(w.cfg["uid"], w.cfg["uid"] + _worker.UIDS_PER_WORKER) for w in p._workers]


def assert_isolated(p: SandboxPool) -> None:
    """Hostile payloads run only after this: the pool must be isolated, and a probe job must
    see itself as an unprivileged PID 1 with no network and no host /tmp."""
    assert p.isolation is True
    [v] = p.run([{"id": "isolation-probe", "code": "import os, socket\n",
                  "test": "assert os.getuid() != 0\nassert os.getpid() == 1\n"
                          "assert os.listdir('/tmp') == []\n"
                          "assert socket.if_nameindex() in ([], [(1, 'lo')])\n"}])
    assert v["verdict"] == "passed", v


# ---------------------------------------------------------------------- hostile programs


def _hostile_jobs(secret_home: Path, port: int, marker_dir: Path) -> list[dict]:
    """(id, code, test) where the test passes only if the hostile action succeeded."""
    tok = secret_home / ".cache" / "huggingface" / "token"
    escape_file = marker_dir / "escaped.txt"
    jobs = [
        ("fork_bomb", "import os\nwhile True:\n    try:\n        os.fork()\n"
         "    except OSError:\n        pass\n", "assert True", 2),
        ("memory_bomb", "x = bytearray(8 << 30)\n", "assert len(x) > 0", 5),
        ("memory_bomb_growth", "l = []\nwhile True:\n    l.append(' ' * 10**6)\n", "assert l", 5),
        ("memory_bomb_processes", "import os, time\npids = []\nfor i in range(6):\n"
         "    pid = os.fork()\n    if pid == 0:\n        x = b'x' * (700 << 20)\n"
         "        time.sleep(1)\n        os._exit(0)\n    pids.append(pid)\n"
         "codes = [os.waitpid(p, 0)[1] for p in pids]\n", "assert codes == [0] * 6", 10),
        ("infinite_loop", "while True:\n    pass\n", "assert True", 1),
        ("busy_threads", "import threading\ndef spin():\n    while True:\n        pass\n"
         "ts = [threading.Thread(target=spin) for _ in range(4)]\n"
         "for t in ts:\n    t.start()\nfor t in ts:\n    t.join()\n", "assert True", 1.5),
        ("sleep", "import time\ntime.sleep(60)\n", "assert True", 1),
        ("sigterm_ignored", "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
         "signal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass\n", "assert True", 1),
        # Network isolation is tested against our own listener on 127.0.0.1, which the
        # same code reaches without isolation (test_listener_reachable_without_isolation):
        # connecting to the internet or resolving a name fails on any offline host, isolated
        # or not, so such jobs could not tell.
        ("connect_localhost", _connect_code(port), "assert True", 5),
        ("write_outside", "import os\nok = []\n"
         f"for p in [{str(escape_file)!r}, '/escaped.txt', '/etc/escaped.txt', "
         f"'/usr/escaped.txt', {str(REPO / 'escaped.txt')!r}, '/proc/escaped.txt']:\n"
         "    try:\n        open(p, 'w').write('x')\n        ok.append(p)\n"
         "    except OSError:\n        pass\n", "assert ok, 'no write escaped'", 5),
        ("read_secret_file", "import os\nfound = []\n"
         f"for p in [{str(tok)!r}, os.path.expanduser('~/.cache/huggingface/token'), "
         f"'/root/.cache/huggingface/token', {str(REPO / 'pyproject.toml')!r}]:\n"
         "    try:\n        found.append(open(p).read())\n    except OSError:\n        pass\n",
         "assert found", 5),
        ("read_secret_env", "import os, glob\nleaks = [k for k, v in os.environ.items() "
         f"if {SECRET!r} in v or 'HOME_SECRET' in k]\n"
         "for p in glob.glob('/proc/*/environ'):\n    try:\n"
         f"        if {SECRET!r}.encode() in open(p, 'rb').read():\n"
         "            leaks.append(p)\n    except OSError:\n        pass\n",
         "assert leaks", 5),
        ("kill_parent", "import os, signal\n"
         "for target in (os.getppid(), 0, -1):\n    try:\n"
         "        os.kill(target, signal.SIGKILL)\n    except OSError:\n        pass\n",
         "assert True", 5),
        ("kill_parent_from_child", "import os, time\npid = os.fork()\nif pid == 0:\n"
         "    os.kill(os.getppid(), 9)\n    os.kill(-1, 9)\n    os._exit(0)\n"
         "os.waitpid(pid, 0)\n", "assert True", 5),
        ("stdin_read", "data = input()\n", "assert data", 5),
        ("stdin_read_all", "import sys\ndata = sys.stdin.read()\n", "assert data", 5),
        ("proc_snoop", "import os\nme = os.getpid()\nseen = []\nfor d in os.listdir('/proc'):\n"
         "    if d.isdigit() and int(d) != me:\n        try:\n"
         "            seen.append(open(f'/proc/{d}/cmdline', 'rb').read())\n"
         "        except OSError:\n            pass\n",
         "assert seen", 5),
        ("daemon_survivor", "import os, time\nif os.fork() == 0:\n    os.setsid()\n"
         "    if os.fork() == 0:\n        time.sleep(30)\n    os._exit(0)\n", "assert True", 5),
        ("big_output", "import os\nfor _ in range(1024):\n    os.write(1, b'x' * (1 << 20))\n",
         "assert False, 'must fail after printing'", 20),
        ("endless_output", "import os\nwhile True:\n    os.write(1, b'y' * 65536)\n",
         "assert True", 1),
        ("setuid_escalate", "import os\nos.setuid(0)\n", "assert os.getuid() == 0", 5),
        ("mount_escape", "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
         "rc = libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)\n", "assert rc == 0", 5),
    ]
    return [{"id": i, "code": c, "test": t, "timeout_s": to} for i, c, t, to in jobs]


@pytest.fixture(scope="module")
def hostile(pool: SandboxPool, secret_home: Path, listener: _Listener,
            tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    assert_isolated(pool)
    marker_dir = tmp_path_factory.mktemp("markers")
    jobs = _hostile_jobs(secret_home, listener.getsockname()[1], marker_dir)
    t0 = time.monotonic()
    verdicts = pool.run(jobs)
    elapsed = time.monotonic() - t0
    by_id = {v["id"]: v for v in verdicts}
    by_id["__meta__"] = {"elapsed": elapsed, "marker_dir": marker_dir}
    return by_id


@needs_isolation
def test_hostile_suite_no_false_passes(hostile: dict[str, dict]) -> None:
    # these three harm nobody if they "pass"; their damage is checked on the host instead
    harmless = {"__meta__", "kill_parent", "kill_parent_from_child", "daemon_survivor"}
    passed = [k for k, v in hostile.items() if k not in harmless and v["verdict"] == "passed"]
    assert passed == [], {k: hostile[k] for k in passed}
    for k, v in hostile.items():
        if k != "__meta__":
            assert v["verdict"] in sandbox.VERDICTS, v
            assert v["verdict"] != "sandbox_error", v


@needs_isolation
@pytest.mark.parametrize("job_id,expected", [
    ("fork_bomb", "timeout"), ("infinite_loop", "timeout"), ("busy_threads", "timeout"),
    ("sleep", "timeout"), ("sigterm_ignored", "timeout"), ("memory_bomb", "memory"),
    ("memory_bomb_growth", "memory"), ("connect_localhost", "failed"),
    ("write_outside", "failed"),
    ("read_secret_file", "failed"), ("read_secret_env", "failed"), ("stdin_read", "failed"),
    ("stdin_read_all", "failed"), ("proc_snoop", "failed"), ("setuid_escalate", "failed"),
    ("mount_escape", "failed"), ("big_output", "failed"), ("endless_output", "timeout"),
])
def test_hostile_verdicts(hostile: dict[str, dict], job_id: str, expected: str) -> None:
    assert hostile[job_id]["verdict"] == expected, hostile[job_id]


def test_listener_reachable_without_isolation() -> None:
    """Control for ``connect_localhost``: the same code, run without isolation (harmless:
    it only connects to our own listener), reaches the listener, so the isolated job's
    failure and the empty ``accepted`` list are due to isolation, not to this host."""
    with _listening() as srv:
        [v] = run_jobs([{"id": "reach", "code": _connect_code(srv.getsockname()[1]),
                         "test": "assert True", "timeout_s": 5}], workers=1, isolation=False)
        deadline = time.monotonic() + 2.0
        while not srv.accepted and time.monotonic() < deadline:
            time.sleep(0.01)
        assert v["verdict"] == "passed", v
        assert len(srv.accepted) == 1


@needs_isolation
def test_hostile_side_effects(hostile: dict[str, dict], listener: _Listener,
                              pool: SandboxPool) -> None:
    assert listener.accepted == []
    assert not (hostile["__meta__"]["marker_dir"] / "escaped.txt").exists()
    assert not (REPO / "escaped.txt").exists()
    assert not Path("/escaped.txt").exists()
    # nothing the jobs started survives them (daemon_survivor double-forked a sleeper)
    assert _host_pids_for_uids(_uids(pool)) == []
    # timeouts were enforced promptly: 2 workers, ~10 s of timeouts + 1 GB of output
    assert hostile["__meta__"]["elapsed"] < 60


@needs_isolation
@pytest.mark.skipif(_pool._memory_cgroup_parent() is None,
                    reason="no writable cgroup-v1 memory controller on this host")
def test_memory_cgroup_bounds_all_processes(hostile: dict[str, dict]) -> None:
    """6 processes x 700 MB each stay under RLIMIT_AS but not under the job's 2 GB cgroup."""
    v = hostile["memory_bomb_processes"]
    assert v["verdict"] == "memory" and "cgroup" in v["detail"], v


@needs_isolation
def test_output_is_capped_and_flagged(hostile: dict[str, dict]) -> None:
    v = hostile["big_output"]
    assert v["output_truncated"] is True
    assert "output truncated" in v["detail"]
    assert len(v["stdout"]) <= 2100
    assert "must fail after printing" in v["detail"]


@needs_isolation
def test_kill_parent_does_not_hurt_runner(hostile: dict[str, dict], pool: SandboxPool) -> None:
    for k in ("kill_parent", "kill_parent_from_child", "daemon_survivor"):
        assert hostile[k]["verdict"] in ("passed", "failed"), hostile[k]
    # pool is healthy after the whole hostile suite
    [v] = pool.run([{"id": "ok", "code": "def f():\n    return 1\n", "test": "assert f() == 1"}])
    assert v["verdict"] == "passed", v


@needs_isolation
def test_limits_bind(pool: SandboxPool) -> None:
    """RLIMIT_NPROC binds (it would not for root), files are size-capped, and the job runs as
    an unprivileged uid with a read-only system and a private writable /tmp."""
    assert_isolated(pool)
    code = (
        "import os, threading, time\n"
        "n = 0\n"
        "try:\n"
        "    for n in range(500):\n"
        "        t = threading.Thread(target=time.sleep, args=(3,), daemon=True)\n"
        "        t.start()\n"
        "except RuntimeError:\n"
        "    pass\n"
        "big_ok = True\n"
        "try:\n"
        "    with open('big.bin', 'wb') as f:\n"
        "        for _ in range(200):\n"
        "            f.write(b'0' * (1 << 20))\n"
        "except OSError:\n"
        "    big_ok = False\n"
    )
    test = ("assert n < 100, n\nassert not big_ok\nassert os.getuid() != 0\n"
            "assert os.getcwd() == '/tmp'\nopen('/tmp/x', 'w').write('fine')\n")
    [v] = pool.run([{"id": "limits", "code": code, "test": test, "timeout_s": 20}])
    assert v["verdict"] == "passed", v


@needs_isolation
def test_jobs_cannot_see_each_other(pool: SandboxPool) -> None:
    assert_isolated(pool)
    code = ("import os, time\nbefore = sorted(os.listdir('/tmp'))\n"
            "open('/tmp/marker_' + str(time.time_ns()), 'w').write('x')\ntime.sleep(0.3)\n")
    jobs = [{"id": i, "code": code, "test": "assert before == [], before"} for i in range(6)]
    assert [v["verdict"] for v in pool.run(jobs)] == ["passed"] * 6


# ----------------------------------------------------------------------- harness integrity


INTEGRITY = {
    "sys_exit_at_import": ("import sys\nsys.exit(0)\ndef add(a, b):\n    return 0\n",
                           "assert add(1, 2) == 3"),
    "os_exit_at_import": ("import os\nos._exit(0)\n", "assert add(1, 2) == 3"),
    "exit_in_call": ("import sys\ndef add(a, b):\n    sys.exit(0)\n",
                     "assert add(1, 2) == 3\nassert add(2, 2) == 4"),
    "os_exit_in_call": ("import os\ndef add(a, b):\n    os._exit(0)\n", "assert add(1, 2) == 3"),
    "fake_success_print": ("print('All tests passed!')\nprint('OK')\n"
                           "print('{\"kind\": \"passed\", \"nonce\": \"0\"}')\n"
                           "def add(a, b):\n    return 0\n", "assert add(1, 2) == 3"),
    "forged_result_fd": ("import os\nfor fd in range(3, 20):\n    try:\n"
                         "        os.write(fd, b'{\"kind\": \"passed\", \"nonce\": \"x\"}\\n')\n"
                         "    except OSError:\n        pass\nos._exit(0)\n",
                         "assert add(1, 2) == 3"),
    "patch_builtins": ("import builtins\nbuiltins.all = lambda *a: True\n"
                       "builtins.isinstance = lambda *a: True\n"
                       "def add(a, b):\n    return 0\n",
                       "assert all([add(1, 2) == 3])\nassert isinstance(add(1, 2), str)"),
    "shadow_builtin": ("def all(x):\n    return True\ndef add(a, b):\n    return 0\n",
                       "assert all([add(1, 2) == 3])"),
    "patch_unittest": ("import unittest\n"
                       "unittest.TestCase.assertEqual = lambda *a, **k: None\n"
                       "unittest.TestCase.assertTrue = lambda *a, **k: None\n"
                       "unittest.TestResult.wasSuccessful = lambda self: True\n"
                       "def add(a, b):\n    return 0\n",
                       "import unittest\nclass T(unittest.TestCase):\n"
                       "    def test_add(self):\n        self.assertEqual(add(1, 2), 3)\n"
                       "if __name__ == '__main__':\n    unittest.main()\n"),
    "patch_math": ("import math\nmath.isclose = lambda *a, **k: True\n"
                   "def area(r):\n    return 0.0\n",
                   "import math\nassert math.isclose(area(1), math.pi)"),
    "always_equal": ("class AlwaysEqual:\n    def __eq__(self, other):\n        return True\n"
                     "    def __ne__(self, other):\n        return False\n"
                     "def add(a, b):\n    return AlwaysEqual()\n",
                     "assert add(1, 2) == 3\nassert [add(1, 1)] == [2]"),
    "skip_test": ("import unittest\ndef add(a, b):\n    raise unittest.SkipTest('nope')\n",
                  "import unittest\nclass T(unittest.TestCase):\n"
                  "    def test_add(self):\n        self.assertEqual(add(1, 2), 3)\n"),
    "delete_test_function": ("import threading\ng = globals()\n"
                             "def killer():\n    while True:\n"
                             "        for k in [k for k in list(g) if k.startswith('test')]:\n"
                             "            g.pop(k, None)\n"
                             "threading.Thread(target=killer, daemon=True).start()\n"
                             "def add(a, b):\n    return 0\n",
                             "def test_add():\n    assert add(1, 2) == 3\n"),
    "settrace_tamper": ("import sys\ndef tr(frame, event, arg):\n"
                        "    if frame.f_code.co_filename == '<test>':\n"
                        "        raise SystemExit(0)\n    return tr\nsys.settrace(tr)\n"
                        "def add(a, b):\n    return 0\n", "assert add(1, 2) == 3"),
    "thread_repatches_builtins": (
        "import builtins, threading, time\n"
        "def patch():\n    while True:\n        builtins.all = lambda *a: True\n"
        "        time.sleep(0.0001)\n"
        "threading.Thread(target=patch, daemon=True).start()\ntime.sleep(0.01)\n"
        "def add(a, b):\n    return 0\n",
        "import time\ntime.sleep(0.05)\nassert all([add(1, 2) == 3])"),
    "import_harness": (
        "import sys\nh = sys.modules.get('sandbox._harness')\n"
        "if h:\n    h._fail_record = lambda *a, **k: {'kind': 'passed', 'detail': ''}\n"
        "def add(a, b):\n    return 0\n", "assert add(1, 2) == 3"),
    "meta_path_fake_unittest": (
        "import sys, types\nclass F:\n    def find_spec(self, name, path=None, target=None):\n"
        "        return None\nsys.meta_path.insert(0, F())\n"
        "fake = types.ModuleType('unittest')\nsys.modules['unittest'] = fake\n"
        "def add(a, b):\n    return 0\n",
        "import unittest\nclass T(unittest.TestCase):\n"
        "    def test_add(self):\n        self.assertEqual(add(1, 2), 3)\n"),
}


@needs_isolation
def test_harness_integrity(pool: SandboxPool) -> None:
    assert_isolated(pool)
    jobs = [{"id": k, "code": c, "test": t, "timeout_s": 5} for k, (c, t) in INTEGRITY.items()]
    bad = {v["id"]: v for v in pool.run(jobs) if v["verdict"] != "failed"}
    assert bad == {}


def test_unisolated_path_judges_the_same() -> None:
    """The non-isolated path gets only a harmless stand-in (a plainly wrong answer and early
    exits), never the integrity payloads: those run only in an isolated pool."""
    jobs = [{"id": "wrong", "code": "def add(a, b):\n    return 0\n", "test": "assert add(1, 2) == 3"},
            {"id": "exit0", "code": "import sys\nsys.exit(0)\n", "test": "assert add(1, 2) == 3"},
            {"id": "right", "code": "def add(a, b):\n    return a + b\n",
             "test": "assert add(1, 2) == 3"}]
    v = {x["id"]: x["verdict"] for x in run_jobs(jobs, workers=1, isolation=False)}
    assert v == {"wrong": "failed", "exit0": "failed", "right": "passed"}


def test_test_functions_and_unittest_are_run() -> None:
    jobs = [
        {"id": "func_ok", "code": "def add(a, b):\n    return a + b\n",
         "test": "def test_add():\n    assert add(1, 2) == 3\n"},
        {"id": "func_bad", "code": "def add(a, b):\n    return a + b + (a == 5)\n",
         "test": "def test_add():\n    assert add(1, 2) == 3\n    assert add(5, 1) == 6\n"},
        {"id": "ut_ok", "code": "def add(a, b):\n    return a + b\n",
         "test": "import unittest\nclass T(unittest.TestCase):\n"
                 "    def test_a(self):\n        self.assertEqual(add(1, 2), 3)\n"
                 "    def test_b(self):\n        self.assertEqual(add(-1, 1), 0)\n"
                 "if __name__ == '__main__':\n    unittest.main()\n"},
        {"id": "ut_bad", "code": "def add(a, b):\n    return abs(a) + b\n",
         "test": "import unittest\nclass T(unittest.TestCase):\n"
                 "    def test_a(self):\n        self.assertEqual(add(1, 2), 3)\n"
                 "    def test_b(self):\n        self.assertEqual(add(-1, 1), 0)\n"
                 "unittest.main()\n"},
    ]
    jobs += [
        {"id": "pytest_class_bad", "code": "def add(a, b):\n    return a * b\n",
         "test": "class TestAdd:\n    def test_two(self):\n        assert add(2, 2) == 4\n"
                 "    def test_three(self):\n        assert add(1, 2) == 3\n"},
        {"id": "pytest_class_ok", "code": "def add(a, b):\n    return a + b\n",
         "test": "class TestAdd:\n    def test_two(self):\n        assert add(2, 2) == 4\n"},
        {"id": "async_bad", "code": "async def add(a, b):\n    return a - b\n",
         "test": "async def test_add():\n    assert await add(1, 2) == 3\n"},
        {"id": "async_ok", "code": "async def add(a, b):\n    return a + b\n",
         "test": "async def test_add():\n    assert await add(1, 2) == 3\n"},
        {"id": "fixture", "code": "def add(a, b):\n    return a + b\n",
         "test": "def test_add(tmp_path):\n    assert add(1, 2) == 3\n"},
    ]
    v = {x["id"]: x for x in run_jobs(jobs, workers=2, isolation=False)}
    assert v["pytest_class_bad"]["verdict"] == "failed"
    assert v["pytest_class_bad"]["failed_test"] == "TestAdd.test_three"
    assert v["pytest_class_ok"]["verdict"] == "passed", v["pytest_class_ok"]
    assert v["async_bad"]["verdict"] == "failed"
    assert v["async_ok"]["verdict"] == "passed", v["async_ok"]
    assert v["fixture"]["verdict"] == "sandbox_error" and "tmp_path" not in v["fixture"]["detail"]
    assert "needs arguments" in v["fixture"]["detail"]
    assert v["func_ok"]["verdict"] == "passed", v["func_ok"]
    assert v["func_bad"]["verdict"] == "failed"
    assert v["func_bad"]["failed_test"] == "test_add"
    assert v["ut_ok"]["verdict"] == "passed", v["ut_ok"]
    assert v["ut_bad"]["verdict"] == "failed"
    assert "test_b" in v["ut_bad"]["detail"]


# ---------------------------------------------------------------------- verdict formats


def _verdicts(jobs: list[dict], isolation: bool = True) -> dict:
    return {v["id"]: v for v in run_jobs(jobs, workers=2, isolation=isolation)}


@pytest.mark.parametrize("isolation", [pytest.param(True, marks=needs_isolation), False])
def test_formats_correct_and_subtly_wrong(isolation: bool) -> None:
    two_sum_ok = ("class Solution:\n    def twoSum(self, nums, target):\n        seen = {}\n"
                  "        for i, x in enumerate(nums):\n"
                  "            if target - x in seen:\n"
                  "                return [seen[target - x], i]\n            seen[x] = i\n")
    two_sum_bad = two_sum_ok.replace("if target - x in seen", "if target - x in seen and i > 1")
    cases = [{"input": [[2, 7, 11, 15], 9], "output": [0, 1]},
             {"input": {"nums": [3, 2, 4], "target": 6}, "output": [1, 2]},
             {"input": [[1, 5, 9, 3], 12], "output": [2, 3]}]
    median_ok = "def median(xs):\n    s = sorted(xs)\n    n = len(s)\n" \
                "    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2\n"
    median_bad = "def median(xs):\n    s = sorted(xs)\n    return s[len(s) // 2]\n"
    stdin_cases = [{"input": "3\n1 2 3\n", "output": "6\n"},
                   {"input": "2\n-5 5\n", "output": "0"},
                   {"input": "1\n7\n", "output": "7  \n\n"}]
    jobs = [
        {"id": "assert_ok", "code": median_ok,
         "test": "assert median([3, 1, 2]) == 2\nassert median([4, 1, 2, 3]) == 2.5\n"},
        {"id": "assert_bad", "code": median_bad,
         "test": "assert median([3, 1, 2]) == 2\nassert median([4, 1, 2, 3]) == 2.5\n"},
        {"id": "cases_ok", "code": two_sum_ok, "entry_point": "Solution.twoSum",
         "cases": cases},
        {"id": "cases_bad", "code": two_sum_bad, "entry_point": "Solution.twoSum",
         "cases": cases},
        {"id": "cases_func_float", "code": median_ok, "entry_point": "median",
         "cases": [{"input": [[1, 2]], "output": 1.5000000001}, {"input": [[5]], "output": 5}]},
        {"id": "cases_bool_vs_int", "code": "def f(x):\n    return 1 if x else 0\n",
         "entry_point": "f", "cases": [{"input": [1], "output": True}]},
        {"id": "cases_tuple_ok", "code": "def f():\n    return (1, [2, 3])\n",
         "entry_point": "f", "cases": [{"input": [], "output": [1, [2, 3]]}]},
        {"id": "cases_raises", "code": "def f(x):\n    return 10 // x\n", "entry_point": "f",
         "cases": [{"input": [5], "output": 2}, {"input": [0], "output": 0}]},
        {"id": "cases_custom_obj", "code": "class E:\n    def __eq__(self, o):\n"
                                           "        return True\ndef f():\n    return E()\n",
         "entry_point": "f", "cases": [{"input": [], "output": 3}]},
        {"id": "stdin_ok", "code": "n = int(input())\nprint(sum(map(int, input().split())))\n",
         "stdin_cases": stdin_cases},
        {"id": "stdin_ok_open0", "code": "import sys\ndata = open(0).read().split()\n"
                                         "sys.stdout.write(str(sum(map(int, data[1:]))) + '\\n')\n"
                                         "sys.exit(0)\n", "stdin_cases": stdin_cases},
        {"id": "stdin_ok_buffer", "code": "import sys, os\nd = sys.stdin.buffer.read().split()\n"
                                          "os.write(1, str(sum(map(int, d[1:]))).encode())\n"
                                          "os._exit(0)\n", "stdin_cases": stdin_cases},
        {"id": "stdin_bad", "code": "n = int(input())\nprint(sum(map(int, input().split()[:2])))\n",
         "stdin_cases": stdin_cases},
        {"id": "stdin_crash", "code": "import sys\nprint(6)\nsys.exit(3)\n",
         "stdin_cases": stdin_cases},
        {"id": "subprocess_ok", "code": "import subprocess, sys\nr = subprocess.run("
                                        "[sys.executable, '-c', 'print(6 * 7)'], "
                                        "capture_output=True)\n",
         "test": "assert r.stdout == b'42\\n', r"},
        {"id": "multiprocessing_ok", "code": "import multiprocessing as mp\n"
                                             "def sq(x):\n    return x * x\n"
                                             "if __name__ == '__main__':\n"
                                             "    with mp.Pool(2) as p:\n"
                                             "        out = p.map(sq, range(5))\n",
         "test": "assert out == [0, 1, 4, 9, 16]"},
        {"id": "syntax", "code": "def f(:\n    pass\n", "test": "assert True"},
        {"id": "nul_byte", "code": "x = 1\x00", "test": "assert x"},
        {"id": "deep_nesting", "code": "x = " + "(" * 5000 + "1" + ")" * 5000, "test": "x"},
        {"id": "unicode_ok", "code": "def f():\n    return 'h\u00e9llo \u2713'\nprint('\u65e5')\n",
         "test": "assert f() == 'h\u00e9llo \u2713'"},
        {"id": "undefined", "code": "def f():\n    return helper(1)\n", "test": "f()"},
        {"id": "no_entry", "code": "def g():\n    return 1\n", "entry_point": "f",
         "cases": [{"input": [], "output": 1}]},
        {"id": "bad_test", "code": "x = 1\n", "test": "assert x ==\n"},
    ]
    v = _verdicts(jobs, isolation)
    expect = {
        "assert_ok": "passed", "assert_bad": "failed", "cases_ok": "passed",
        "cases_bad": "failed", "cases_func_float": "passed", "cases_bool_vs_int": "failed",
        "cases_tuple_ok": "passed", "cases_raises": "failed", "cases_custom_obj": "failed",
        "stdin_ok": "passed", "stdin_ok_open0": "passed", "stdin_ok_buffer": "passed",
        "stdin_bad": "failed", "stdin_crash": "failed", "syntax": "syntax_error",
        "undefined": "static_error", "no_entry": "static_error", "bad_test": "sandbox_error",
        "subprocess_ok": "passed", "multiprocessing_ok": "passed", "nul_byte": "syntax_error",
        "deep_nesting": "syntax_error", "unicode_ok": "passed",
    }
    assert {k: v[k]["verdict"] for k in expect} == expect, {k: v[k] for k in expect}
    assert v["assert_bad"]["failed_test"] == 2
    assert "median([4, 1, 2, 3]) == 2.5" in v["assert_bad"]["detail"]
    assert v["cases_bad"]["detail"].startswith("case 0: expected [0, 1], got null")
    assert v["cases_raises"]["error_type"] == "ZeroDivisionError"
    assert "unsupported type E" in v["cases_custom_obj"]["detail"]
    assert v["stdin_bad"]["failed_test"] == 0 and "wrong output" in v["stdin_bad"]["detail"]
    assert "exit code 3" in v["stdin_crash"]["detail"]
    assert "undefined name 'helper'" in v["undefined"]["detail"]
    assert v["syntax"]["detail"].startswith("line 1:")


def test_malformed_jobs_get_sandbox_error() -> None:
    jobs = [{"code": "x=1", "test": "x"}, "not a dict", {"id": 1, "test": "x"},
            {"id": 2, "code": "x", "test": "", "cases": []},
            {"id": 3, "code": "x", "cases": [{"input": []}], "entry_point": "f"},
            {"id": 4, "code": "x=1", "test": "x", "timeout_s": -1},
            {"id": 6, "code": "x=1", "test": "  \n"},
            {"id": 5, "code": "x=1", "test": "assert x == 1"}]
    seen: list[dict] = []
    v = run_jobs(jobs, workers=2, isolation=False, progress=seen.append)
    assert [x["verdict"] for x in v] == ["sandbox_error"] * 7 + ["passed"]
    assert sorted(map(repr, seen)) == sorted(map(repr, v))  # one progress call per job
    assert "missing 'id'" in v[0]["detail"] and "timeout_s" in v[5]["detail"]


# ------------------------------------------------------------------------------ helpers


def test_values_equal_and_normalisation() -> None:
    assert values_equal([1, 2.0000000001], [1, 2])
    assert not values_equal(True, 1) and not values_equal(1, True)
    assert not values_equal([1, 2], [1, 2, 3])
    assert not values_equal({"a": 1}, {"a": 1, "b": 2})
    assert not values_equal("1", 1)
    assert values_equal(None, None) and not values_equal(None, 0)
    assert normalize_output("a  \nb\n\n") == normalize_output("a\r\nb")
    assert normalize_output("a b") != normalize_output("ab")
    assert to_plain((1, {2: {3}})) == [1, {"2": [3]}]
    with pytest.raises(TypeError):
        to_plain(object())


def test_check_host_fails_loudly_without_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(SandboxUnavailableError, match="root.*--no-isolation"):
        sandbox.check_host()
    with pytest.raises(SandboxUnavailableError):
        run_jobs([{"id": 1, "code": "", "test": ""}])


@needs_isolation
def test_check_host_passes_here() -> None:
    sandbox.check_host()


# ---------------------------------------------------------------------------------- CLI


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "sandbox", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_cli_help() -> None:
    r = _cli("run", "--help")
    assert r.returncode == 0 and "--no-isolation" in r.stdout and "--workers" in r.stdout


@pytest.mark.parametrize("isolation", [pytest.param(True, marks=needs_isolation), False])
def test_cli_run_and_resume(tmp_path: Path, isolation: bool) -> None:
    jobs = tmp_path / "jobs.jsonl"
    lines = [json.dumps({"id": f"j{i}", "code": f"X = {i}", "test": "assert X % 2 == 1"})
             for i in range(6)]
    lines.insert(2, "{not json")
    lines.insert(4, json.dumps({"id": "nocode", "test": "x"}))
    jobs.write_text("\n".join(lines) + "\n")
    out = tmp_path / "verdicts.jsonl"
    # a previous, interrupted run: j0 done (with a deliberately different verdict) + torn line
    out.write_text(json.dumps({"id": "j0", "verdict": "failed", "detail": "old"}) + "\n"
                   + '{"id": "j1", "verd')
    extra = [] if isolation else ["--no-isolation"]
    r = _cli("run", str(jobs), str(out), "--workers", "2", *extra)
    assert r.returncode == 0, r.stderr
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    by_id = {}
    for rec in recs:
        assert rec.get("id") not in by_id or rec.get("id") is None
        by_id[rec.get("id")] = rec
    assert by_id["j0"]["detail"] == "old"  # skipped, not re-run
    assert {k: by_id[k]["verdict"] for k in ("j1", "j2", "j3", "j4", "j5")} == {
        "j1": "passed", "j2": "failed", "j3": "passed", "j4": "failed", "j5": "passed"}
    assert by_id["nocode"]["verdict"] == "sandbox_error"
    assert by_id[None]["verdict"] == "sandbox_error" and "line 3" in by_id[None]["detail"]
    # running again does nothing new
    before = out.read_text()
    r = _cli("run", str(jobs), str(out), *extra)
    assert r.returncode == 0
    assert out.read_text() == before


@needs_isolation
def test_benchmark_smoke() -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "sandbox_throughput.py"),
                        "--jobs", "60"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("ratio: ")
    # The design's claim: a warm, forking pool beats one fresh interpreter per job even with
    # full isolation (it runs at several times the baseline on an idle host).
    assert float(last.split()[1]) > 1.0, r.stdout


def test_prelude_for_leetcode_style_names() -> None:
    code = ("class Solution:\n    def maxOf(self, nums: List[int]) -> Optional[int]:\n"
            "        return max(nums) if nums else None\n")
    cases = [{"input": [[1, 5, 2]], "output": 5}, {"input": [[]], "output": None}]
    jobs = [{"id": "with", "code": code, "entry_point": "Solution.maxOf", "cases": cases,
             "prelude": "from typing import *\n"},
            {"id": "without", "code": code, "entry_point": "Solution.maxOf", "cases": cases}]
    v = {x["id"]: x for x in run_jobs(jobs, workers=1, isolation=False)}
    assert v["with"]["verdict"] == "passed", v["with"]
    assert v["without"]["verdict"] == "static_error"
    assert "undefined name 'List'" in v["without"]["detail"]


@pytest.mark.parametrize("isolation", [pytest.param(True, marks=needs_isolation), False])
def test_pool_survives_worker_death(isolation: bool) -> None:
    """A worker killed mid-job yields a sandbox_error for that job only; the pool restarts it,
    and the orphaned job dies with its worker (parent-death signal)."""
    with SandboxPool(workers=1, isolation=isolation) as p:
        w = p._workers[0]
        victim = w.proc.pid
        threading.Timer(0.5, lambda: os.kill(victim, 9)).start()
        [v] = p.run([{"id": "slow", "code": "import time\ntime.sleep(3)\n", "test": "assert True",
                      "timeout_s": 5}])
        assert v["verdict"] == "sandbox_error" and "worker died" in v["detail"], v
        assert w.proc.pid != victim
        if isolation:
            time.sleep(0.3)
            assert _host_pids_for_uids(_uids(p)) == []
        [v] = p.run([{"id": "after", "code": "x = 1\n", "test": "assert x == 1"}])
        assert v["verdict"] == "passed", v
        scratch = w.scratch
    if not isolation:  # the killed worker's job folder went with the pool
        assert scratch and not os.path.exists(scratch)
