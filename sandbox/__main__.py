"""``python -m sandbox run JOBS.jsonl VERDICTS.jsonl [--workers N] [--no-isolation]``.

Verdicts are appended as jobs finish (completion order, one complete line each, flushed), so
an interrupted run is resumed by running the same command again: ids that already have a
verdict are skipped and a torn last line is cut off first.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from typing import Any

from sandbox._pool import SandboxPool, SandboxUnavailableError


def _done_ids(path: str) -> set[Any]:
    """Ids already in VERDICTS.jsonl (JSON-encoded; ``line:N`` for id-less malformed lines);
    truncate a trailing partial line left by a crash."""
    done: set[Any] = set()
    if not os.path.exists(path):
        return done
    with open(path, "rb+") as f:
        data = f.read()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            f.truncate(end)
    for line in data[:end].splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("id") is not None:
            done.add(json.dumps(rec["id"]))
        elif isinstance(rec, dict) and isinstance(rec.get("line"), int):
            done.add(f"line:{rec['line']}")
    return done


def _jobs(path: str, done: set[Any]) -> Iterator[Any]:
    """Yield parsed job lines lazily; malformed lines become dicts the pool rejects."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                job = json.loads(line)
            except ValueError as e:
                job = {"__malformed__": f"invalid JSON ({e})"}
            if isinstance(job, dict) and "id" in job:
                if json.dumps(job["id"]) in done:
                    continue
            elif f"line:{lineno}" in done:
                continue
            if isinstance(job, dict):
                job["__line__"] = lineno
            yield job


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status (0 when every job got a verdict)."""
    ap = argparse.ArgumentParser(prog="python -m sandbox",
                                 description="Run untrusted Python solutions against tests in "
                                             "an isolated sandbox.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run JOBS.jsonl, append verdicts to VERDICTS.jsonl",
                         description="Each JOBS line: {id, code, test | cases+entry_point | "
                                     "stdin_cases, [timeout_s], [memory_mb]}. Each VERDICTS "
                                     "line: {id, verdict, detail, ...}. Resumable.")
    run.add_argument("jobs")
    run.add_argument("verdicts")
    run.add_argument("--workers", type=int, default=None, help="parallel workers "
                     "(default: usable CPUs)")
    run.add_argument("--no-isolation", action="store_true",
                     help="trusted local debugging only: run WITHOUT namespaces/uid drop")
    run.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = ap.parse_args(argv)

    done = _done_ids(args.verdicts)
    try:
        pool = SandboxPool(workers=args.workers, isolation=not args.no_isolation)
    except SandboxUnavailableError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    counts: dict[str, int] = {}
    with pool, open(args.verdicts, "a", encoding="utf-8") as out:
        for _idx, v in pool.imap_unordered(_jobs(args.jobs, done)):
            out.write(json.dumps(v) + "\n")
            out.flush()
            counts[v["verdict"]] = counts.get(v["verdict"], 0) + 1
            if not args.quiet and sum(counts.values()) % 1000 == 0:
                print(f"{sum(counts.values())} done: {counts}", file=sys.stderr)
    if not args.quiet:
        print(f"finished: {counts} (skipped {len(done)} already done)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
