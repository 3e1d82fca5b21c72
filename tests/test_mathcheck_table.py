"""The labelled gold/prediction table, checked through the real worker pool."""

from __future__ import annotations

import pytest

from fusedata.mathcheck import CheckPool, Equivalence
from tests.mathcheck_table import TABLE


@pytest.fixture(scope="module")
def table_results() -> list[Equivalence]:
    # One pool for the whole table: the path the verify stage uses, with deadlines.
    with CheckPool(timeout_s=10.0) as pool:
        return pool.run([(gold, pred) for gold, pred, _ in TABLE])


def test_table_is_large_and_balanced() -> None:
    assert len(TABLE) >= 200
    verdicts = [v for _, _, v in TABLE]
    assert verdicts.count("correct") >= 80
    assert verdicts.count("incorrect") >= 70
    assert len({(g, p) for g, p, _ in TABLE}) == len(TABLE), "duplicate rows"


@pytest.mark.parametrize(
    ("idx", "gold", "pred", "expected"),
    [(i, g, p, v) for i, (g, p, v) in enumerate(TABLE)],
    ids=[f"{i}:{g[:20]}|{p[:20]}" for i, (g, p, _) in enumerate(TABLE)],
)
def test_table_row(
    table_results: list[Equivalence], idx: int, gold: str, pred: str, expected: str
) -> None:
    got = table_results[idx]
    assert got.verdict == expected, f"{gold!r} vs {pred!r}: {got}"
