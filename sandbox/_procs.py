"""Warm worker processes with hard limits: the one implementation the sandbox and
``fusedata.mathcheck`` share.

Both need the same three things: a *warm* process (expensive imports done once) that forks
cheap children, a hard wall-clock limit that no Python-level code can dodge (C big-integer
work, ``while True: pass`` in a job), and a SIGKILL that reaches exactly the process meant.

Why pidfds: a pid is only a number.  Once its process has been reaped (by us, or by another
process such as a fork server) the kernel may hand it to an unrelated process, and
``os.kill(pid, SIGKILL)`` would kill that one.  A pidfd refers to one process for its whole
life: :meth:`Proc.kill` on a process that is gone is a no-op (``ESRCH``), never a signal to a
stranger.  A pidfd is opened only while its process cannot have been reaped yet: by the
parent before it waits (``Proc.open`` right after ``fork``/``Popen``), or by a fork server
for its own unreaped child, which then passes the pidfd on (:class:`ForkServer`).

Pieces:

- :class:`Proc`: a pidfd handle (kill, wait for exit without being the parent).
- :class:`ForkServer`: the caller's handle to ``sandbox._zygote``, a warm process started
  with ``subprocess`` (fork+exec: thread-safe, never re-imports the caller's ``__main__``)
  that imports a *warm* module once and forks workers on request, each wired to a fresh
  socket and handed back as ``(Proc, Connection)``.  Used by ``fusedata.mathcheck.pool``.
- The sandbox's own workers are fresh ``-I`` interpreters with an empty environment that
  confine themselves (see ``sandbox._worker``); they, and every job process they fork, are
  killed through :class:`Proc` as well.

Linux >= 5.3 only (``pidfd_open``), like the sandbox itself.
"""

from __future__ import annotations

import math
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported lazily: sandbox workers load this module and need no more
    from multiprocessing.connection import Connection

__all__ = ["ForkServer", "Proc", "stop_all"]

_PKG_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Proc:
    """One process, held by a pidfd: signals can never reach a process that reused its pid.

    The handle owns ``fd``; :meth:`close` releases it (the process itself is not touched).
    """

    __slots__ = ("fd", "pid")

    def __init__(self, pid: int, fd: int) -> None:
        self.pid = pid
        self.fd = fd

    @classmethod
    def open(cls, pid: int) -> Proc:
        """Handle for ``pid``, which must be an unreaped child of the caller (just forked or
        started by ``Popen`` and not yet waited for): only then is ``pid`` certainly still
        the process meant."""
        return cls(pid, os.pidfd_open(pid))

    def fileno(self) -> int:
        """The pidfd: readable (``POLLIN``) once the process has exited."""
        return self.fd

    def kill(self) -> None:
        """SIGKILL the process; a no-op when it has already exited or the handle is closed."""
        if self.fd < 0:
            return
        try:
            signal.pidfd_send_signal(self.fd, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def exited(self, timeout: float = 0.0) -> bool:
        """True once the process has exited (zombie or reaped), waiting up to ``timeout`` s.

        Works for processes that are not our children (a fork server's workers)."""
        if self.fd < 0:
            return True
        poller = select.poll()  # not select.select: pidfds may be numbered above 1024
        poller.register(self.fd, select.POLLIN)
        return bool(poller.poll(max(0, math.ceil(timeout * 1000))))

    def close(self) -> None:
        """Release the pidfd (idempotent)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class ForkServer:
    """A warm fork server: ``warm`` is imported once, then each :meth:`spawn` forks a worker
    running ``serve(conn)`` (``"module:function"``) under an address-space limit.

    Start-up does not block: the server imports ``warm`` while the caller keeps working;
    :meth:`wait_ready` waits for it.  Workers die with the server (``PR_SET_PDEATHSIG``), and
    the server dies with the caller or when :meth:`close` closes its control socket, so
    nothing outlives the caller.  Not thread-safe: one user per instance.
    """

    def __init__(self, warm: str, serve: str, *, path: Sequence[str] = (),
                 env: Mapping[str, str] | None = None) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = dict(os.environ if env is None else env)
        env["PYTHONPATH"] = os.pathsep.join(
            [_PKG_PARENT, *path] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        self._popen = subprocess.Popen(
            [sys.executable, "-m", "sandbox._zygote", str(theirs.fileno()), warm, serve],
            pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL,
            # Workers never write results to stdout; keep stray prints out of the caller's
            # stdout (it may stream JSON there). stderr stays visible for import errors.
            stdout=subprocess.DEVNULL, close_fds=True)
        theirs.close()
        self.proc = Proc.open(self._popen.pid)
        self._ctrl = ours
        self.ready = False

    @property
    def pid(self) -> int:
        return self._popen.pid

    def wait_ready(self, timeout: float) -> None:
        """Block until the warm module is imported.

        Failure mode: ``RuntimeError`` when the server exits or is not ready in time."""
        if self.ready:
            return
        self._ctrl.settimeout(timeout)
        try:
            msg = self._ctrl.recv(1)
        except (TimeoutError, OSError):
            msg = b""
        if msg != b"R":
            raise RuntimeError(f"fork server failed to start (exit code {self._popen.poll()})")
        self._ctrl.settimeout(None)
        self.ready = True

    def spawn(self, mem_mib: int = 0) -> tuple[Proc, Connection]:
        """Fork one warm worker (``RLIMIT_AS`` of ``mem_mib`` MiB, 0 = none).

        Failure mode: ``RuntimeError`` when the server has died."""
        from multiprocessing.connection import Connection

        try:
            self._ctrl.sendall(b"S" + mem_mib.to_bytes(4, "big"))
            msg, fds, _flags, _addr = socket.recv_fds(self._ctrl, 8, 2)
        except OSError:
            msg, fds = b"", []
        if len(msg) != 8 or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            raise RuntimeError("fork server died while spawning a worker")
        return Proc(int.from_bytes(msg, "big"), fds[1]), Connection(fds[0])

    def close(self) -> None:
        """Stop the server (EOF on its control socket; SIGKILL after 5 s or while it is still
        importing) and reap it; idempotent."""
        if self._ctrl.fileno() >= 0:
            self._ctrl.close()
        if not self.ready:
            self.proc.kill()
        try:
            self._popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self._popen.wait()
        self.proc.close()


def stop_all(procs: Sequence[tuple[Proc, Connection]], grace_s: float = 1.0,
             kill_wait_s: float = 5.0) -> None:
    """Ask workers to stop (``None`` on their connection), SIGKILL those still running after
    ``grace_s``, wait up to ``kill_wait_s`` until all are gone, and release the handles."""
    for _proc, conn in procs:
        try:
            conn.send(None)
        except (OSError, ValueError):
            pass
    deadline = time.monotonic() + grace_s
    for proc, _conn in procs:
        proc.exited(deadline - time.monotonic())
        proc.kill()
    deadline = time.monotonic() + kill_wait_s
    for proc, conn in procs:
        proc.exited(deadline - time.monotonic())
        proc.close()
        conn.close()
