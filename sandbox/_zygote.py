"""Fork server process behind :class:`sandbox._procs.ForkServer` (``python -m sandbox._zygote
CTRL_FD WARM_MODULE SERVE``).

Why not multiprocessing's forkserver/spawn: those re-import the caller's ``__main__`` in every
worker (slow for a big CLI, fatal for scripts without an ``if __name__ == "__main__"`` guard),
and plain ``fork`` from a multi-threaded caller can deadlock.  This process imports
``WARM_MODULE`` once (the point: every worker, also a replacement after a kill, starts warm),
then for every request forks a worker wired to a fresh socketpair running ``SERVE(conn)``.

Protocol on the control socket: the parent sends ``b"S"`` plus a 4-byte address-space limit
in MiB (0 = none); the reply is the worker pid (8 bytes, big-endian) with two file
descriptors (SCM_RIGHTS): the parent's end of the socket and a **pidfd** for the worker.
The pidfd is opened here, right after ``fork`` and before this process reaps anything, so it
refers to that worker and nothing else; the caller signals only through it.  Exited workers
are reaped here (``waitpid``), so none stays a zombie.  EOF on the control socket ends this
process; workers get SIGKILL from the kernel when it dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import importlib
import os
import select
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any


def _set_pdeathsig() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux only)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort
        pass


def _worker(sock: socket.socket, mem_mib: int, serve: Callable[[Any], None]) -> None:
    """Worker body in the forked child: limits, then ``serve(conn)`` until it returns."""
    from multiprocessing.connection import Connection

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _set_pdeathsig()
    if mem_mib:
        try:
            import resource

            limit = mem_mib * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        except (ImportError, ValueError, OSError):
            pass
    serve(Connection(sock.detach()))


def _reap() -> None:
    """Reap every exited worker without blocking."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _recv_request(ctrl: socket.socket) -> int | None:
    """Wait for one spawn request (reaping exited workers meanwhile); its memory limit, or
    None on EOF."""
    req = b""
    while len(req) < 5:
        if not select.select([ctrl], [], [], 1.0)[0]:
            _reap()
            continue
        chunk = ctrl.recv(5 - len(req))
        if not chunk:
            return None
        req += chunk
    return int.from_bytes(req[1:5], "big")


def main() -> None:
    ctrl = socket.socket(fileno=int(sys.argv[1]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _set_pdeathsig()
    importlib.import_module(sys.argv[2])  # the point: import + warm once
    mod, _, name = sys.argv[3].partition(":")
    serve = getattr(importlib.import_module(mod), name)
    ctrl.sendall(b"R")  # ready
    while True:
        mem_mib = _recv_request(ctrl)
        if mem_mib is None:
            os._exit(0)
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            try:
                ctrl.close()
                theirs.close()
                _worker(mine, mem_mib, serve)
            finally:
                os._exit(0)
        mine.close()
        pidfd = os.pidfd_open(pid)  # before any reap: certainly this worker
        try:
            socket.send_fds(ctrl, [pid.to_bytes(8, "big")], [theirs.fileno(), pidfd])
        finally:
            os.close(pidfd)
            theirs.close()
        _reap()


if __name__ == "__main__":
    main()
