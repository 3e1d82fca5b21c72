"""What every prompt loader shares: the registry, :class:`DropRow`, message normalisation.

This module sits at the bottom of the prompt side of the import graph: it imports
nothing from :mod:`fusedata`.  The recipe schema imports the registry (to reject an
unknown ``loader`` with its YAML line), the dataset-family modules register into it,
and the ``prompts`` stage runs what is registered.  Loaders therefore type their
recipe entry structurally (:class:`SourceSpec`) instead of importing
:class:`fusedata.recipe.PromptSource`, which would close a circle recipe -> sources ->
recipe.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

ROLE_ALIASES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                "model": "assistant", "bot": "assistant", "system": "system"}


class DropRow(Exception):
    """Raised by a loader for a row that cannot become a prompt; the message is the reason."""


class SourceSpec(Protocol):
    """The parts of a recipe ``prompts[i]`` entry a loader reads.

    :class:`fusedata.recipe.PromptSource` satisfies it; ``fields`` is its
    :class:`~fusedata.recipe.FieldMap` (generic loader only), ``options`` its free-form
    loader settings (e.g. leetcode's ``signature_hint``).
    """

    name: str
    fields: Any
    options: dict[str, Any]


Loader = Callable[[dict[str, Any], SourceSpec], dict[str, Any]]


def norm_messages(raw: Any) -> list[dict[str, str]]:
    """A conversation column as ``[{role, content}]`` with canonical roles.

    Accepts ``{role, content}`` and ShareGPT's ``{from, value}`` turns (or their JSON
    text); role names go through :data:`ROLE_ALIASES` (``human``/``gpt``/...).  Raises
    :class:`DropRow` when the value is not such a list.
    """
    if isinstance(raw, str):
        raw = json.loads(raw)
    if not isinstance(raw, list) or not raw:
        raise DropRow("messages_not_a_list")
    out = []
    for m in raw:
        if not isinstance(m, dict):
            raise DropRow("message_not_a_mapping")
        role = m.get("role", m.get("from"))
        content = m.get("content", m.get("value"))
        role = ROLE_ALIASES.get(str(role).lower()) if role is not None else None
        if role is None or not isinstance(content, str):
            raise DropRow("message_without_role_or_content")
        out.append({"role": role, "content": content})
    return out


def generic_loader(row: dict[str, Any], src: SourceSpec) -> dict[str, Any]:
    """Map one raw row through ``src.fields``.  Raises :class:`DropRow` with a reason."""
    f = src.fields
    if f is None:
        raise ValueError(f"prompts[{src.name}]: the generic loader needs 'fields'")
    if f.messages is not None:
        if f.messages not in row or row[f.messages] is None:
            raise DropRow(f"missing_field:{f.messages}")
        messages = norm_messages(row[f.messages])
        # We generate the next assistant turn: a trailing assistant turn is the
        # dataset's own answer, not part of the prompt.
        while messages and messages[-1]["role"] == "assistant":
            messages.pop()
    else:
        text = row.get(f.prompt)
        if text is None:
            raise DropRow(f"missing_field:{f.prompt}")
        if not isinstance(text, str):
            raise DropRow(f"not_text:{f.prompt}")
        messages = [{"role": "user", "content": text}]
        if f.system and row.get(f.system):
            messages.insert(0, {"role": "system", "content": str(row[f.system])})
    if not messages or messages[-1]["role"] != "user":
        raise DropRow("no_final_user_turn")
    if not messages[-1]["content"].strip():
        raise DropRow("empty_prompt")

    def opt(name: str | None) -> str | None:
        if name is None:
            return None
        v = row.get(name)
        if v is None:
            return None
        return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)

    out = {"messages": messages, "gold": opt(f.gold), "tests": opt(f.tests),
           "existing_response": opt(f.response)}
    if f.gold and out["gold"] is None:
        raise DropRow(f"missing_field:{f.gold}")
    return out


#: dataset-family loaders by name (recipe ``prompts[i].loader``); the family modules of
#: :mod:`fusedata.sources` add theirs on import.
LOADERS: dict[str, Loader] = {"generic": generic_loader}
