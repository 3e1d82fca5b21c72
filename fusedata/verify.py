"""The ``verify`` stage: correctness labels for math and code responses.

* ``math``: the final answer is extracted from the response and checked against
  the prompt's ``gold`` with :mod:`fusedata.mathcheck` (math-verify + sympy, in
  a process pool with hard time limits).
* ``code``: the program is taken from the response's code block and run
  against the prompt's ``tests`` in the :mod:`sandbox` runner (isolated,
  resource-limited, harness-integrity checked).
* other categories get no verdict (``null``): selection uses the RM alone.

A category whose verifier is not configured in the recipe gets verdict
``unverified`` so selection can tell "not checked" from "checked and failed".
"""

from __future__ import annotations

import json
import re
from typing import Any

import polars as pl

from .engine import Dataset, RowLookup, Stage
from .recipe import Verifiers
from .records import VERIFY_COLUMNS

IN_PROCESS = "in_process"  # verdict_detail of a code pass that rests partly on in-job checks
_FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)```", re.S | re.I)


def extract_code(response: str) -> str | None:
    """The solution program in a response: the last fenced python block that is not a test.

    Models often add an example-usage or test block after the solution; a block
    made only of asserts is skipped.  A response with no fence at all is
    treated as bare code.  Returns None for an empty response.
    """
    if not response or not response.strip():
        return None
    blocks = [b for b in _FENCE.findall(response) if b.strip()]
    if not blocks:
        return response if "```" not in response else None
    for b in reversed(blocks):
        lines = [ln.strip() for ln in b.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        if lines and not all(ln.startswith("assert") for ln in lines):
            return b
    return blocks[-1]


def code_job(rid: str, response: str, tests: str | None, timeout_s: float, memory_mb: int
             ) -> dict[str, Any] | str:
    """Build a sandbox job for one response, or return the reason none can be built."""
    if not tests:
        return "no_tests"
    code = extract_code(response)
    if code is None:
        return "no_code"
    try:
        spec = json.loads(tests)
    except json.JSONDecodeError:
        spec = {"test": tests}
    if isinstance(spec, str):
        spec = {"test": spec}
    if not isinstance(spec, dict):
        return "bad_tests_format"
    job = {"timeout_s": timeout_s, "memory_mb": memory_mb, **spec}
    job.update(id=rid, code=code)
    return job


class VerifyStage(Stage):
    name = "verify"
    # 2: math verdicts changed (issue 16: extraction cascade, exact arithmetic, too_complex),
    # so verdicts cached by version 1 must not be reused.
    version = "2"
    #: responses per shard unless the recipe says otherwise (checks are cheap per record)
    shard_size = 512

    def __init__(self, cfg: Verifiers, prompts: Dataset, shard_size: int | None = None):
        self.cfg = cfg
        self.prompts = prompts
        self._prompt_rows = RowLookup(prompts, "prompt_id")
        if shard_size is not None:
            self.shard_size = shard_size
        self._math_pool: Any = None
        self._code_pool: Any = None

    def setup(self) -> None:
        """Nothing to load up front: the worker pools start lazily in :meth:`run`.

        The math and sandbox pools start on the first shard that has math or code
        responses (an instruction-only model never starts them) and are then kept
        for every later shard of this stage until :meth:`teardown` (starting them
        per shard would cost ~0.5 s of imports each time: ~8 minutes over the
        1,000 shards of a FuseChat-scale build).
        """

    def teardown(self) -> None:
        for pool in (self._math_pool, self._code_pool):
            if pool is not None:
                pool.close()
        self._math_pool = self._code_pool = None

    def __getstate__(self) -> dict[str, Any]:
        # pools hold processes and sockets: never ship them to another worker (Ray)
        return {**self.__dict__, "_math_pool": None, "_code_pool": None}

    def fingerprint(self) -> Any:
        d = self.cfg.model_dump(mode="json")
        for v in d.values():
            if isinstance(v, dict):
                v.pop("workers", None)
        return {"verifiers": d, "prompts": self.prompts.key}

    def run(self, records: pl.DataFrame, shard_index: int, n_shards: int) -> pl.DataFrame:
        verdict: list[str | None] = [None] * records.height
        detail: list[str | None] = [None] * records.height
        need = records.filter(pl.col("category").is_in(["math", "code"]))
        if need.height:
            # gold answers and tests of this shard's prompts only; a shard with nothing to
            # verify (instruction, chinese) reads no prompt at all
            gold = self._prompt_rows.fetch(need["prompt_id"], ["prompt_id", "gold", "tests"])
            rows = (records.with_row_index("_i").filter(pl.col("category").is_in(["math", "code"]))
                    .join(gold, on="prompt_id", how="left"))
            math_rows = rows.filter(pl.col("category") == "math")
            code_rows = rows.filter(pl.col("category") == "code")
            self._math(math_rows, verdict, detail)
            self._code(code_rows, verdict, detail)
        return records.with_columns(
            pl.Series("verdict", verdict, dtype=VERIFY_COLUMNS["verdict"]),
            pl.Series("verdict_detail", detail, dtype=VERIFY_COLUMNS["verdict_detail"]),
        )

    def _math(self, rows: pl.DataFrame, verdict: list, detail: list) -> None:
        if rows.height == 0:
            return
        if self.cfg.math is None:
            for i in rows["_i"]:
                verdict[i], detail[i] = "unverified", "no math verifier in recipe"
            return
        from .mathcheck import CheckPool, check_many

        if self._math_pool is None:
            self._math_pool = CheckPool(self.cfg.math.workers, timeout_s=self.cfg.math.timeout_s)

        todo = rows.filter((pl.col("finish_reason") != "error") & pl.col("gold").is_not_null())
        for r in rows.filter(~pl.col("_i").is_in(todo["_i"].implode())).iter_rows(named=True):
            verdict[r["_i"]] = "error"
            detail[r["_i"]] = "no_gold" if r["gold"] is None else "no_response"
        out = check_many(list(zip(todo["gold"].to_list(), todo["response"].to_list(),
                                  strict=True)),
                         timeout_s=self.cfg.math.timeout_s, pool=self._math_pool)
        for i, v in zip(todo["_i"].to_list(), out, strict=True):
            verdict[i] = v.verdict
            detail[i] = json.dumps({"extracted": v.extracted, "rule": v.rule, "reason": v.reason},
                                   ensure_ascii=False)

    def _code(self, rows: pl.DataFrame, verdict: list, detail: list) -> None:
        if rows.height == 0:
            return
        if self.cfg.code is None:
            for i in rows["_i"]:
                verdict[i], detail[i] = "unverified", "no code verifier in recipe"
            return
        import sandbox

        c = self.cfg.code
        jobs, where = [], []
        for r in rows.iter_rows(named=True):
            if r["finish_reason"] == "error":
                verdict[r["_i"]], detail[r["_i"]] = "failed", "no_response"
                continue
            job = code_job(str(r["_i"]), r["response"], r["tests"], c.timeout_s, c.memory_mb)
            if isinstance(job, str):
                verdict[r["_i"]], detail[r["_i"]] = (
                    "failed" if job == "no_code" else "sandbox_error", job)
                continue
            jobs.append(job)
            where.append(r["_i"])
        if not jobs:
            return
        if self._code_pool is None:
            self._code_pool = sandbox.SandboxPool(workers=c.workers, isolation=c.isolation)
        out = self._code_pool.run(jobs)
        for i, v in zip(where, out, strict=True):
            verdict[i] = v["verdict"]
            d = v.get("detail")
            detail[i] = d if isinstance(d, str) or d is None else json.dumps(d)
            if v["verdict"] == "passed" and v.get("judged") == "in_process":
                # part of this pass rests on test code that ran next to the solution (see
                # sandbox README, "Verdicts"): recorded so reports can count and filter them
                detail[i] = IN_PROCESS

    summary_columns = ("verdict", "verdict_detail")

    def summarize(self, out: pl.DataFrame) -> str:
        c = out.filter(pl.col("verdict").is_not_null()).group_by("verdict").len().sort("verdict")
        text = ", ".join(f"{v} {n}" for v, n in c.iter_rows())
        n_in = out.filter(pl.col("verdict_detail") == IN_PROCESS).height
        return text + (f" ({n_in} passed judged in process)" if n_in else "")
