"""Device, dtype and logging choices for transformers models, shared by every stage that loads one.

Sampling (``backends/hf.py``) and reward scoring (``score.py``) both load transformers models;
these helpers live outside both so that neither stage imports the other
(``tests/test_structure.py``).
"""

from __future__ import annotations

from typing import Any


def quiet_transformers() -> None:
    """transformers' per-file progress bars and warnings drown the stage progress bars."""
    from transformers.utils import logging as tlog

    tlog.disable_progress_bar()
    tlog.set_verbosity_error()


def resolve_device(device: str) -> str:
    """``auto`` means the first GPU when torch sees one, else the CPU."""
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str, device: str) -> Any:
    """``auto`` is bf16 on CUDA and fp32 elsewhere (CPU bf16 matmuls are slow and lossy)."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)
