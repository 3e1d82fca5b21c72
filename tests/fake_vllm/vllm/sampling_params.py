from __future__ import annotations


class SamplingParams:
    """The fields fusedata sets; names and defaults as in vllm.SamplingParams."""

    def __init__(self, n: int = 1, repetition_penalty: float = 1.0, temperature: float = 1.0,
                 top_p: float = 1.0, top_k: int = 0, seed: int | None = None,
                 max_tokens: int | None = 16) -> None:
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}.")
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}.")
        if max_tokens is not None and max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {max_tokens}.")
        self.n = n
        self.repetition_penalty = repetition_penalty
        self.temperature = temperature
        self.top_p = top_p
        self.top_k = top_k
        self.seed = seed
        self.max_tokens = max_tokens
