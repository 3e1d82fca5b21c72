"""SFT on the exported ``sft`` set with TRL's ``SFTTrainer``.

Assistant-only loss: the loss covers the tokens inside the chat template's
``{% generation %}`` blocks, so the model learns the selected answers, not
the prompts.  The template must have those markers (the tiny stand-in's has;
for a real model, pass ``--chat-template FILE`` with a marked template if its
own lacks them: TRL raises a clear error otherwise).
"""

from __future__ import annotations

from pathlib import Path

from . import presets as P
from . import require_train
from .run import run_training


def sft_config(output_dir: str, *, n_rows: int, lr: float | None = None, preset: str | None = None,
               epochs: float = P.SFT_EPOCHS, per_device_batch: int = 2,
               effective_batch: int = P.EFFECTIVE_BATCH, max_length: int = P.MAX_LENGTH,
               max_steps: int = -1, bf16: bool | None = None, seed: int = 0,
               save_steps: int = P.SAVE_STEPS, gradient_checkpointing: bool = True):
    """``SFTConfig`` with the paper's SFT recipe (lr from the preset unless given)."""
    require_train()
    from trl import SFTConfig

    lr = lr if lr is not None else P.get_preset(preset).sft_lr
    return SFTConfig(
        **P.common_args(output_dir, lr=lr, epochs=epochs, n_rows=n_rows,
                        per_device_batch=per_device_batch, effective_batch=effective_batch,
                        max_steps=max_steps, bf16=bf16, seed=seed, save_steps=save_steps,
                        gradient_checkpointing=gradient_checkpointing),
        max_length=max_length,
        assistant_only_loss=True,
    )


def train_sft(out: str | Path, model: str, output_dir: str | Path | None = None, *,
              chat_template: str | None = None, resume: bool = False, **cfg) -> Path:
    """Fine-tune ``model`` on ``OUT``'s SFT set; saves the final model to ``output_dir``."""
    require_train()
    from trl import SFTTrainer

    return run_training(
        out, "sft", model, output_dir, chat_template=chat_template, resume=resume,
        make_config=lambda d, n: sft_config(d, n_rows=n, **cfg), trainer_cls=SFTTrainer,
        describe=lambda n, a: (
            f"SFT: {n} rows, lr {a.learning_rate:g}, per-device batch "
            f"{a.per_device_train_batch_size} x accumulation {a.gradient_accumulation_steps} "
            f"x {P.world_size()} process(es)"))
