"""Loaders for the instruction-following and Chinese sets (prompts only; no gold, no tests)."""

from __future__ import annotations

import re
from typing import Any

from .base import LOADERS, DropRow, SourceSpec, norm_messages
from .classify import MAGPIE_DOMAINS


def _text(row: dict[str, Any], field: str) -> str:
    v = row.get(field)
    if v is None:
        raise DropRow(f"missing_field:{field}")
    if not isinstance(v, str):
        raise DropRow(f"not_text:{field}")
    if not v.strip():
        raise DropRow("empty_prompt")
    return v


def _record(messages: list[dict[str, str]], **meta: Any) -> dict[str, Any]:
    if not messages or messages[-1]["role"] != "user":
        raise DropRow("no_final_user_turn")
    if not messages[-1]["content"].strip():
        raise DropRow("empty_prompt")
    return {"messages": messages, "gold": None, "tests": None, "existing_response": None,
            "meta": {k: v for k, v in meta.items() if v is not None}}


def ultrafeedback(row: dict[str, Any], src: SourceSpec) -> dict[str, Any]:
    """openbmb/UltraFeedback: ``source``, ``instruction``, ``models``, ``completions``
    (list of {model, response, annotations, ...}), ``correct_answers``, ``incorrect_answers``.
    Single-turn: the prompt is ``instruction``; the completions are not kept (we resample).
    """
    return _record([{"role": "user", "content": _text(row, "instruction")}],
                   subset=row.get("source"))


def magpie(row: dict[str, Any], src: SourceSpec) -> dict[str, Any]:
    """Magpie-Align sets.

    * Magpie-Pro-DPO-100K-v0.1: ``instruction``, ``task_category``, ``chosen`` /
      ``rejected`` (message lists), ``responses``, ``rewards_armorm``, ... -> the prompt
      is ``instruction``.
    * Magpie-Qwen2-Pro-200K-Chinese: ``conversations`` ([{from: human|gpt, value}]),
      ``instruction``, ``response``, ``task_category``, ``language`` ("ZH"), ... -> the
      prompt is ``conversations`` without the trailing answer (multi-turn kept),
      falling back to ``instruction``.

    ``task_category`` ("Coding & Debugging", "Math", ...) becomes the domain hint
    and ``language`` the language hint used by the filters.
    """
    conv = row.get("conversations")
    if conv:
        messages = norm_messages(conv)
        while messages and messages[-1]["role"] == "assistant":
            messages.pop()
    else:
        messages = [{"role": "user", "content": _text(row, "instruction")}]
    cat = row.get("task_category")
    domain = MAGPIE_DOMAINS.get(cat, "other") if isinstance(cat, str) and cat else None
    return _record(messages, domain=domain, task_category=cat, language=row.get("language"))


_HS2_TURN = re.compile(r"\n?<extra_id_1>(User|Assistant)\n")


def helpsteer2(row: dict[str, Any], src: SourceSpec) -> dict[str, Any]:
    """nvidia/HelpSteer2: ``prompt``, ``response`` and five 0-4 attribute scores.

    Every prompt appears twice (two rated responses): exact dedup keeps one.
    Multi-turn prompts hold earlier turns inline, separated by
    ``<extra_id_1>Assistant`` / ``<extra_id_1>User`` lines; they are split into turns.
    """
    text = _text(row, "prompt")
    parts = _HS2_TURN.split(text)
    messages = [{"role": "user", "content": parts[0].strip()}]
    for role, content in zip(parts[1::2], parts[2::2], strict=True):
        messages.append({"role": role.lower(), "content": content.strip()})
    if any(not m["content"] for m in messages):
        raise DropRow("empty_turn")
    roles = [m["role"] for m in messages]
    if any(a == b for a, b in zip(roles, roles[1:], strict=False)):
        raise DropRow("turns_not_alternating")
    return _record(messages)


def alpaca(row: dict[str, Any], src: SourceSpec) -> dict[str, Any]:
    """Alpaca format (llamafactory/alpaca_gpt4_zh): ``instruction``, ``input`` (often
    empty), ``output``.  The prompt is the instruction, followed by the input when present.
    """
    instr = _text(row, "instruction")
    extra = row.get("input")
    content = f"{instr.strip()}\n\n{extra.strip()}" if isinstance(extra, str) and extra.strip() \
        else instr.strip()
    return _record([{"role": "user", "content": content}])


LOADERS.update({"ultrafeedback": ultrafeedback, "magpie": magpie, "helpsteer2": helpsteer2,
                "alpaca": alpaca})
