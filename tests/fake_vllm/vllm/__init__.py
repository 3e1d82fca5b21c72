"""Fake vLLM for tests (see ../README.md): same call signatures, seeded random tokens."""

from __future__ import annotations

from .entrypoints import LLM
from .outputs import CompletionOutput, RequestOutput
from .sampling_params import SamplingParams

__version__ = "0.0.0+fake"
__all__ = ["LLM", "CompletionOutput", "RequestOutput", "SamplingParams"]
