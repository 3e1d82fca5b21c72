"""Throughput of the sandbox vs. one plain ``python -c`` subprocess per job (no isolation).

Both sides run the same mix of small jobs (passing, subtly failing, crashing and a few
timeouts) with the same concurrency (one slot per usable CPU), must agree on every pass/fail/
timeout outcome, and the script ends with ``ratio: X`` (sandbox execs/s over baseline).

Where the time goes is printed too: CPU per job of the runner, of the workers together with
their jobs (read from ``/proc``) and of the baseline's interpreters (``RUSAGE_CHILDREN``),
and the ceiling the timeout jobs put on the ratio: each of them burns its full 0.5 s of CPU
on *both* sides, so even a sandbox that cost nothing could not exceed
``baseline time / time of the timeout jobs`` on this mix.

    PYTHONPATH=. python benchmarks/sandbox_throughput.py [--jobs 1000] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from sandbox import SandboxPool

TIMEOUT_S = 0.5  # for the endless-loop jobs
NORMAL_TIMEOUT_S = 10.0  # for the rest: generous, so a loaded machine cannot flip outcomes


def make_jobs(n: int) -> list[dict]:
    """Deterministic mix: ~55% pass, ~25% wrong answer, ~19% exceptions, ~1% timeouts."""
    jobs = []
    for i in range(n):
        k = i % 100
        timeout = NORMAL_TIMEOUT_S
        if k == 99:
            timeout = TIMEOUT_S
            code, test = "def f(x):\n    while True:\n        pass\n", "assert f(1) == 1\n"
        elif k < 55:
            code = f"def f(x):\n    return sorted(x)[::-1][:{k % 5 + 1}]\n"
            test = f"assert f([3, 1, 2, {k}]) == sorted([3, 1, 2, {k}], reverse=True)[:{k % 5 + 1}]\n"
        elif k < 80:
            code = "def f(x):\n    return sum(x) + (len(x) > 3)\n"
            test = f"assert f([1, 2]) == 3\nassert f([1, 2, 3, {k}]) == {6 + k}\n"
        else:
            code = "def f(x):\n    return x[10]\n"
            test = f"assert f(list(range({k % 15}))) == 10\n"
        jobs.append({"id": i, "code": code, "test": test, "timeout_s": timeout})
    return jobs


def baseline_one(job: dict) -> str:
    """One fresh interpreter per job, no isolation: the obvious way to run tests."""
    try:
        r = subprocess.run([sys.executable, "-c", job["code"] + "\n" + job["test"]],
                           capture_output=True, timeout=job["timeout_s"],
                           env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    except subprocess.TimeoutExpired:
        return "timeout"
    return "passed" if r.returncode == 0 else "failed"


def _proc_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` plus its reaped children (the jobs a worker forked)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def outcome(verdict: str) -> str:
    return verdict if verdict in ("passed", "timeout") else "failed"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--no-isolation", action="store_true")
    args = ap.parse_args()
    jobs = make_jobs(args.jobs)

    with SandboxPool(workers=args.workers, isolation=not args.no_isolation) as pool:
        pool.run(jobs[: args.workers * 2])  # warm-up: not timed, like the OS page cache below
        pids = [w.proc.pid for w in pool._workers]  # type: ignore[union-attr]
        w0, r0 = sum(map(_proc_cpu, pids)), time.process_time()
        t0 = time.perf_counter()
        sandbox_out = [outcome(v["verdict"]) for v in pool.run(jobs)]
        t_sandbox = time.perf_counter() - t0
        cpu_runner = time.process_time() - r0
        cpu_workers = sum(map(_proc_cpu, pids)) - w0

    baseline_one(jobs[0])
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.workers) as ex:
        baseline_out = list(ex.map(baseline_one, jobs))
    t_base = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_base = c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime

    mismatches = [(j["id"], s, b) for j, s, b in zip(jobs, sandbox_out, baseline_out,
                                                    strict=True) if s != b]
    assert not mismatches, f"sandbox and baseline disagree: {mismatches[:10]}"
    counts = {k: sandbox_out.count(k) for k in ("passed", "failed", "timeout")}
    s_rate, b_rate = len(jobs) / t_sandbox, len(jobs) / t_base
    iso = "off" if args.no_isolation else "on"
    print(f"jobs: {len(jobs)} {counts}, workers: {args.workers}, isolation: {iso}")
    print(f"sandbox:  {s_rate:8.1f} execs/s ({t_sandbox:.2f} s)")
    print(f"baseline: {b_rate:8.1f} execs/s ({t_base:.2f} s)  [subprocess.run(sys.executable -c)]")
    n_to = counts["timeout"]
    quick = len(jobs) - n_to
    spent = n_to * TIMEOUT_S  # CPU the timeout jobs burn, on either side
    print(f"cpu/job:  sandbox {1e3 * (cpu_runner + cpu_workers) / len(jobs):.2f} ms (runner "
          f"{1e3 * cpu_runner / len(jobs):.2f}, workers+jobs {1e3 * cpu_workers / len(jobs):.2f})"
          f", baseline {1e3 * cpu_base / len(jobs):.2f} ms")
    if quick and cpu_workers + cpu_runner > spent:
        s_q = (cpu_runner + cpu_workers - spent) / quick
        b_q = max(cpu_base - spent, 0.0) / quick
        print(f"cpu/job without the {n_to} timeout jobs: sandbox {1e3 * s_q:.2f} ms, baseline "
              f"{1e3 * b_q:.2f} ms (x{b_q / s_q:.1f})")
    if n_to:
        ceiling = t_base / (spent / args.workers)
        print(f"ceiling: {n_to} timeout jobs x {TIMEOUT_S:g} s on both sides cap the ratio of "
              f"this mix at {ceiling:.1f}, however fast the sandbox")
    print(f"ratio: {s_rate / b_rate:.2f}")


if __name__ == "__main__":
    main()
