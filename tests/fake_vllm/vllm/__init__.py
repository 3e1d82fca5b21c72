"""Fake vLLM for tests (see ../README.md): vLLM 0.33's names and checks, seeded random tokens."""

from __future__ import annotations

from .entrypoints.llm import LLM
from .outputs import CompletionOutput, RequestOutput
from .sampling_params import SamplingParams

__version__ = "0.0.0+fake"
__all__ = ["LLM", "CompletionOutput", "RequestOutput", "SamplingParams"]
