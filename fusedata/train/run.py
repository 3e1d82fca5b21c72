"""The training run shared by ``train sft|dpo|wrpo``: load the set, configure, train, save.

SFT, DPO and WRPO differ only in the set they read, the config they build and the
trainer class; everything around that (tokenizer with an optional chat template,
resuming from the newest checkpoint, saving model and tokenizer) lives here once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def run_training(out: str | Path, name: str, model: str, output_dir: str | Path | None, *,
                 make_config: Callable[[str, int], Any], trainer_cls: type,
                 describe: Callable[[int, Any], str], chat_template: str | None = None,
                 resume: bool = False) -> Path:
    """Train ``model`` on ``OUT``'s set ``name``; returns the folder the model is saved in.

    ``make_config(output_dir, n_rows)`` builds the trainer's arguments; ``describe(n_rows,
    args)`` is the one log line saying what is about to run.  Default output folder:
    ``OUT/checkpoints/NAME``.
    """
    output_dir = Path(output_dir or Path(out) / "checkpoints" / name)
    ds = load_set(out, name)
    args = make_config(str(output_dir), len(ds))
    log.info("%s", describe(len(ds), args))
    tok = load_tokenizer(model, chat_template)
    trainer = trainer_cls(model=model, args=args, train_dataset=ds, processing_class=tok)
    return finish(trainer, tok, output_dir, resume)
