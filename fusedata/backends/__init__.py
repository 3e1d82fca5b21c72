"""Sampler backends: things that turn prompts into responses.

Each backend implements :class:`~fusedata.backends.base.Sampler`.  Heavy
engines are imported only when a recipe uses them, and a missing optional
dependency names the extra to install (``pip install 'fusedata[vllm]'``).
"""

from __future__ import annotations

import importlib

from ..recipe import ModelSpec
from .base import Generation, Request, Sampler

#: recipe ``backend`` -> "module:Class" (imported lazily)
BACKENDS: dict[str, str] = {
    "transformers": "fusedata.backends.hf:TransformersSampler",
    "vllm": "fusedata.backends.vllm:VLLMSampler",
    "openai": "fusedata.backends.openai_http:OpenAISampler",
    "import": "fusedata.backends.imported:ImportSampler",
}


def get_sampler(spec: ModelSpec) -> Sampler:
    target = BACKENDS.get(spec.backend)
    if target is None:
        raise ValueError(f"model {spec.name!r}: backend {spec.backend!r} is not available; "
                         f"known: {', '.join(sorted(BACKENDS))}")
    mod, cls = target.split(":")
    return getattr(importlib.import_module(mod), cls)(spec)


__all__ = ["BACKENDS", "Generation", "Request", "Sampler", "get_sampler"]
