"""``fusedata verify-math``: debug a label, or label a JSONL file of answers.

Kept as a standalone click command object (:data:`verify_math`) so the main ``fusedata``
group can register it with ``cli.add_command(verify_math)``.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

import click

from fusedata.mathcheck import MathVerdict, check_many

__all__ = ["verify_math"]


def _read_jsonl(stream: TextIO) -> list[tuple[Any, str, str] | tuple[Any, None, str]]:
    """Parse input lines into ``(id, gold, answer)`` or ``(id, None, error_reason)``.

    A bad line does not abort the run: it yields an ``error`` output line so that output
    lines stay in one-to-one correspondence with (non-blank) input lines.
    """
    rows: list[tuple[Any, str, str] | tuple[Any, None, str]] = []
    for lineno, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            rows.append((None, None, f"line {lineno}: invalid JSON ({exc.msg})"))
            continue
        if not isinstance(obj, dict):
            rows.append((None, None, f"line {lineno}: expected a JSON object"))
            continue
        gold, answer = obj.get("gold"), obj.get("answer")
        if not isinstance(gold, str | int | float) or not isinstance(answer, str | int | float):
            rows.append((obj.get("id"), None, f"line {lineno}: 'gold' and 'answer' required"))
            continue
        rows.append((obj.get("id"), str(gold), str(answer)))
    return rows


@click.command("verify-math")
@click.argument("gold", required=False)
@click.argument("answer", required=False)
@click.option(
    "--jsonl",
    "jsonl_path",
    type=click.File("r", encoding="utf-8"),
    default=None,
    help='Read {"id", "gold", "answer"} lines (use - for stdin); print one JSON line each.',
)
@click.option(
    "--timeout",
    "timeout_s",
    type=float,
    default=5.0,
    show_default=True,
    help="Hard time limit per check, seconds.",
)
@click.option("--workers", type=int, default=None, help="Worker processes (default: all CPUs).")
def verify_math(
    gold: str | None,
    answer: str | None,
    jsonl_path: TextIO | None,
    timeout_s: float,
    workers: int | None,
) -> None:
    """Check a math ANSWER (full response or bare final answer) against GOLD.

    With GOLD and ANSWER: print the verdict, the extracted answer and the normalised forms
    that were compared. With --jsonl: print {"id", "verdict", "extracted", "reason"} per line,
    in input order. Verdicts: correct, incorrect, no_answer, timeout, too_complex, error
    (timeout and too_complex mean "could not decide", never "incorrect").
    """
    if jsonl_path is not None:
        if gold is not None or answer is not None:
            raise click.UsageError("give either GOLD ANSWER or --jsonl, not both")
        rows = _read_jsonl(jsonl_path)
        good = [(i, r) for i, r in enumerate(rows) if r[1] is not None]
        verdicts = check_many(
            [(r[1], r[2]) for _, r in good],  # type: ignore[misc]
            timeout_s=timeout_s,
            workers=workers,
        )
        by_row: dict[int, MathVerdict] = {i: v for (i, _), v in zip(good, verdicts, strict=True)}
        for i, (rid, g, payload) in enumerate(rows):
            if g is None:
                rec = {"id": rid, "verdict": "error", "extracted": None, "reason": payload}
            else:
                v = by_row[i]
                rec = {
                    "id": rid,
                    "verdict": v.verdict,
                    "extracted": v.extracted,
                    "reason": v.reason,
                }
            click.echo(json.dumps(rec, ensure_ascii=False))
        return
    if gold is None or answer is None:
        raise click.UsageError("need GOLD and ANSWER, or --jsonl FILE")
    v = check_many([(gold, answer)], timeout_s=timeout_s, workers=1)[0]
    click.echo(f"verdict: {v.verdict}")
    click.echo(f"rule: {v.rule}")
    click.echo(f"extracted: {v.extracted}")
    click.echo(f"gold_normalized: {v.gold_normalized}")
    click.echo(f"pred_normalized: {v.pred_normalized}")
    click.echo(f"reason: {v.reason}")
