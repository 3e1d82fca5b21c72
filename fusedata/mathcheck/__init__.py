"""Math answer checker: extract the final answer, normalise, verify against gold.

Public API:

* :func:`check_many` / :func:`check_one` - label responses ``correct`` / ``incorrect`` /
  ``no_answer`` / ``timeout`` / ``too_complex`` / ``error`` against gold answers, in
  parallel, with a hard per-check time limit enforced by killing worker processes.
* :func:`extract_answer` - the extraction rules alone (pure, fast).
* :func:`check_equivalence` / :func:`normalize_answer` - the comparison alone, *without*
  a time limit (may hang on pathological input; use only in a killable process).
* :class:`CheckPool` - the warm worker pool, for callers that want to reuse workers.

Why labels are conservative: these verdicts choose SFT targets and DPO chosen/rejected
responses, so a false ``correct`` is worse than a missed one. Ambiguous extraction yields
``no_answer``, an unparseable gold yields ``error``; neither is ever reported as correct.
Only ``correct`` and ``incorrect`` are labels; ``timeout`` (the check hit its deadline) and
``too_complex`` (an answer too large or too deeply nested to decide, see
:mod:`fusedata.mathcheck.exact` and ``MV_MAX_DEPTH``) mean "unknown", never "incorrect".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fusedata.mathcheck.equivalence import Equivalence, check_equivalence, normalize_answer
from fusedata.mathcheck.extract import (
    ALL_FALLBACKS,
    DEFAULT_FALLBACKS,
    Extraction,
    extract_answer,
)
from fusedata.mathcheck.pool import CheckPool, default_workers

__all__ = [
    "ALL_FALLBACKS",
    "DEFAULT_FALLBACKS",
    "VERDICTS",
    "CheckPool",
    "Equivalence",
    "Extraction",
    "MathVerdict",
    "check_equivalence",
    "check_many",
    "check_one",
    "extract_answer",
    "normalize_answer",
]

VERDICTS: tuple[str, ...] = (
    "correct",
    "incorrect",
    "no_answer",
    "timeout",
    "too_complex",
    "error",
)


@dataclass(frozen=True, slots=True)
class MathVerdict:
    """Label of one response.

    ``verdict``: one of :data:`VERDICTS`. ``extracted``: the answer span compared (None when
    nothing was extracted). ``rule``: the extraction rule that fired (``boxed``,
    ``boxed_multi``, ``final_answer``, ``answer_label``, ``gsm8k``, ..., ``no_answer``; see
    :mod:`fusedata.mathcheck.extract`). ``reason``: why the verdict was reached.
    ``gold_normalized`` / ``pred_normalized``: what was actually compared (sympy form when
    math-verify parsed it), for debugging labels.
    """

    verdict: str
    extracted: str | None
    rule: str
    reason: str
    gold_normalized: str = ""
    pred_normalized: str = ""

    @property
    def is_correct(self) -> bool:
        return self.verdict == "correct"


def check_many(
    items: Sequence[tuple[str, str]],
    *,
    timeout_s: float = 5.0,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    fallbacks: Sequence[str] = DEFAULT_FALLBACKS,
    pool: CheckPool | None = None,
) -> list[MathVerdict]:
    """Label each ``(gold, response_text)``; results in input order.

    Extraction runs here; identical ``(gold, extracted)`` checks are verified once. The
    checks run on ``workers`` processes (default: all usable CPUs, capped by the number of
    items), each with a hard ``timeout_s`` wall-clock limit. Safe to call from any
    thread and repeatedly; unless ``pool`` is given, the workers are started for this call
    and stopped and reaped before it returns (also on error). Starting them costs about
    0.5 s (one warm-up import of sympy + math-verify), so pass a :class:`CheckPool` as
    ``pool`` to amortise it over many small calls; the pool's own ``timeout_s`` then
    applies. ``progress(k)`` receives the number of items finished since its previous call.

    Failure modes: responses without an answer give ``no_answer``; checks exceeding the
    limit give ``timeout``; answers too large or deep to decide give ``too_complex``;
    unparseable gold, worker crashes and unexpected exceptions give
    ``error`` with the cause in ``reason``. Never raises for bad input text; raises
    ``ValueError`` for a non-positive ``timeout_s`` or an unknown fallback rule.
    """
    if timeout_s <= 0:
        raise ValueError("timeout_s must be > 0")
    extract_answer("", fallbacks)  # validate the rule names before starting processes
    n = len(items)
    own: CheckPool | None = None
    if pool is None and n:
        # Start the workers' zygote first: it warms up while we extract answers.
        n_workers = min(workers if workers is not None else default_workers(), n)
        own = CheckPool(n_workers, timeout_s=timeout_s)
    try:
        return _check_many(items, fallbacks, pool or own, progress)
    finally:
        if own is not None:
            own.close()


def _check_many(
    items: Sequence[tuple[str, str]],
    fallbacks: Sequence[str],
    pool: CheckPool | None,
    progress: Callable[[int], None] | None,
) -> list[MathVerdict]:
    n = len(items)
    out: list[MathVerdict | None] = [None] * n
    extractions: list[Extraction] = []
    unique: dict[tuple[str, str], int] = {}
    members: list[list[int]] = []
    for idx, (gold, response) in enumerate(items):
        ex = extract_answer(response, fallbacks, gold=gold)
        extractions.append(ex)
        if ex.answer is None:
            out[idx] = MathVerdict("no_answer", None, ex.rule, "no final answer found")
            continue
        key = (gold, ex.answer)
        u = unique.get(key)
        if u is None:
            u = unique[key] = len(members)
            members.append([])
        members[u].append(idx)
    n_no_answer = n - sum(len(m) for m in members)
    if progress is not None and n_no_answer:
        progress(n_no_answer)

    pairs = list(unique)
    if pairs:
        on_done = None
        if progress is not None:

            def on_done(u: int) -> None:
                progress(len(members[u]))

        assert pool is not None
        eqs = pool.run(pairs, on_done=on_done)
        for u, eq in enumerate(eqs):
            gold_n, pred_n = eq.gold_normalized, eq.pred_normalized
            if not (gold_n or pred_n):  # timeout / crash: show what was compared (raw and
                # shortened: normalising a pathological answer here would run without limit)
                gold_n, pred_n = pairs[u][0][:200], pairs[u][1][:200]
            for idx in members[u]:
                ex = extractions[idx]
                out[idx] = MathVerdict(eq.verdict, ex.answer, ex.rule, eq.reason, gold_n, pred_n)
    return [v for v in out if v is not None]


def check_one(
    gold: str,
    response: str,
    *,
    timeout_s: float = 5.0,
    fallbacks: Sequence[str] = DEFAULT_FALLBACKS,
) -> MathVerdict:
    """Label a single response (see :func:`check_many`); runs in one worker process."""
    return check_many([(gold, response)], timeout_s=timeout_s, workers=1, fallbacks=fallbacks)[0]
