"""Agreement with human labels: fusedata's math checker vs plain math-verify, per class.

Reads the labelled tables in ``tests/mathcheck_table.py``: ``RESPONSE_TABLE`` (full
model-style responses, one class per failure mode of issue 16) and, with ``--pairs``, the
bare (gold, answer) ``TABLE``. Only unambiguous rows (label ``correct`` / ``incorrect``)
count. For each class it prints how often each configuration's verdict equals the label:

* ``default``: ``check_many`` with the default extraction cascade (what the verify stage
  runs);
* ``all``: every fallback rule enabled (adds ``last_number``);
* ``math-verify``: ``verify(parse("$gold$"), parse(response))`` with math-verify's own
  5 s timeouts, "correct" iff it returns True.

Anything but ``correct`` counts as "not correct" for the comparison (a ``no_answer`` on an
``incorrect`` row agrees). The last lines are ``TOTAL`` rows. Note: these tables were
written together with the code they test, so they show coverage of the known classes, not
an unbiased accuracy; the issue's held-out set is the fair test.

Usage: python benchmarks/math_agreement.py [--batch 1|2|3|4|5|all] [--pairs] [--workers N]
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fusedata.mathcheck import ALL_FALLBACKS, CheckPool, check_many  # noqa: E402
from tests.mathcheck_table import (  # noqa: E402
    RESPONSE_TABLE,
    RESPONSE_TABLE_BATCH3,
    RESPONSE_TABLE_BATCH4,
    RESPONSE_TABLE_BATCH5,
    RESPONSE_TABLE_FRESH,
    TABLE,
)


def plain_math_verify(gold: str, response: str) -> bool:
    from math_verify import parse, verify

    try:
        return bool(
            verify(parse(f"${gold}$", parsing_timeout=5), parse(response, parsing_timeout=5),
                   timeout_seconds=5)
        )
    except Exception:  # noqa: BLE001 - math-verify's own failure counts as "not correct"
        return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", action="store_true", help="also the bare (gold, answer) table")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument(
        "--batch",
        choices=["1", "2", "3", "4", "5", "all"],
        default="all",
        help="which labelled batch: 1 (tuned on), 2-5 (written blind, measured first)",
    )
    args = ap.parse_args()
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)

    batches = {
        "1": RESPONSE_TABLE,
        "2": RESPONSE_TABLE_FRESH,
        "3": RESPONSE_TABLE_BATCH3,
        "4": RESPONSE_TABLE_BATCH4,
        "5": RESPONSE_TABLE_BATCH5,
    }
    table = [r for k, b in batches.items() if args.batch in (k, "all") for r in b]
    rows = [(c, g, r, v) for c, g, r, v, _why in table if v in ("correct", "incorrect")]
    if args.pairs:
        rows += [("bare_pairs", g, p, v) for g, p, v in TABLE]
    items = [(g, r) for _c, g, r, _v in rows]
    with CheckPool(args.workers, timeout_s=5.0) as pool:
        ours = check_many(items, pool=pool)
        ours_all = check_many(items, pool=pool, fallbacks=ALL_FALLBACKS)
    mv = [plain_math_verify(g, r) for g, r in items]

    stats: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # n, default, all, mv
    for (cls, _g, _r, label), a, b, m in zip(rows, ours, ours_all, mv, strict=True):
        want = label == "correct"
        for key in (cls, "TOTAL"):
            s = stats[key]
            s[0] += 1
            s[1] += (a.verdict == "correct") == want
            s[2] += (b.verdict == "correct") == want
            s[3] += m == want
    print(f"{'class':<18} {'n':>4} {'default':>8} {'all':>8} {'math-verify':>12}")
    for cls in sorted(stats, key=lambda k: (k == "TOTAL", k)):
        n, a, b, m = stats[cls]
        print(f"{cls:<18} {n:>4} {a / n:>8.1%} {b / n:>8.1%} {m / n:>12.1%}")
    for (cls, g, _r, label), a in zip(rows, ours, strict=True):
        if (a.verdict == "correct") != (label == "correct"):
            print(f"DISAGREE [{cls}] gold={g[:30]!r} label={label} got={a.verdict} "
                  f"rule={a.rule} extracted={str(a.extracted)[:40]!r} ({a.reason[:60]})")


if __name__ == "__main__":
    main()
