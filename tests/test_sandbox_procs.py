"""sandbox._procs: pidfd process handles and the warm fork server shared with mathcheck."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from multiprocessing.connection import Connection

import psutil
import pytest

from sandbox._procs import ForkServer, Proc, stop_all

pytestmark = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs pidfds (Linux)")


def echo(conn: Connection) -> None:
    """Worker body for the fork-server tests: echo until ``None``."""
    while True:
        msg = conn.recv()
        if msg is None:
            return
        conn.send(("echo", msg, os.getpid()))


def _gone(pid: int, timeout: float = 5.0) -> bool:
    """True once ``pid`` is neither running nor an unreaped zombie."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                time.sleep(0.01)
                continue
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.01)
    return False


def test_pidfd_of_a_reaped_process_signals_nothing() -> None:
    """After the process is reaped its pid may belong to anyone; its pidfd still names the
    dead process, so a kill is refused by the kernel (ESRCH) instead of hitting the pid."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    proc = Proc.open(p.pid)
    p.wait()
    assert proc.exited(1.0)
    with pytest.raises(ProcessLookupError):
        signal.pidfd_send_signal(proc.fd, 0)
    proc.kill()  # a no-op, not an error
    proc.close()
    proc.close()  # idempotent
    proc.kill()  # closed: still a no-op


def test_kill_reaches_the_process_and_exited_waits() -> None:
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    proc = Proc.open(p.pid)
    try:
        assert not proc.exited(0.05)
        proc.kill()
        assert proc.exited(5.0)
        assert p.wait(timeout=5) == -signal.SIGKILL
    finally:
        proc.close()
        if p.poll() is None:
            p.kill()
            p.wait()


def test_fork_server_workers_are_warm_killable_and_reaped() -> None:
    srv = ForkServer("tests.test_sandbox_procs", "tests.test_sandbox_procs:echo")
    workers: list[tuple[Proc, Connection]] = []
    try:
        srv.wait_ready(60.0)
        workers = [srv.spawn(256) for _ in range(2)]
        for i, (proc, conn) in enumerate(workers):
            conn.send(i)
            assert conn.recv() == ("echo", i, proc.pid)
            # a forked child of the server, not of this process, with the memory limit set
            assert psutil.Process(proc.pid).ppid() == srv.pid
            assert psutil.Process(proc.pid).rlimit(psutil.RLIMIT_AS)[0] == 256 << 20
        victim, vconn = workers[0]
        victim.kill()
        assert victim.exited(5.0)
        with pytest.raises((EOFError, OSError)):
            vconn.recv()
        assert _gone(victim.pid)  # the server reaped it: no zombie left behind
        proc, conn = workers[1]
        conn.send("still here")
        assert conn.recv()[1] == "still here"
    finally:
        pids = [p.pid for p, _c in workers]
        stop_all(workers)
        srv.close()
    assert all(_gone(pid) for pid in [*pids, srv.pid])


def test_fork_server_that_cannot_start_fails_loudly() -> None:
    srv = ForkServer("no_such_module_for_sure", "tests.test_sandbox_procs:echo")
    try:
        with pytest.raises(RuntimeError, match="failed to start"):
            srv.wait_ready(60.0)
    finally:
        srv.close()
    assert _gone(srv.pid)
