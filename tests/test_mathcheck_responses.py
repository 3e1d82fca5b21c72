"""Full model-style responses (tests/mathcheck_table.py RESPONSE_TABLE) through check_many.

Each failure class of issue 16 (no box, Minerva, headings, GSM8K, last sentence, several
boxes, markup, number words, function prefixes, unicode, repeating decimals, mixed numbers,
empty set, tiny values, deep nesting, truncated decimals, pathological input) has rows whose
expected verdict is ``correct`` and rows whose expected verdict is ``incorrect``; the
pathological class also has an unusable (``too_complex``) row. Runs through the real pool
with a deadline, and checks that no check overran it.
"""

from __future__ import annotations

import time
from collections import defaultdict

import pytest

from fusedata.mathcheck import VERDICTS, CheckPool, MathVerdict, check_many
from tests.mathcheck_table import RESPONSE_TABLE as _FIRST
from tests.mathcheck_table import (
    RESPONSE_TABLE_BATCH3,
    RESPONSE_TABLE_BATCH4,
    RESPONSE_TABLE_BATCH5,
    RESPONSE_TABLE_FRESH,
)

RESPONSE_TABLE = (
    _FIRST + RESPONSE_TABLE_FRESH + RESPONSE_TABLE_BATCH3 + RESPONSE_TABLE_BATCH4 + RESPONSE_TABLE_BATCH5
)

# The symbolic 1000-term sums take ~3 s of sympy on a quiet core; the limit leaves room for a
# loaded CI machine.  The deadline itself is tested in test_mathcheck_pool.py.
TIMEOUT_S = 15.0


@pytest.fixture(scope="module")
def results() -> tuple[list[MathVerdict], float]:
    with CheckPool(timeout_s=TIMEOUT_S) as pool:
        assert pool.pids  # warm: start-up is not part of any check's time
        t0 = time.monotonic()
        out = check_many([(g, r) for _c, g, r, _v, _w in RESPONSE_TABLE], pool=pool)
        return out, time.monotonic() - t0


def test_every_class_has_equal_and_unequal_rows() -> None:
    by_class: dict[str, set[str]] = defaultdict(set)
    for cls, _g, _r, verdict, reason in RESPONSE_TABLE:
        assert verdict in VERDICTS
        assert reason.strip(), "every row needs a reason"
        by_class[cls].add(verdict)
    assert len(by_class) >= 18
    for cls, verdicts in by_class.items():
        assert {"correct", "incorrect"} <= verdicts, cls
    assert len({(g, r) for _c, g, r, _v, _w in RESPONSE_TABLE}) == len(RESPONSE_TABLE)


@pytest.mark.parametrize(
    ("idx", "cls", "gold", "response", "expected", "reason"),
    [(i, *row) for i, row in enumerate(RESPONSE_TABLE)],
    ids=[f"{i}:{row[0]}:{row[4]}" for i, row in enumerate(RESPONSE_TABLE)],
)
def test_response_row(
    results: tuple[list[MathVerdict], float],
    idx: int,
    cls: str,
    gold: str,
    response: str,
    expected: str,
    reason: str,
) -> None:
    got = results[0][idx]
    assert got.verdict == expected, f"[{cls}] {reason}: {got}"


def test_no_check_overran_and_none_timed_out(results: tuple[list[MathVerdict], float]) -> None:
    out, elapsed = results
    # Pathological rows are decided by exact arithmetic, collapsing or the depth cap, not by
    # the deadline; the whole table takes far less than one time limit per worker.
    assert not [v for v in out if v.verdict == "timeout"]
    assert elapsed < TIMEOUT_S + 1.0
