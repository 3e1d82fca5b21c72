"""Hyperparameters from FuseChat-3.0's training tables, and the shared schedule.

SFT (LLaMA-Factory in the paper): 3 epochs, batch 128, max length 2048, cosine
schedule with warmup ratio 0.1; per-family learning rate.  DPO
(alignment-handbook): 1 epoch, max length 2048, cosine, warmup 0.1,
checkpoints every 100 steps (the paper picks the best of the last two, so we
keep two); per-family learning rate, beta and length normalisation (LN-DPO).
WRPO (arXiv 2412.03187): beta 0.01, alpha_max 0.1, lr 3e-7, 1 epoch.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """One target family's row of the seed's SFT and DPO tables."""

    sft_lr: float
    dpo_lr: float
    dpo_beta: float
    length_normalize: bool


PRESETS: dict[str, Preset] = {
    "llama3.1-8b": Preset(sft_lr=5e-6, dpo_lr=8e-7, dpo_beta=10.0, length_normalize=True),
    "qwen2.5-7b": Preset(sft_lr=2e-6, dpo_lr=3e-7, dpo_beta=0.01, length_normalize=False),
    "gemma2-9b": Preset(sft_lr=2e-6, dpo_lr=5e-7, dpo_beta=0.01, length_normalize=False),
    "llama3.2-1b": Preset(sft_lr=5e-6, dpo_lr=1e-6, dpo_beta=10.0, length_normalize=True),
    "llama3.2-3b": Preset(sft_lr=5e-6, dpo_lr=1e-6, dpo_beta=10.0, length_normalize=True),
}

#: Used when no ``--preset`` is given (the Llama-3.1-8B row; override with --lr/--beta).
DEFAULT_PRESET = "llama3.1-8b"

MAX_LENGTH = 2048
EFFECTIVE_BATCH = 128
WARMUP_RATIO = 0.1
SCHEDULER = "cosine"
SAVE_STEPS = 100
SAVE_TOTAL_LIMIT = 2
SFT_EPOCHS = 3
DPO_EPOCHS = 1
WRPO_EPOCHS = 1
WRPO_LR = 3e-7
WRPO_BETA = 0.01
WRPO_ALPHA_MAX = 0.1


def get_preset(name: str | None) -> Preset:
    """The named preset (``None``: the default one); unknown names list the choices."""
    key = name or DEFAULT_PRESET
    if key not in PRESETS:
        raise ValueError(f"unknown preset {key!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[key]


def presets_table() -> str:
    """The presets as text lines, for ``--help``."""
    rows = []
    for name, p in PRESETS.items():
        rows.append(f"{name}: SFT lr {p.sft_lr:g}; DPO lr {p.dpo_lr:g}, beta {p.dpo_beta:g}"
                    f"{', length-normalised' if p.length_normalize else ''}")
    return "\n".join(rows)


def world_size() -> int:
    """Number of training processes (``WORLD_SIZE`` as set by accelerate/torchrun)."""
    return max(1, int(os.environ.get("WORLD_SIZE", "1")))


def accumulation_steps(n_rows: int, per_device_batch: int, effective_batch: int = EFFECTIVE_BATCH,
                       n_processes: int | None = None) -> int:
    """Gradient-accumulation steps that give an effective batch of ``effective_batch``.

    ``ceil(min(effective_batch, n_rows) / (per_device_batch * processes))``: the
    target is capped at the dataset size, so a set smaller than one effective
    batch (the tiny test sets) still makes one optimizer step per epoch over
    all its rows instead of accumulating over batches that do not exist.
    At least 1.  Example: 128 target, 8 rows/device, 4 GPUs -> 4 steps; a
    20-row set with 2 rows/device on 1 process -> 10 steps (batch 20).
    """
    if n_rows < 1 or per_device_batch < 1 or effective_batch < 1:
        raise ValueError("n_rows, per_device_batch and effective_batch must be >= 1")
    procs = n_processes if n_processes is not None else world_size()
    return max(1, math.ceil(min(effective_batch, n_rows) / (per_device_batch * procs)))


def use_bf16(flag: bool | None) -> bool:
    """bf16 when asked, or by default exactly when CUDA is available (CPU trains in fp32)."""
    if flag is not None:
        return flag
    import torch

    return bool(torch.cuda.is_available())


def _warmup() -> dict:
    """Warmup ratio 0.1: ``warmup_steps`` as a float in transformers 5, ``warmup_ratio`` before."""
    import dataclasses

    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    return {"warmup_ratio": WARMUP_RATIO} if "warmup_ratio" in names else {
        "warmup_steps": WARMUP_RATIO}


def common_args(output_dir: str, *, lr: float, epochs: float, n_rows: int, per_device_batch: int,
                effective_batch: int, max_steps: int, bf16: bool | None, seed: int,
                save_steps: int, gradient_checkpointing: bool) -> dict:
    """TrainingArguments shared by the three trainers (schedule, checkpoints, precision)."""
    return dict(
        output_dir=output_dir,
        learning_rate=lr,
        num_train_epochs=epochs,
        max_steps=max_steps,
        per_device_train_batch_size=per_device_batch,
        gradient_accumulation_steps=accumulation_steps(n_rows, per_device_batch, effective_batch),
        lr_scheduler_type=SCHEDULER,
        **_warmup(),
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=SAVE_TOTAL_LIMIT,
        bf16=use_bf16(bf16),
        seed=seed,
        data_seed=seed,
        logging_steps=1,
        report_to="none",
        dataloader_num_workers=0,
        gradient_checkpointing=gradient_checkpointing,
    )
