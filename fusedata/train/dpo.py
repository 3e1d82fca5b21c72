"""DPO / LN-DPO on the exported ``dpo`` set with TRL's ``DPOTrainer``.

LN-DPO (the seed's formula, beta / |y| on each log-ratio) is TRL's
``loss_type="sigmoid_norm"``: ``-logsigmoid(beta * (r_w / |y_w| - r_l / |y_l|))``
with |y| the completion's token count (checked in ``DPOTrainer._compute_loss``
of trl 1.16 and by ``tests/test_train.py`` against a hand computation).

The reference log-probs are computed once before training
(``precompute_ref_log_probs=True``), so only the policy is in memory while
training.
"""

from __future__ import annotations

from pathlib import Path

from . import presets as P
from . import require_train
from .run import run_training


def dpo_config(output_dir: str, *, n_rows: int, lr: float | None = None,
               beta: float | None = None, length_normalize: bool | None = None,
               preset: str | None = None, epochs: float = P.DPO_EPOCHS, per_device_batch: int = 2,
               effective_batch: int = P.EFFECTIVE_BATCH, max_length: int = P.MAX_LENGTH,
               max_steps: int = -1, bf16: bool | None = None, seed: int = 0,
               save_steps: int = P.SAVE_STEPS, gradient_checkpointing: bool = True):
    """``DPOConfig`` with the paper's DPO recipe; lr/beta/LN from the preset unless given."""
    require_train()
    from trl import DPOConfig

    p = P.get_preset(preset)
    ln = p.length_normalize if length_normalize is None else length_normalize
    return DPOConfig(
        **P.common_args(output_dir, lr=lr if lr is not None else p.dpo_lr, epochs=epochs,
                        n_rows=n_rows, per_device_batch=per_device_batch,
                        effective_batch=effective_batch, max_steps=max_steps, bf16=bf16,
                        seed=seed, save_steps=save_steps,
                        gradient_checkpointing=gradient_checkpointing),
        beta=beta if beta is not None else p.dpo_beta,
        loss_type=["sigmoid_norm" if ln else "sigmoid"],
        max_length=max_length,
        precompute_ref_log_probs=True,
    )


def train_dpo(out: str | Path, model: str, output_dir: str | Path | None = None, *,
              chat_template: str | None = None, resume: bool = False, **cfg) -> Path:
    """Preference-train ``model`` (the SFT checkpoint) on ``OUT``'s DPO set."""
    require_train()
    from trl import DPOTrainer

    return run_training(
        out, "dpo", model, output_dir, chat_template=chat_template, resume=resume,
        make_config=lambda d, n: dpo_config(d, n_rows=n, **cfg), trainer_cls=DPOTrainer,
        describe=lambda n, a: (
            f"DPO ({a.loss_type[0]}): {n} pairs, lr {a.learning_rate:g}, beta {a.beta:g}, "
            f"per-device batch {a.per_device_train_batch_size} x accumulation "
            f"{a.gradient_accumulation_steps}"))
