"""Worker pool: hard deadlines on pathological input, dedupe, order, clean shutdown."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Sequence

import psutil
import pytest

from fusedata.mathcheck import CheckPool, Equivalence, check_many, check_one

# Symbolic (so exact arithmetic cannot take them) and huge: sympy tries to compute the
# number and only the pool's deadline stops it.
PATHOLOGICAL = [
    "x+9^{9^{9^9}}",
    "x+(10^{10})!",
    "x+1000000!",
    "x+10^{10^{10}}",
]


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


@pytest.mark.parametrize("expr", PATHOLOGICAL)
def test_pathological_times_out_within_limit(expr: str) -> None:
    limit = 1.0
    with CheckPool(1, timeout_s=limit) as pool:
        assert pool.pids  # wait for the warm workers: startup is not part of the limit
        t0 = time.monotonic()
        (res,) = pool.run([("3", expr)])
        elapsed = time.monotonic() - t0
        assert res.verdict == "timeout", res
        assert elapsed < limit + 1.0
        # The pool survives: the replacement worker answers normally.
        (ok,) = pool.run([("\\frac{1}{2}", "0.5")])
        assert ok.verdict == "correct"
        assert pool.kills == 1


def test_stage_finishes_with_mixed_pathological_batch() -> None:
    before = _children()
    items = [("3", f"Work...\nSo the value is $\\boxed{{{e}}}$") for e in PATHOLOGICAL]
    items += [("\\frac{1}{2}", "Hence \\boxed{0.5}"), ("2", "Hence \\boxed{3}")]
    expected = ["timeout"] * 4 + ["correct", "incorrect"]
    with CheckPool(2, timeout_s=1.0) as pool:
        assert pool.pids  # started and warm
        t0 = time.monotonic()
        res = check_many(items, pool=pool)
        elapsed = time.monotonic() - t0
    assert [r.verdict for r in res] == expected
    # 4 timeouts on 2 workers = 2 rounds of the limit; each round may take up to
    # limit + 1 s (kill, respawn). The per-item bound is checked above.
    assert elapsed < 2 * (1.0 + 1.0)
    # The same batch through check_many's own pool also finishes, and leaves nothing.
    res = check_many(items, timeout_s=1.0, workers=2)
    assert [r.verdict for r in res] == expected
    assert _children() <= before, "worker or zygote processes left behind"


def test_results_in_input_order() -> None:
    golds = [str(n) for n in range(30)]
    items = []
    expected = []
    for i, g in enumerate(golds):
        if i % 3 == 0:
            items.append((g, f"... so $\\boxed{{{g}}}$"))
            expected.append("correct")
        elif i % 3 == 1:
            items.append((g, f"... so $\\boxed{{{int(g) + 1}}}$"))
            expected.append("incorrect")
        else:
            items.append((g, "I could not solve it.\nSorry about that, it is hard."))
            expected.append("no_answer")
    res = check_many(items, timeout_s=5.0, workers=2)
    assert [r.verdict for r in res] == expected
    assert [r.extracted for r in res][:2] == ["0", "2"]


class _SpyPool(CheckPool):
    def __init__(self, *a: object, **kw: object) -> None:
        super().__init__(*a, **kw)  # type: ignore[arg-type]
        self.seen: list[int] = []

    def run(self, pairs: Sequence[tuple[str, str]], on_done=None) -> list[Equivalence]:  # type: ignore[override]
        self.seen.append(len(pairs))
        return super().run(pairs, on_done=on_done)


def test_dedupes_identical_checks_and_reports_progress() -> None:
    items = [("\\frac{1}{2}", f"Attempt {i}: the answer is $\\boxed{{0.5}}$") for i in range(40)]
    items += [("\\frac{1}{2}", "\\boxed{0.25}")] * 10 + [("7", "no answer\nhere")] * 5
    progress: list[int] = []
    with _SpyPool(2, timeout_s=5.0) as pool:
        res = check_many(items, pool=pool, progress=progress.append)
    assert pool.seen == [2]  # 55 items, 2 distinct (gold, extracted) checks
    assert sum(progress) == len(items)
    assert [r.verdict for r in res] == ["correct"] * 40 + ["incorrect"] * 10 + ["no_answer"] * 5


def test_dedupe_makes_repeated_pathological_items_cost_one_timeout() -> None:
    items = [("3", "\\boxed{x+9^{9^{9^9}}}")] * 6
    with CheckPool(2, timeout_s=1.0) as pool:
        assert pool.pids
        t0 = time.monotonic()
        res = check_many(items, pool=pool)
        elapsed = time.monotonic() - t0
        assert pool.kills == 1
    assert [r.verdict for r in res] == ["timeout"] * 6
    assert elapsed < 1.0 + 1.0


def test_safe_from_non_main_thread_and_no_orphans() -> None:
    before = _children()
    out: dict[str, object] = {}

    def work() -> None:
        out["res"] = check_many(
            [("1", "\\boxed{1}"), ("3", "\\boxed{x+9^{9^{9^9}}}"), ("x", "\\boxed{2}")],
            timeout_s=1.0,
        )

    t = threading.Thread(target=work)
    t.start()
    t.join(timeout=30)
    assert not t.is_alive()
    res = out["res"]
    assert [r.verdict for r in res] == ["correct", "timeout", "incorrect"]  # type: ignore[attr-defined]
    assert _children() <= before


def test_close_reaps_all_processes() -> None:
    pool = CheckPool(2, timeout_s=1.0)
    pool.run([("3", "x+9^{9^{9^9}}"), ("1", "1")])
    pids = pool.pids
    assert all(psutil.pid_exists(p) for p in pids)
    pool.close()
    pool.close()  # idempotent
    time.sleep(0.05)
    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert alive == []
    with pytest.raises(RuntimeError):
        pool.run([("1", "1")])


def test_worker_crash_is_reported_as_error_and_batch_continues() -> None:
    with CheckPool(1, timeout_s=10.0) as pool:
        victim = pool.pids[0]
        threading.Timer(0.5, os.kill, args=(victim, signal.SIGKILL)).start()
        res = pool.run([("3", "x+9^{9^{9^9}}"), ("2", "2"), ("2", "3")])
    assert res[0].verdict == "error" and "died" in res[0].reason
    assert [r.verdict for r in res[1:]] == ["correct", "incorrect"]


def test_check_one_and_argument_validation() -> None:
    v = check_one("(1, 2)", "The point is $\\boxed{(1,2)}$.")
    assert (v.verdict, v.rule, v.extracted) == ("correct", "boxed", "(1,2)")
    with pytest.raises(ValueError):
        check_many([("1", "1")], timeout_s=0)
    assert check_many([]) == []


@pytest.mark.parametrize(
    ("gold", "answer", "expected"),
    [
        # Pure numbers are decided by exact arithmetic without computing the huge value:
        # its size bound proves it differs from 3 ...
        ("3", "10^{10^{10}}", "incorrect"),
        ("3", "(10^{10})!", "incorrect"),
        ("3", "1000000!", "incorrect"),
        ("3", "9^{9^{9^9}}", "incorrect"),  # a tower over a huge exponent
        ("3", "10^{10^{10^{10}}}+1", "incorrect"),  # huge plus small is still huge
        # ... or, when no bound is available, the verdict is unusable, never "incorrect".
        ("3", "10^{-10^{10}}", "too_complex"),
        ("10^{10^{10^{10}}}+1", "10^{10^{10^{9}}}+1", "too_complex"),
        # ... and equal huge summands cancel, leaving an exact comparison.
        ("10^{10^{10^{10}}}+1", "10^{10^{10^{10}}}+2", "incorrect"),
        ("2^{65536}", "2^{2^{2^{2^2}}}", "correct"),
    ],
)
def test_huge_numbers_decided_without_a_kill(gold: str, answer: str, expected: str) -> None:
    with CheckPool(1, timeout_s=2.0) as pool:
        assert pool.pids
        t0 = time.monotonic()
        (res,) = pool.run([(gold, answer)])
        assert time.monotonic() - t0 < 1.0
        assert res.verdict == expected, res
        assert pool.kills == 0
