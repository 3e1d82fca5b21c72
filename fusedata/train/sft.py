"""SFT on the exported ``sft`` set with TRL's ``SFTTrainer``.

Assistant-only loss: the loss covers the tokens inside the chat template's
``{% generation %}`` blocks, so the model learns the selected answers, not
the prompts.  The template must have those markers (the tiny stand-in's has;
for a real model, pass ``--chat-template FILE`` with a marked template if its
own lacks them: TRL raises a clear error otherwise).
"""

from __future__ import annotations

import logging
from pathlib import Path

from . import presets as P
from . import require_train
from .data import load_set

log = logging.getLogger("fusedata")


def load_tokenizer(model: str, chat_template: str | None = None):
    """The model's tokenizer, optionally with a chat template read from a file."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    if chat_template:
        tok.chat_template = Path(chat_template).read_text()
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def finish(trainer, tok, output_dir: Path, resume: bool) -> Path:
    """Train (resuming from the newest checkpoint in ``output_dir`` if asked), save model + tokenizer.

    Checkpoints are written every ``save_steps``; ``resume`` picks up after the
    last one, so a killed run loses at most ``save_steps`` steps.
    """
    ckpt = None
    if resume:
        from transformers.trainer_utils import get_last_checkpoint

        ckpt = get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
        if ckpt:
            log.info("resuming from %s", ckpt)
        else:
            log.info("no checkpoint in %s: starting from the beginning", output_dir)
    trainer.train(resume_from_checkpoint=ckpt)
    trainer.save_model(str(output_dir))
    tok.save_pretrained(str(output_dir))
    return output_dir


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

    output_dir = Path(output_dir or Path(out) / "checkpoints" / "sft")
    ds = load_set(out, "sft")
    args = sft_config(str(output_dir), n_rows=len(ds), **cfg)
    log.info("SFT: %d rows, lr %g, per-device batch %d x accumulation %d x %d process(es)",
             len(ds), args.learning_rate, args.per_device_train_batch_size,
             args.gradient_accumulation_steps, P.world_size())
    tok = load_tokenizer(model, chat_template)
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
    return finish(trainer, tok, output_dir, resume)
