"""Warm process pool that runs equivalence checks with a hard per-check deadline.

Why not ``concurrent.futures.ProcessPoolExecutor``: it cannot cancel a running task, and a
check such as ``9^{9^{9^9}}`` spends its time in C big-integer code that no signal can
interrupt. Here each worker has its own socket; the parent knows which check every worker
is running and since when, and on deadline it SIGKILLs that worker, records ``timeout`` and
asks for a replacement. Workers come from the sandbox's warm fork server
(:class:`sandbox._procs.ForkServer`, the one warm-worker implementation of this project),
which has sympy and math-verify imported (:mod:`fusedata.mathcheck._warm`), so a
replacement costs a fork (milliseconds), not a re-import, and the caller's process is never
forked (safe from threads) nor its ``__main__`` re-imported. Workers are killed through
pidfds, so a kill can never hit an unrelated process that reused a worker's pid.
"""

from __future__ import annotations

import os
import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path

from fusedata.mathcheck.equivalence import Equivalence
from sandbox._procs import ForkServer, Proc, stop_all

__all__ = ["CheckPool", "default_workers", "serve"]

#: How long a new zygote may take to import and warm sympy + math-verify.
ZYGOTE_START_TIMEOUT_S = 120.0
_ROOT = str(Path(__file__).resolve().parents[2])


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
    proc: Proc
    conn: Connection
    inflight: deque[int] = field(default_factory=deque)
    busy_since: float = 0.0


@dataclass(slots=True)
class _Batch:
    """State of one :meth:`CheckPool.run`: per-slot queues and results so far."""

    pairs: Sequence[tuple[str, str]]
    queues: list[deque[int]]
    on_done: Callable[[int], None] | None
    results: list[Equivalence | None]
    remaining: int

    def next_task(self, i: int) -> int | None:
        """Slot ``i``'s next check: its own queue first, else steal from the longest."""
        if self.queues[i]:
            return self.queues[i].popleft()
        victim = max(self.queues, key=len)
        return victim.pop() if victim else None

    def finish(self, tid: int, eq: Equivalence) -> None:
        if self.results[tid] is None:
            self.results[tid] = eq
            self.remaining -= 1
            if self.on_done is not None:
                self.on_done(tid)


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
        self._zygote = ForkServer("fusedata.mathcheck._warm", "fusedata.mathcheck.pool:serve",
                                  path=[_ROOT])
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
            self._zygote.wait_ready(ZYGOTE_START_TIMEOUT_S)
            for _ in range(self.n_workers):
                self._slots.append(self._spawn())
            self._started = True
        except BaseException:
            self.close()
            raise

    # ----------------------------------------------------------------- lifecycle
    def _spawn(self) -> _Slot:
        """Ask the zygote for one more warm worker."""
        return _Slot(*self._zygote.spawn(self._mem_mib))

    @property
    def pids(self) -> list[int]:
        """PIDs of the current workers and of the zygote (for monitoring and tests)."""
        self._ensure_started()
        return [s.proc.pid for s in self._slots] + [self._zygote.pid]

    def close(self) -> None:
        """Stop all workers and the zygote and wait until they are gone; idempotent.

        Workers get a polite stop, then SIGKILL (by pidfd) after 1 s; the zygote exits on
        EOF (and is killed after 5 s). Workers are reaped by the zygote, so none is left as
        a zombie.
        """
        if self._closed:
            return
        self._closed = True
        stop_all([(s.proc, s.conn) for s in self._slots])
        self._slots = []
        self._zygote.close()

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
        if not pairs:
            return []
        self._ensure_started()
        batch = _Batch(pairs, self._affinity_queues(pairs), on_done, [None] * len(pairs),
                       len(pairs))
        while batch.remaining:
            self._feed(batch)
            busy = [i for i, s in enumerate(self._slots) if s.inflight]
            if busy:
                self._collect(batch, busy)
                self._expire(batch)
        return [r for r in batch.results if r is not None]

    def _affinity_queues(self, pairs: Sequence[tuple[str, str]]) -> list[deque[int]]:
        """Gold affinity: checks sharing a gold go to the same worker, so each worker parses
        a gold once (its cache) instead of every worker parsing every gold. An idle worker
        steals from the back of the longest queue, so skewed golds still use all workers."""
        queues: list[deque[int]] = [deque() for _ in self._slots]
        for tid, (gold, _ans) in enumerate(pairs):
            queues[zlib.crc32(gold.encode("utf-8", "surrogatepass")) % len(queues)].append(tid)
        return queues

    def _feed(self, batch: _Batch) -> None:
        """Keep up to ``depth`` checks in flight on every worker."""
        now = time.monotonic()
        for i, slot in enumerate(self._slots):
            while len(slot.inflight) < self.depth:
                tid = batch.next_task(i)
                if tid is None:
                    break
                gold, ans = batch.pairs[tid]
                if not slot.inflight:
                    slot.busy_since = now
                slot.inflight.append(tid)
                try:
                    slot.conn.send((tid, gold, ans))
                except (OSError, ValueError):
                    self._fail_slot(batch, i, "error", "worker pipe broken")
                    break

    def _collect(self, batch: _Batch, busy: list[int]) -> None:
        """Wait for replies until the earliest deadline of a busy worker; record them."""
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
                    batch.finish(tid, Equivalence(verdict, reason, gn, pn))
            except (EOFError, OSError):
                self._fail_slot(batch, i, "error", "worker died (crash or memory limit)")

    def _expire(self, batch: _Batch) -> None:
        """Kill and replace every worker whose current check is past its deadline."""
        now = time.monotonic()
        for i, slot in enumerate(self._slots):
            if slot.inflight and now >= slot.busy_since + self.timeout_s:
                self._fail_slot(batch, i, "timeout", f"exceeded {self.timeout_s:g}s; worker killed")

    def _fail_slot(self, batch: _Batch, i: int, verdict: str, reason: str) -> None:
        """Kill worker ``i`` (pidfd), give its current check ``verdict``, requeue the rest of
        its checks and replace it."""
        slot = self._slots[i]
        slot.proc.kill()
        slot.proc.close()
        slot.conn.close()
        self.kills += 1
        if slot.inflight:
            batch.finish(slot.inflight.popleft(), Equivalence(verdict, reason))
            batch.queues[i].extendleft(reversed(slot.inflight))
            slot.inflight.clear()
        self._slots[i] = self._spawn()
