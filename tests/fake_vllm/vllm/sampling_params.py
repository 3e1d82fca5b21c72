"""``vllm.SamplingParams`` look-alike: the fields fusedata sets, validated as vLLM 0.33 does.

Names, defaults and messages follow ``vllm/sampling_params.py``
(``__post_init__``, ``_verify_args``, ``_verify_greedy_sampling``); the real
class is a ``msgspec.Struct``, so every field is a keyword with a default.
``VLLM_MAX_N_SEQUENCES`` is not modelled (default limit only).
"""

from __future__ import annotations

import math

from .exceptions import VLLMValidationError

_SAMPLING_EPS = 1e-5
_MAX_TEMP = 1e-2


class SamplingParams:
    def __init__(self, n: int = 1, repetition_penalty: float = 1.0, temperature: float = 1.0,
                 top_p: float = 1.0, top_k: int = 0, seed: int | None = None,
                 max_tokens: int | None = 16) -> None:
        self.n = n
        self.repetition_penalty = repetition_penalty
        self.temperature = temperature
        self.top_p = top_p
        self.top_k = top_k
        self.seed = seed
        self.max_tokens = max_tokens
        self.__post_init__()

    def __post_init__(self) -> None:
        if 0 < self.temperature < _MAX_TEMP:  # vLLM logs a warning and raises it
            self.temperature = max(self.temperature, _MAX_TEMP)
        if self.seed == -1:
            self.seed = None
        self._verify_args()
        if self.temperature < _SAMPLING_EPS:  # zero temperature means greedy sampling
            self.top_p = 1.0
            self.top_k = 0
            self._verify_greedy_sampling()

    def _verify_args(self) -> None:
        if not isinstance(self.n, int):
            raise VLLMValidationError(f"n must be an int, but is of type {type(self.n)}")
        if self.n < 1:
            raise VLLMValidationError(f"n must be at least 1, got {self.n}.")
        if not math.isfinite(self.repetition_penalty):
            raise VLLMValidationError("repetition_penalty must be a finite number, got "
                                      f"{self.repetition_penalty}.")
        if self.repetition_penalty <= 0.0:
            raise VLLMValidationError("repetition_penalty must be greater than zero, got "
                                      f"{self.repetition_penalty}.")
        if not math.isfinite(self.temperature):
            raise VLLMValidationError(f"temperature must be a finite number, got "
                                      f"{self.temperature}.", parameter="temperature",
                                      value=self.temperature)
        if self.temperature < 0.0:
            raise VLLMValidationError(f"temperature must be non-negative, got "
                                      f"{self.temperature}.", parameter="temperature",
                                      value=self.temperature)
        if self.temperature > 2.0:
            raise VLLMValidationError(f"temperature must be in [0, 2], got {self.temperature}.",
                                      parameter="temperature", value=self.temperature)
        if not 0.0 < self.top_p <= 1.0:
            raise VLLMValidationError(f"top_p must be in (0, 1], got {self.top_p}.",
                                      parameter="top_p", value=self.top_p)
        if self.top_k < -1:
            raise VLLMValidationError(f"top_k must be 0 (disable), or at least 1, got "
                                      f"{self.top_k}.")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise VLLMValidationError(f"max_tokens must be at least 1, got {self.max_tokens}.",
                                      parameter="max_tokens", value=self.max_tokens)

    def _verify_greedy_sampling(self) -> None:
        if self.n > 1:
            raise VLLMValidationError(f"n must be 1 when using greedy sampling, got {self.n}.")
