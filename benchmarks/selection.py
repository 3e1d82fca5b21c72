"""Selection speed: ``fusedata.select.select_tables`` (polars) vs a per-prompt Python loop.

Synthetic verified responses at FuseChat-3.0 scale (default 160k prompts x 4
source models x 4-6 samples = ~3.2M responses; instruction / math / code;
some NaN scores, truncations, backend errors and unverifiable verdicts) go
through both implementations of the same rules; the outputs are asserted
equal, both times are printed, and the last line is ``ratio: X``
(baseline seconds / polars seconds).

    python benchmarks/selection.py              # full size
    python benchmarks/selection.py --prompts 20000

The loop baseline (``reference_select``) is written plainly from the rules in
``fusedata/select.py``'s docstring; it lives in ``tests/selection_oracle.py``,
where the property tests use it as their oracle.
"""

from __future__ import annotations

import sys
from pathlib import Path

# this file is named like the stdlib ``select`` module: never let its folder shadow it
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

sys.path.insert(0, str(_HERE.parent))  # the repository root: the oracle lives in tests/

import argparse  # noqa: E402
import gc  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

from fusedata.select import select_tables  # noqa: E402
from tests.selection_oracle import (  # noqa: E402
    BENCH_CFG,
    assert_same,
    make_data,
    reference_select,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=160_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t = time.perf_counter()
    resp, prompts = make_data(args.prompts, seed=args.seed)
    print(f"data: {args.prompts:,} prompts, {resp.height:,} responses "
          f"({time.perf_counter() - t:.1f}s to generate); load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machines: timings vary)",
          flush=True)

    gc.collect()
    t = time.perf_counter()
    ours = select_tables(resp, prompts, BENCH_CFG)
    t_ours = time.perf_counter() - t
    print(f"polars select_tables: {t_ours:.2f}s  "
          + ", ".join(f"{k} {v.height:,}" for k, v in ours.items()), flush=True)

    gc.collect()
    t = time.perf_counter()
    base = reference_select(resp, prompts, BENCH_CFG)
    t_base = time.perf_counter() - t
    print(f"python per-prompt loop: {t_base:.2f}s  "
          + ", ".join(f"{k} {v.height:,}" for k, v in base.items()), flush=True)

    assert_same(ours, base)
    print("outputs: identical")
    print(f"ratio: {t_base / t_ours:.1f}")


if __name__ == "__main__":
    main()
