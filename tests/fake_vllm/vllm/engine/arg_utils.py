"""``EngineArgs`` look-alike: a dataclass, so an unknown keyword raises ``TypeError``.

Holds the subset of vLLM 0.33's ``EngineArgs`` fields that fusedata and its
tests pass (``benchmarks/vllm_contract.py`` checks each exists in the real
class with the same default where the default is a literal).  A real field
missing here is a ``TypeError`` in tests only: add it here when a recipe
needs it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EngineArgs:
    model: str = "Qwen/Qwen3-0.6B"
    tokenizer: str | None = None
    trust_remote_code: bool = False
    dtype: str = "auto"
    seed: int = 0
    max_model_len: int | None = None
    tensor_parallel_size: int = 1
    enable_prefix_caching: bool | None = None
    gpu_memory_utilization: float = 0.92
    enforce_eager: bool = False
    quantization: str | None = None
    disable_log_stats: bool = False
