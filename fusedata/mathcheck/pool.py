"""Warm process pool that runs equivalence checks with a hard per-check deadline.

Why not ``concurrent.futures.ProcessPoolExecutor``: it cannot cancel a running task, and a
check such as ``9^{9^{9^9}}`` spends its time in C big-integer code that no signal can
interrupt. Here each worker has its own socket; the parent knows which check every worker
is running and since when, and on deadline it SIGKILLs that worker, records ``timeout`` and
asks for a replacement. Workers are forked by a per-pool warm zygote process
(:mod:`fusedata.mathcheck._zygote`) that has sympy and math-verify imported, so a
replacement costs a fork (milliseconds), not a re-import, and the caller's process is never
forked (safe from threads) nor its ``__main__`` re-imported.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path

from fusedata.mathcheck.equivalence import Equivalence

__all__ = ["CheckPool", "default_workers", "serve"]

#: How long a new zygote may take to import and warm sympy + math-verify.
ZYGOTE_START_TIMEOUT_S = 120.0


def default_workers() -> int:
    """CPUs this process may run on (respects taskset/cgroup affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def serve(conn: Connection) -> None:
    """Worker loop: receive ``(task_id, gold, answer)``, reply ``(task_id, *Equivalence)``.

    ``None`` or a closed connection ends the loop. Exceptions are turned into ``error``
    verdicts inside :func:`check_equivalence`; anything escaping it ends the worker, which
    the parent reports as ``error``.
    """
    from fusedata.mathcheck.equivalence import check_equivalence

    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        tid, gold, answer = msg
        r = check_equivalence(gold, answer)
        conn.send((tid, r.verdict, r.reason, r.gold_normalized, r.pred_normalized))


@dataclass(slots=True)
class _Slot:
    pid: int
    conn: Connection
    inflight: deque[int] = field(default_factory=deque)
    busy_since: float = 0.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - pid reused by another user
        return False
    return True


class CheckPool:
    """A fixed number of warm workers running :func:`check_equivalence` under deadlines.

    Use as a context manager (or call :meth:`close`): on exit every worker is stopped and
    reaped, also after timeouts and exceptions, so no orphan processes remain.
    Not thread-safe: one :meth:`run` at a time per pool (create one pool per thread).
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        timeout_s: float = 5.0,
        mem_limit_mb: int | None = 4096,
        depth: int = 2,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        self.n_workers = max(1, workers if workers is not None else default_workers())
        self.timeout_s = float(timeout_s)
        self.depth = max(1, depth)
        self._mem_mib = int(mem_limit_mb or 0)
        self._slots: list[_Slot] = []
        self._closed = False
        #: Number of workers killed (deadline or crash) over this pool's life.
        self.kills = 0
        # The zygote warms up (imports sympy + math-verify) while the caller keeps working,
        # e.g. extracting answers; the first run() waits for it and forks the workers.
        self._zygote, self._ctrl = self._start_zygote()
        self._started = False

    def _ensure_started(self) -> None:
        """Wait for the zygote to be warm and fork the workers (first use only).

        Failure mode: ``RuntimeError`` if the zygote exits or is not ready within
        :data:`ZYGOTE_START_TIMEOUT_S` (e.g. math-verify not importable); the pool is then
        closed.
        """
        if self._started:
            return
        if self._closed:
            raise RuntimeError("CheckPool is closed")
        try:
            self._ctrl.settimeout(ZYGOTE_START_TIMEOUT_S)
            try:
                ready = self._ctrl.recv(1)
            except TimeoutError:
                ready = b""
            if ready != b"R":
                raise RuntimeError(
                    f"mathcheck zygote failed to start (exit code {self._zygote.poll()})"
                )
            self._ctrl.settimeout(None)
            for _ in range(self.n_workers):
                self._slots.append(self._spawn())
            self._started = True
        except BaseException:
            self.close()
            raise

    # ----------------------------------------------------------------- lifecycle
    @staticmethod
    def _start_zygote() -> tuple[subprocess.Popen[bytes], socket.socket]:
        """Start the zygote process; does not wait for it (see :meth:`_ensure_started`)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(
            [root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        )
        cmd = [sys.executable, "-m", "fusedata.mathcheck._zygote", str(theirs.fileno())]
        proc = subprocess.Popen(
            cmd,
            pass_fds=(theirs.fileno(),),
            env=env,
            stdin=subprocess.DEVNULL,
            # Workers never write results to stdout; keep stray prints out of the
            # caller's stdout (verify-math --jsonl streams JSON there). stderr is kept
            # so that import errors stay visible.
            stdout=subprocess.DEVNULL,
            close_fds=True,
        )
        theirs.close()
        return proc, ours

    def _spawn(self) -> _Slot:
        """Ask the zygote for one more warm worker."""
        self._ctrl.sendall(b"S" + self._mem_mib.to_bytes(4, "big"))
        msg, fds, _flags, _addr = socket.recv_fds(self._ctrl, 8, 1)
        if len(msg) != 8 or len(fds) != 1:
            raise RuntimeError("mathcheck zygote died while spawning a worker")
        return _Slot(pid=int.from_bytes(msg, "big"), conn=Connection(fds[0]))

    def _kill(self, slot: _Slot) -> None:
        try:
            os.kill(slot.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        slot.conn.close()

    @property
    def pids(self) -> list[int]:
        """PIDs of the current workers and of the zygote (for monitoring and tests)."""
        self._ensure_started()
        return [s.pid for s in self._slots] + [self._zygote.pid]

    def close(self) -> None:
        """Stop all workers and the zygote and wait until they are gone; idempotent.

        Workers get a polite stop, then SIGKILL after 1 s; the zygote exits on EOF (and is
        killed after 5 s). Workers are reaped by the zygote, so none is left as a zombie.
        """
        if self._closed:
            return
        self._closed = True
        for s in self._slots:
            try:
                s.conn.send(None)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + 1.0
        for s in self._slots:
            while _pid_alive(s.pid) and time.monotonic() < deadline:
                time.sleep(0.005)
            self._kill(s)
        for s in self._slots:
            end = time.monotonic() + 5.0
            while _pid_alive(s.pid) and time.monotonic() < end:
                time.sleep(0.005)
        self._slots = []
        self._ctrl.close()
        if not self._started:
            self._zygote.kill()  # still importing: nothing to shut down politely
        try:
            self._zygote.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._zygote.kill()
            self._zygote.wait()

    def __enter__(self) -> CheckPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- running
    def run(
        self,
        pairs: Sequence[tuple[str, str]],
        on_done: Callable[[int], None] | None = None,
    ) -> list[Equivalence]:
        """Check every ``(gold, answer)`` pair; results in input order.

        Each check gets ``timeout_s`` of wall time from the moment its worker starts it; on
        expiry the worker is killed and replaced and the verdict is ``timeout``. A worker
        that dies for another reason (segfault, OOM killer) yields ``error`` for the check
        it was running; its queued checks are re-run elsewhere. ``on_done(i)`` is called with
        the index of each pair as it finishes (in completion order).
        Failure mode: raises ``RuntimeError`` if the pool is closed.
        """
        if self._closed:
            raise RuntimeError("CheckPool is closed")
        n = len(pairs)
        if n == 0:
            return []
        self._ensure_started()
        results: list[Equivalence | None] = [None] * n
        # Gold affinity: checks sharing a gold go to the same worker, so each worker parses
        # a gold once (its cache) instead of every worker parsing every gold. An idle worker
        # steals from the back of the longest queue, so skewed golds still use all workers.
        n_slots = len(self._slots)
        queues: list[deque[int]] = [deque() for _ in range(n_slots)]
        for tid, (gold, _ans) in enumerate(pairs):
            queues[zlib.crc32(gold.encode("utf-8", "surrogatepass")) % n_slots].append(tid)

        def next_task(i: int) -> int | None:
            if queues[i]:
                return queues[i].popleft()
            victim = max(queues, key=len)
            return victim.pop() if victim else None

        remaining = n

        def finish(tid: int, eq: Equivalence) -> None:
            nonlocal remaining
            if results[tid] is None:
                results[tid] = eq
                remaining -= 1
                if on_done is not None:
                    on_done(tid)

        def fail_slot(i: int, verdict: str, reason: str) -> None:
            slot = self._slots[i]
            self._kill(slot)
            self.kills += 1
            if slot.inflight:
                tid = slot.inflight.popleft()
                finish(tid, Equivalence(verdict, reason))
                queues[i].extendleft(reversed(slot.inflight))
                slot.inflight.clear()
            self._slots[i] = self._spawn()

        while remaining:
            now = time.monotonic()
            for i, slot in enumerate(self._slots):
                while len(slot.inflight) < self.depth:
                    tid = next_task(i)
                    if tid is None:
                        break
                    gold, ans = pairs[tid]
                    if not slot.inflight:
                        slot.busy_since = now
                    try:
                        slot.conn.send((tid, gold, ans))
                    except (OSError, ValueError):
                        slot.inflight.append(tid)
                        fail_slot(i, "error", "worker pipe broken")
                        break
                    slot.inflight.append(tid)
            busy = [i for i, s in enumerate(self._slots) if s.inflight]
            if not busy:
                continue
            next_deadline = min(self._slots[i].busy_since for i in busy) + self.timeout_s
            conns = {self._slots[i].conn: i for i in busy}
            ready = wait(list(conns), timeout=max(0.0, next_deadline - time.monotonic()))
            now = time.monotonic()
            for c in ready:
                i = conns[c]
                slot = self._slots[i]
                try:
                    while slot.inflight and c.poll():
                        tid, verdict, reason, gn, pn = c.recv()
                        if slot.inflight[0] != tid:  # pragma: no cover - protocol bug
                            raise RuntimeError("mathcheck worker replied out of order")
                        slot.inflight.popleft()
                        slot.busy_since = now
                        finish(tid, Equivalence(verdict, reason, gn, pn))
                except (EOFError, OSError):
                    fail_slot(i, "error", "worker died (crash or memory limit)")
            for i, slot in enumerate(self._slots):
                if slot.inflight and now >= slot.busy_since + self.timeout_s:
                    fail_slot(i, "timeout", f"exceeded {self.timeout_s:g}s; worker killed")
        return [r for r in results if r is not None]
