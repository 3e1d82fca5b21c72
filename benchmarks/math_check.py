"""Throughput of fusedata.mathcheck vs a plain single-process math-verify loop.

Generates deterministic, OpenMathInstruct-2-like items: a problem's gold answer (plain or
LaTeX, many answer kinds) and several long chain-of-thought responses per problem ending in
``\\boxed{...}`` (equivalent forms of the gold, or wrong answers; a few truncated with no
answer). Both paths run in this process, on the same items:

* baseline: ``verify(parse("\\boxed{gold}"), parse(response))`` per item, math-verify's own
  (signal) timeouts, one process;
* fusedata: ``check_many(items)`` - extraction, dedupe, warm worker pool, hard deadlines.
  Its time includes starting the pool.

The run asserts that both paths give the same correct/not-correct verdict for every item
the baseline finished within its time limit, and that no fusedata check timed out. The last
line is ``ratio: X`` (fusedata items/s over baseline items/s).

Usage: python benchmarks/math_check.py [--problems 400] [--per-problem 6] [--workers N]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fusedata.mathcheck import check_many  # noqa: E402

STEP_TEMPLATES = [
    "## Step {k}: Set up the relationship\nLet $a_{k}$ denote the quantity after step {k}. "
    "From the statement we have $a_{k} = {u} \\cdot {v} + {w}$, which gives ${p}$.\n",
    "## Step {k}: Simplify the expression\nCombining like terms, "
    "$\\frac{{{u}x + {v}}}{{{w}}}$ becomes a linear function of $x$ with slope "
    "$\\frac{{{u}}}{{{w}}}$.\n",
    "## Step {k}: Check the constraint\nWe must also ensure that $x > {u}$; otherwise the "
    "denominator $x - {u}$ vanishes. Since ${v} > {u}$ is not needed here, we continue.\n",
    "## Step {k}: Compute the intermediate value\nSubstituting, we get "
    "${u} \\times {v} = {p}$ and then ${p} - {w} = {q}$.\n",
    "## Step {k}: Reason about the cases\nIf the number of items is even we pair them up; "
    "there are ${u}$ pairs and ${v}$ leftovers, so the count is ${u} \\cdot 2 + {v}$.\n",
]


def _gold_and_forms(rng: random.Random) -> tuple[str, list[str], list[str]]:
    """A gold answer, equivalent surface forms, and plausible wrong answers."""
    kind = rng.choice(
        [
            "int",
            "int",
            "int",
            "frac",
            "frac",
            "dec",
            "sqrt",
            "tuple",
            "interval",
            "percent",
            "mc",
            "poly",
            "pm",
            "deg",
            "set",
            "money",
        ]
    )
    if kind == "int":
        n = rng.randint(-50, 5000)
        gold = f"{n:,}" if abs(n) >= 1000 and rng.random() < 0.3 else str(n)
        return (
            gold,
            [str(n), f"{n}.0", f"{n} \\text{{ units}}"],
            [str(n + 1), str(n - 2), str(-n - 3)],
        )
    if kind == "frac":
        b = rng.choice([2, 3, 4, 5, 6, 7, 8, 9, 12, 16])
        a = rng.choice([x for x in range(1, 3 * b) if x % b])
        from math import gcd

        g = gcd(a, b)
        a, b = a // g, b // g
        forms = [f"\\frac{{{a}}}{{{b}}}", f"\\dfrac{{{a}}}{{{b}}}", f"{a}/{b}"]
        if b in (2, 4, 5, 8, 16):
            forms.append(repr(a / b))
        return (
            f"\\frac{{{a}}}{{{b}}}",
            forms,
            [f"\\frac{{{b}}}{{{a + b}}}", f"\\frac{{{a + 1}}}{{{b}}}"],
        )
    if kind == "dec":
        q = rng.choice([4, 8, 20])
        a = rng.randint(q + 1, 9 * q)
        return (
            f"{a / q}",
            [f"{a / q}", f"\\frac{{{a}}}{{{q}}}"],
            [f"{a / q + 0.5}", f"{(a + 1) / q}"],
        )
    if kind == "sqrt":
        k, m = rng.randint(2, 6), rng.choice([2, 3, 5, 6, 7])
        return (
            f"{k}\\sqrt{{{m}}}",
            [f"{k}\\sqrt{{{m}}}", f"\\sqrt{{{k * k * m}}}"],
            [f"{k}\\sqrt{{{m + 1}}}", f"{k + 1}\\sqrt{{{m}}}"],
        )
    if kind == "tuple":
        a, b = rng.randint(-9, 9), rng.randint(10, 19)
        return f"({a}, {b})", [f"({a},{b})", f"({a}, {b})"], [f"({b}, {a})", f"({a}, {b + 1})"]
    if kind == "interval":
        a, b = rng.randint(-9, 0), rng.randint(1, 9)
        return f"[{a}, {b})", [f"[{a},{b})", f"[{a}, {b})"], [f"({a}, {b}]", f"[{a}, {b}]"]
    if kind == "percent":
        p = rng.randint(1, 99)
        return f"{p}\\%", [f"{p}\\%", f"{p}"], [f"{p + 5}\\%", f"{100 - p + 1}"]
    if kind == "mc":
        c = rng.choice("ABCDE")
        other = rng.choice([x for x in "ABCDE" if x != c])
        return f"\\text{{({c})}}", [f"\\text{{({c})}}", f"({c})"], [f"\\text{{({other})}}"]
    if kind == "poly":
        r1, r2 = rng.randint(1, 6), rng.randint(1, 6)
        gold = f"x^2 + {r1 + r2}x + {r1 * r2}"
        return (
            gold,
            [gold, f"(x+{r1})(x+{r2})"],
            [f"(x+{r1})(x-{r2})", f"x^2 + {r1 * r2}x + {r1 + r2}"],
        )
    if kind == "pm":
        n = rng.randint(2, 30)
        return f"\\pm {n}", [f"\\pm {n}", f"{n}, -{n}"], [f"{n}", f"\\pm {n + 1}"]
    if kind == "deg":
        d = rng.choice([30, 45, 60, 72, 90, 120, 135])
        return f"{d}^\\circ", [f"{d}^\\circ", f"{d}"], [f"{180 - d + 1}^\\circ"]
    if kind == "set":
        xs = sorted(rng.sample(range(1, 20), 3))
        s = ", ".join(map(str, xs))
        r = ", ".join(map(str, reversed(xs)))
        return f"\\{{{s}\\}}", [f"\\{{{s}\\}}", f"\\{{{r}\\}}"], [f"\\{{{s}, 20\\}}"]
    cents = rng.randint(100, 99999)
    v = f"{cents // 100}.{cents % 100:02d}"
    return v, [v, f"\\${v}"], [f"{cents // 100 + 1}.{cents % 100:02d}"]


def _response(rng: random.Random, answer: str | None) -> str:
    steps = []
    for k in range(1, rng.randint(7, 13)):
        u, v, w = rng.randint(1000, 9000), rng.randint(1000, 9000), rng.randint(1000, 9000)
        steps.append(rng.choice(STEP_TEMPLATES).format(k=k, u=u, v=v, w=w, p=u * v, q=u * v - w))
    body = "\n".join(steps)
    if answer is None:  # truncated generation, no final answer
        return body[: len(body) * 2 // 3]
    return body + f"\nThe final answer is: $\\boxed{{{answer}}}$"


def make_items(n_problems: int, per_problem: int, seed: int = 0) -> list[tuple[str, str]]:
    """Deterministic (gold, response) items: ~55% correct, ~40% wrong, ~5% no answer."""
    rng = random.Random(seed)
    items = []
    for _ in range(n_problems):
        gold, forms, wrongs = _gold_and_forms(rng)
        for _ in range(per_problem):
            x = rng.random()
            if x < 0.55:
                ans: str | None = rng.choice(forms)
            elif x < 0.95:
                ans = rng.choice(wrongs)
            else:
                ans = None
            items.append((gold, _response(rng, ans)))
    return items


def run_baseline(items: list[tuple[str, str]], timeout_s: int) -> tuple[list[bool | None], float]:
    """Plain loop calling math-verify directly; ``None`` where it hit its time limit."""
    from math_verify import parse, verify

    out: list[bool | None] = []
    t0 = time.perf_counter()
    for gold, response in items:
        s = time.perf_counter()
        ok = verify(
            parse(f"\\boxed{{{gold}}}", parsing_timeout=timeout_s),
            parse(response, parsing_timeout=timeout_s),
            timeout_seconds=timeout_s,
        )
        out.append(None if time.perf_counter() - s >= timeout_s else bool(ok))
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=400)
    ap.add_argument("--per-problem", type=int, default=6)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--timeout", type=int, default=5)
    ap.add_argument(
        "--repeat", type=int, default=2, help="alternate both paths N times; best time counts"
    )
    args = ap.parse_args()
    logging.getLogger("math_verify").setLevel(logging.ERROR)

    items = make_items(args.problems, args.per_problem)
    n = len(items)
    assert n >= 2000, "benchmark needs at least 2,000 items"
    n_chars = sum(len(r) for _, r in items) // n
    print(
        f"items: {n}, mean response {n_chars} chars, cpus: {os.cpu_count()}, "
        f"load average: {os.getloadavg()[0]:.1f}"
    )

    t_base = t_ours = float("inf")
    base: list[bool | None] = []
    ours = []
    for rep in range(args.repeat):
        c0 = time.process_time()
        base, t = run_baseline(items, args.timeout)
        cpu = time.process_time() - c0
        t_base = min(t_base, t)
        print(f"[{rep}] baseline (math_verify loop, 1 process): {t:.2f}s wall, {cpu:.2f}s cpu")
        t0 = time.perf_counter()
        ours = check_many(items, timeout_s=float(args.timeout), workers=args.workers)
        t = time.perf_counter() - t0
        t_ours = min(t_ours, t)
        print(f"[{rep}] fusedata check_many (pool incl. startup): {t:.2f}s wall")

    counts: dict[str, int] = {}
    for v in ours:
        counts[v.verdict] = counts.get(v.verdict, 0) + 1
    print("verdicts:", dict(sorted(counts.items())))
    assert counts.get("timeout", 0) == 0, "a check exceeded its time limit"
    mismatches = [
        (i, items[i][0], ours[i].extracted, ours[i].verdict, b)
        for i, b in enumerate(base)
        if b is not None and b != (ours[i].verdict == "correct")
    ]
    for m in mismatches[:10]:
        print("MISMATCH", m)
    assert not mismatches, f"{len(mismatches)} verdicts differ from the baseline"
    finished = sum(b is not None for b in base)
    print(f"verdicts agree on all {finished} items the baseline finished")
    print(
        f"baseline: {n / t_base:.1f} items/s   fusedata: {n / t_ours:.1f} items/s (best of "
        f"{args.repeat})"
    )
    print(f"ratio: {t_base / t_ours:.2f}")


if __name__ == "__main__":
    main()
