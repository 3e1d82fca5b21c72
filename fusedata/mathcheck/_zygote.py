"""Warm "zygote" process that forks mathcheck workers on request.

Why not multiprocessing's forkserver/spawn: those re-import the caller's ``__main__`` in
every worker (slow when the caller is a big CLI, fatal for scripts without an
``if __name__ == "__main__"`` guard), and plain ``fork`` from a multi-threaded caller can
deadlock. The zygote is started with ``subprocess`` (fork+exec, thread-safe), imports and
warms sympy + math-verify once, then for every request forks a worker wired to a fresh
socketpair and hands the parent's end back over the control socket (SCM_RIGHTS) together
with the worker's pid.

Protocol on the control socket (fd given as argv[1]): parent sends ``b"S"`` plus a 4-byte
memory limit in MiB (0 = none); zygote replies with the worker pid (8 bytes, big-endian)
and one file descriptor. EOF on the control socket makes the zygote exit; workers are
SIGKILLed by the kernel when the zygote dies (``PR_SET_PDEATHSIG``), so nothing outlives
the pool even if the parent is killed.
"""

from __future__ import annotations

import os
import signal
import socket
import sys


def _set_pdeathsig() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux only)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort on non-Linux
        pass


def _worker(sock: socket.socket, mem_mib: int) -> None:
    """Worker body in the forked child: serve checks until EOF or ``None``."""
    from multiprocessing.connection import Connection

    from fusedata.mathcheck.pool import serve

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _set_pdeathsig()
    if mem_mib:
        try:
            import resource

            limit = mem_mib * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        except (ImportError, ValueError, OSError):
            pass
    conn = Connection(sock.detach())
    serve(conn)


def main() -> None:
    ctrl = socket.socket(fileno=int(sys.argv[1]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _set_pdeathsig()
    import fusedata.mathcheck._warm  # noqa: F401 - the point: import + warm once

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # kernel reaps workers: no zombies
    ctrl.sendall(b"R")  # ready
    while True:
        req = b""
        while len(req) < 5:
            chunk = ctrl.recv(5 - len(req))
            if not chunk:
                os._exit(0)
            req += chunk
        mem_mib = int.from_bytes(req[1:5], "big")
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            try:
                ctrl.close()
                theirs.close()
                _worker(mine, mem_mib)
            finally:
                os._exit(0)
        mine.close()
        socket.send_fds(ctrl, [pid.to_bytes(8, "big")], [theirs.fileno()])
        theirs.close()


if __name__ == "__main__":
    main()
