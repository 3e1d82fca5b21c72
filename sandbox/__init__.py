"""Sandboxed execution of untrusted, model-written Python solutions against tests.

Library use::

    from sandbox import run_jobs
    verdicts = run_jobs(jobs, workers=None, isolation=True, progress=None)

CLI: ``python -m sandbox run JOBS.jsonl VERDICTS.jsonl [--workers N] [--no-isolation]``.

Job format (one JSON object per job / JSONL line):

* ``id`` (str | int, required) and ``code`` (str, required): the solution module.
* exactly one test format:

  - ``test`` (str): Python run after ``code`` in the same ``__main__`` namespace; it passes
    when every top-level statement, every ``test*`` function it defines (and does not call
    itself), every pytest-style ``Test*`` class method and every ``unittest.TestCase`` test
    ran without error or skip;
  - ``cases`` + ``entry_point``: ``[{"input": [args...] | {kwargs}, "output": value}]``;
    ``entry_point`` is ``"func"`` or ``"Class.method"`` (a fresh ``Class()`` per case).  The
    return value must be plain data; it is converted to JSON data (tuples -> lists, sets ->
    sorted lists) and compared by the runner, which alone holds the expected outputs: exact
    for int/str/bool/None, floats with rel 1e-6 / abs 1e-9;
  - ``stdin_cases``: ``[{"input": "stdin text", "output": "expected stdout"}]``; the program
    runs once per case as ``__main__``; must exit 0; trailing whitespace per line and
    trailing blank lines are ignored.

* optional ``entry_point`` (also checked statically for ``test`` jobs), ``prelude`` (set-up
  code run first inside the confined job, e.g. ``"from typing import *"``; its names count as
  defined),
  ``timeout_s``
  (wall clock, default 10), ``memory_mb`` (address space, default 1024).

Verdict dicts (input order): ``id``, ``verdict`` (one of :data:`VERDICTS`), ``detail`` (short
human text), for passed ``test`` jobs ``judged`` (``"outside"``/``"in_process"``, see README)
and, when useful, ``failed_test``, ``error_type``, ``message``, ``elapsed_s``,
``cpu_s``, ``output_truncated`` and (for non-passes) ``stdout``/``stderr`` tails.
"""

from typing import Any, TypedDict

from sandbox._pool import (
    DEFAULTS,
    GUIDANCE,
    VERDICTS,
    SandboxPool,
    SandboxUnavailableError,
    check_host,
    run_jobs,
    validate_job,
)

__all__ = [
    "DEFAULTS",
    "GUIDANCE",
    "Job",
    "Verdict",
    "VERDICTS",
    "SandboxPool",
    "SandboxUnavailableError",
    "check_host",
    "run_jobs",
    "validate_job",
]


class Case(TypedDict):
    """One function-call case (``input``: positional args list or kwargs dict) or one
    stdin/stdout case (``input``/``output``: strings)."""

    input: Any
    output: Any


class Job(TypedDict, total=False):
    """A job; ``id`` and ``code`` are required, plus exactly one of ``test``, ``cases``
    (with ``entry_point``) or ``stdin_cases``."""

    id: str | int
    code: str
    test: str
    cases: list[Case]
    entry_point: str
    stdin_cases: list[Case]
    prelude: str
    timeout_s: float
    memory_mb: int
    env: str  # "leetcode" (sandbox/_leetcode.py, README "LeetCode jobs")
    call: dict[str, Any]  # trees / lists / design / in-place calling convention
    compare: dict[str, Any]  # worker-side comparison mode (sandbox/_compare.py)


class Verdict(TypedDict, total=False):
    """A verdict; ``id``, ``verdict`` and ``detail`` are always present."""

    id: str | int | None
    verdict: str
    detail: str
    failed_test: int | str | None
    error_type: str
    message: str
    elapsed_s: float
    cpu_s: float
    output_truncated: bool
    stdout: str
    stderr: str
    judged: str
    checks: int
    in_process: list[str]
