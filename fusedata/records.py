"""The records stages exchange: column names and types, in one place.

Follow one prompt through a build:

``prompts``  one row per prompt: ``prompt_id`` (sha256 of the canonical
             messages), ``source``, ``source_dataset``, ``category``,
             ``messages`` (list of {role, content}, ending with a user turn),
             ``gold``, ``tests``, ``existing_response``, ``row_index``.
``sample``   one row per response, per model: ``response_id``, ``prompt_id``,
             ``model``, ``role`` (source/target), ``sample_idx``, ``response``,
             ``finish_reason`` (stop/length/error), ``truncated`` (cut at
             max_tokens), ``prompt_tokens``, ``completion_tokens``,
             ``sampler`` (backend and version), ``error``.
``score``    + ``score`` (float, null when unscored), ``score_truncated``
             (the RM saw a truncated input), ``score_error``.
``verify``   + ``verdict`` (null for categories without a verifier; math:
             correct/incorrect/no_answer/timeout/too_complex/error; code: passed/failed/
             timeout/memory/syntax_error/static_error/sandbox_error),
             ``verdict_detail``.
``select``   tables ``sft``, ``dpo``, ``wrpo``, ``drops`` (see select.py).

Prompt text is not copied into the per-response tables: stages that need it
join on ``prompt_id`` (cheap in polars, and 30x less disk at FuseChat scale).
"""

from __future__ import annotations

import hashlib
import json

import polars as pl

MESSAGE = pl.Struct({"role": pl.String, "content": pl.String})
MESSAGES = pl.List(MESSAGE)

PROMPT_SCHEMA: dict[str, pl.DataType] = {
    "prompt_id": pl.String,
    "source": pl.String,
    "source_dataset": pl.String,
    "category": pl.String,
    "messages": MESSAGES,
    "gold": pl.String,
    "tests": pl.String,
    "existing_response": pl.String,
    "row_index": pl.Int64,
}

SAMPLE_SCHEMA: dict[str, pl.DataType] = {
    "response_id": pl.String,
    "prompt_id": pl.String,
    "category": pl.String,
    "source": pl.String,
    "model": pl.String,
    "role": pl.String,
    "sample_idx": pl.Int32,
    "response": pl.String,
    "finish_reason": pl.String,
    "truncated": pl.Boolean,
    "prompt_tokens": pl.Int32,
    "completion_tokens": pl.Int32,
    "sampler": pl.String,
    "error": pl.String,
}

SCORE_COLUMNS: dict[str, pl.DataType] = {
    "score": pl.Float64,
    "score_truncated": pl.Boolean,
    "score_error": pl.String,
}

VERIFY_COLUMNS: dict[str, pl.DataType] = {
    "verdict": pl.String,
    "verdict_detail": pl.String,
}

#: verdicts that make a math/code response eligible as SFT target or DPO chosen
PASSING_VERDICTS = ("correct", "passed")


def prompt_id(messages: list[dict[str, str]]) -> str:
    """sha256 of the canonical messages: the same prompt gets the same id everywhere."""
    canon = json.dumps([[m["role"], m["content"]] for m in messages], ensure_ascii=False)
    return hashlib.sha256(canon.encode()).hexdigest()


def response_id(pid: str, model: str, sample_idx: int) -> str:
    return hashlib.sha256(f"{pid}\x00{model}\x00{sample_idx}".encode()).hexdigest()[:32]

