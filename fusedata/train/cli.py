"""``fusedata train sft|dpo|wrpo OUT --model PATH``: train on a build's exported sets."""

from __future__ import annotations

import functools
from collections.abc import Callable

import click

from . import presets as P

PRESET_HELP = ("Target family whose row of the FuseChat-3.0 tables to use "
               f"(default {P.DEFAULT_PRESET}). " + "; ".join(
                   f"{n}: SFT lr {p.sft_lr:g}, DPO lr {p.dpo_lr:g} beta {p.dpo_beta:g}"
                   f"{' LN' if p.length_normalize else ''}" for n, p in P.PRESETS.items()))


def _common(fn: Callable) -> Callable:
    """Options every train verb has."""
    opts = [
        click.argument("out", type=click.Path(exists=True, file_okay=False)),
        click.option("--model", required=True,
                     help="Model folder or Hub id to start from (for dpo/wrpo: the SFT output)."),
        click.option("--output-dir", type=click.Path(file_okay=False), default=None,
                     help="Where checkpoints and the final model go (default OUT/checkpoints/VERB)."),
        click.option("--lr", type=float, default=None, help="Learning rate (overrides the preset)."),
        click.option("--epochs", type=float, default=None, help="Epochs (default: the paper's)."),
        click.option("--max-steps", type=int, default=-1, show_default=True,
                     help="Stop after this many optimizer steps (-1: run the epochs)."),
        click.option("--per-device-batch", type=int, default=2, show_default=True,
                     help="Rows per device per forward pass."),
        click.option("--batch-size", "effective_batch", type=int, default=P.EFFECTIVE_BATCH,
                     show_default=True,
                     help="Effective batch, reached by gradient accumulation: "
                          "ceil(min(batch, rows) / (per-device batch x processes)) steps."),
        click.option("--max-length", type=int, default=P.MAX_LENGTH, show_default=True),
        click.option("--save-steps", type=int, default=P.SAVE_STEPS, show_default=True,
                     help="Checkpoint every N steps; the last two are kept."),
        click.option("--bf16/--no-bf16", default=None,
                     help="bf16 mixed precision (default: on exactly when CUDA is available)."),
        click.option("--gradient-checkpointing/--no-gradient-checkpointing", default=True,
                     show_default=True,
                     help="Recompute activations in the backward pass (TRL's default; saves memory)."),
        click.option("--chat-template", type=click.Path(exists=True, dir_okay=False),
                     default=None, help="Jinja chat template file replacing the tokenizer's."),
        click.option("--resume", is_flag=True,
                     help="Continue from the newest checkpoint in the output folder."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("-v", "--verbose", is_flag=True),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _entry(module: str, name: str) -> Callable:
    """``fusedata.train.MODULE.NAME``, or a usage error naming the extra when TRL is missing."""
    import importlib

    try:
        return getattr(importlib.import_module(f"fusedata.train.{module}"), name)
    except ImportError as e:
        raise click.ClickException(str(e)) from None


def _run(fn: Callable, out: str, kw: dict) -> None:
    """Shared body: logging, friendly errors, the final path."""
    from ..logs import setup_logging
    from .data import TrainDataError

    setup_logging(kw.pop("verbose"))
    model = kw.pop("model")
    output_dir = kw.pop("output_dir")
    chat_template = kw.pop("chat_template")
    if kw.get("epochs") is None:
        kw.pop("epochs", None)
    try:
        path = fn(out, model, output_dir, chat_template=chat_template, **kw)
    except (TrainDataError, ImportError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"model saved to {path}")


@click.group()
def train() -> None:
    """Train a target model on a build's output (needs `pip install 'fusedata[train]'`).

    \b
    fusedata train sft  OUT --model BASE --preset llama3.1-8b
    fusedata train dpo  OUT --model OUT/checkpoints/sft --preset llama3.1-8b
    fusedata train wrpo OUT --model OUT/checkpoints/sft

    Reads OUT/data/NAME/*.parquet.  Schedules follow
    FuseChat-3.0: cosine with warmup ratio 0.1, max length 2048, effective batch
    128, checkpoints every 100 steps keeping the last two.
    """


@train.command()
@_common
@click.option("--preset", type=click.Choice(list(P.PRESETS)), default=None, help=PRESET_HELP)
def sft(out: str, preset: str | None, **kw) -> None:
    """Supervised fine-tuning on OUT's SFT set (assistant-only loss, 3 epochs)."""
    _run(functools.partial(_entry("sft", "train_sft"), preset=preset), out, kw)


@train.command()
@_common
@click.option("--preset", type=click.Choice(list(P.PRESETS)), default=None, help=PRESET_HELP)
@click.option("--beta", type=float, default=None, help="DPO beta (overrides the preset).")
@click.option("--length-normalize/--no-length-normalize", default=None,
              help="LN-DPO: beta/|y| on each log-ratio (default: the preset's).")
def dpo(out: str, preset: str | None, beta: float | None, length_normalize: bool | None,
        **kw) -> None:
    """DPO or LN-DPO on OUT's DPO set (1 epoch, precomputed reference log-probs)."""
    _run(functools.partial(_entry("dpo", "train_dpo"), preset=preset, beta=beta,
                           length_normalize=length_normalize), out, kw)


@train.command()
@_common
@click.option("--beta", type=float, default=P.WRPO_BETA, show_default=True)
@click.option("--alpha-max", type=float, default=P.WRPO_ALPHA_MAX, show_default=True,
              help="Weight of the source model's chosen answer at the end of training.")
@click.option("--alpha-schedule", type=click.Choice(["progressive", "fixed"]),
              default="progressive", show_default=True,
              help="progressive: alpha rises linearly 0 -> alpha-max over training; "
                   "fixed: alpha-max throughout.")
def wrpo(out: str, beta: float, alpha_max: float, alpha_schedule: str, **kw) -> None:
    """WRPO on OUT's WRPO triplets (lr 3e-7, 1 epoch by default)."""
    _run(functools.partial(_entry("wrpo", "train_wrpo"), beta=beta, alpha_max=alpha_max,
                           alpha_schedule=alpha_schedule), out, kw)
