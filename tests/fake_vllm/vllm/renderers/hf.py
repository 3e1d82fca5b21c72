"""``safe_apply_chat_template`` look-alike, following vLLM 0.33's ``vllm/renderers/hf.py``.

Template source, first hit wins (``resolve_chat_template``): the ``chat_template``
argument, the model's processor (``AutoProcessor``, only when it is a
``ProcessorMixin`` with a ``chat_template``), the tokenizer's, then vLLM's
bundled per-model fallbacks - the fake has none, so it raises where vLLM
would after finding no fallback.  A ``developer`` message becomes ``system``
(and system messages are merged into one at the front) unless the template
mentions the ``developer`` role.  Keyword filtering by template variables
(``resolve_chat_template_kwargs``) is not modelled: the fake passes its
keywords on unchanged.
"""

from __future__ import annotations

from typing import Any

from ..exceptions import VLLMValidationError


class ChatTemplateResolutionError(ValueError):
    pass


def _try_get_processor_chat_template(tokenizer: Any, *, revision: str | None,
                                     code_revision: str | None,
                                     trust_remote_code: bool) -> str | None:
    from transformers import AutoProcessor, ProcessorMixin

    try:
        processor = AutoProcessor.from_pretrained(tokenizer.name_or_path, revision=revision,
                                                  trust_remote_code=trust_remote_code)
    except Exception:
        return None
    if isinstance(processor, ProcessorMixin):
        return getattr(processor, "chat_template", None)
    return None


def resolve_chat_template(tokenizer: Any, chat_template: str | None,
                          tools: list[dict[str, Any]] | None, *,
                          model_config: Any) -> str | None:
    if chat_template is not None:
        return tokenizer.get_chat_template(chat_template, tools=tools)
    if tools is None:
        chat_template = _try_get_processor_chat_template(
            tokenizer, revision=None, code_revision=None,
            trust_remote_code=getattr(model_config, "trust_remote_code", False))
        if chat_template is not None:
            return chat_template
    try:
        return tokenizer.get_chat_template(chat_template, tools=tools)
    except Exception:
        return None


def _detect_developer_role_support(chat_template: str) -> bool:
    return '"developer"' in chat_template or "'developer'" in chat_template


def _convert_developer_to_system(conversation: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for msg in conversation:
        if msg["role"] == "developer":
            msg = {k: v for k, v in msg.items() if k != "tools"} | {"role": "system"}
        out.append(msg)
    return out


def _consolidate_system_messages(conversation: list[dict[str, Any]]) -> list[dict[str, Any]]:
    system = [m for m in conversation if m["role"] == "system"]
    if len(system) <= 1 and (not system or conversation[0]["role"] == "system"):
        return conversation
    text = "\n\n".join(str(m["content"]) for m in system if m.get("content"))
    merged = {"role": "system", "content": text}
    return [merged] + [m for m in conversation if m["role"] != "system"]


def safe_apply_chat_template(model_config: Any, tokenizer: Any,
                             conversation: list[dict[str, Any]], *,
                             tools: list[dict[str, Any]] | None = None,
                             chat_template: str | None = None, tokenize: bool = True,
                             **kwargs: Any) -> str | list[int]:
    chat_template = resolve_chat_template(tokenizer, chat_template=chat_template, tools=tools,
                                          model_config=model_config)
    if chat_template is None:
        raise ChatTemplateResolutionError(
            "As of transformers v4.44, default chat template is no longer allowed, so you "
            "must provide a chat template if the tokenizer does not define one.")
    if any(m["role"] == "developer" for m in conversation) and not \
            _detect_developer_role_support(chat_template):
        conversation = _consolidate_system_messages(_convert_developer_to_system(conversation))
    if tokenize and "return_dict" not in kwargs:
        kwargs["return_dict"] = False
    try:
        return tokenizer.apply_chat_template(conversation=conversation, tools=tools,
                                             chat_template=chat_template, tokenize=tokenize,
                                             **kwargs)
    except Exception as e:
        raise VLLMValidationError(str(e)) from e
