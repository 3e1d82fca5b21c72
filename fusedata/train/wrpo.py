"""WRPO (Weighted-Reward Preference Optimization, arXiv 2412.03187) on TRL's DPOTrainer.

Each example is a triplet: ``chosen_source`` (y_ws, the best source-model
answer), ``chosen_target`` (y_wt, the best answer of the target model itself)
and ``rejected`` (y_l).  With r(y) = log pi(y|x) - log pi_ref(y|x) (summed over
the completion's tokens) the loss is

    -log sigmoid(beta * [alpha * r(y_ws) + (1 - alpha) * r(y_wt) - r(y_l)])

and alpha rises linearly from 0 to ``alpha_max`` over the run (progressive
adaptation: first learn from the target's own good answers, then shift to the
source models') or stays at ``alpha_max`` (``alpha_schedule="fixed"``).
With alpha = 0 this is DPO on (y_wt, y_l).

What changes relative to ``DPOTrainer``: the tokenisation (three
completions), the collator (batch laid out as [y_ws; y_wt; y_l]), the
reference pass (three log-probs) and the loss.  Everything else (schedule,
checkpointing, precomputed reference log-probs, accelerate) is TRL's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from . import require_train

require_train()

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from trl import DPOConfig, DPOTrainer  # noqa: E402
from trl.data_utils import _tokenize, common_prefix_length, is_conversational  # noqa: E402
from trl.models import prepare_deepspeed  # noqa: E402
from trl.models.utils import disable_gradient_checkpointing  # noqa: E402
from trl.trainer.dpo_trainer import DataCollatorForPreference  # noqa: E402
from trl.trainer.utils import pad  # noqa: E402

#: Completion columns, in the order they are stacked in a batch.
COMPLETIONS = ("chosen_source", "chosen_target", "rejected")
SCHEDULES = ("progressive", "fixed")


def alpha_at(step: int, total_steps: int, alpha_max: float, schedule: str = "progressive") -> float:
    """alpha at optimizer step ``step`` of ``total_steps``: linear 0 -> alpha_max, or fixed."""
    if schedule == "fixed":
        return alpha_max
    if schedule != "progressive":
        raise ValueError(f"alpha_schedule must be one of {SCHEDULES}, got {schedule!r}")
    if total_steps <= 0:
        return alpha_max
    return alpha_max * min(max(step, 0) / total_steps, 1.0)


def wrpo_loss(r_source: torch.Tensor, r_target: torch.Tensor, r_rejected: torch.Tensor,
              beta: float, alpha: float) -> torch.Tensor:
    """Per-example WRPO loss from the three policy-vs-reference log-ratios."""
    return -F.logsigmoid(beta * (alpha * r_source + (1 - alpha) * r_target - r_rejected))


@dataclass
class WRPOConfig(DPOConfig):
    """``DPOConfig`` plus WRPO's fusion coefficient; defaults follow the paper."""

    beta: float = field(default=0.01, metadata={"help": "WRPO beta (paper: 0.01)."})
    alpha_max: float = field(default=0.1, metadata={"help": "Final / fixed alpha (paper: 0.1)."})
    alpha_schedule: str = field(default="progressive",
                                metadata={"help": "progressive (0 -> alpha_max) or fixed."})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.alpha_schedule not in SCHEDULES:
            raise ValueError(f"alpha_schedule must be one of {SCHEDULES}, got "
                             f"{self.alpha_schedule!r}")
        if not 0.0 <= self.alpha_max <= 1.0:
            raise ValueError(f"alpha_max must be in [0, 1], got {self.alpha_max}")


@dataclass
class DataCollatorForWRPO(DataCollatorForPreference):
    """Pads triplets into one batch of 3B rows: [y_ws rows; y_wt rows; y_l rows]."""

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        ids, masks = [], []
        for name in COMPLETIONS:
            for ex in examples:
                ids.append(ex["prompt_ids"] + ex[f"{name}_ids"])
                masks.append([0] * len(ex["prompt_ids"]) + [1] * len(ex[f"{name}_ids"]))
        if self.max_length is not None:
            sl = (slice(None, self.max_length) if self.truncation_mode == "keep_start"
                  else slice(-self.max_length, None))
            ids, masks = [i[sl] for i in ids], [m[sl] for m in masks]
        kw = dict(padding_side="right", pad_to_multiple_of=self.pad_to_multiple_of)
        out = {
            "input_ids": pad([torch.tensor(i) for i in ids], padding_value=self.pad_token_id,
                             **kw),
            "attention_mask": pad([torch.ones(len(i), dtype=torch.long) for i in ids],
                                  padding_value=0, **kw),
            "completion_mask": pad([torch.tensor(m, dtype=torch.long) for m in masks],
                                   padding_value=0, **kw),
        }
        for name in COMPLETIONS:
            key = f"ref_{name}_logps"
            if key in examples[0]:
                # float64: summed log-probs are large, and float32 would round the small
                # log-ratios computed from them
                out[key] = torch.tensor([ex[key] for ex in examples], dtype=torch.float64)
        return out


class WRPOTrainer(DPOTrainer):
    """DPOTrainer whose examples are (prompt, y_ws, y_wt, y_l) triplets and whose loss is WRPO."""

    _tag_names = ["trl", "wrpo", "fusedata"]
    _name = "WRPO"

    def __init__(self, model, ref_model=None, args: WRPOConfig | None = None,
                 data_collator=None, train_dataset=None, processing_class=None, **kw):
        if args is None or not isinstance(args, WRPOConfig):
            raise TypeError("WRPOTrainer needs a WRPOConfig")
        if args.ld_alpha is not None or args.f_divergence_type != "reverse_kl" or \
                args.use_weighting or list(args.loss_type) != ["sigmoid"]:
            raise ValueError("WRPOTrainer implements only its own loss: leave loss_type, "
                             "ld_alpha, f_divergence_type and use_weighting at their defaults")
        if data_collator is None and processing_class is not None:
            tok = getattr(processing_class, "tokenizer", processing_class)
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            data_collator = DataCollatorForWRPO(
                pad_token_id=tok.pad_token_id, max_length=args.max_length,
                truncation_mode=args.truncation_mode, pad_to_multiple_of=args.pad_to_multiple_of)
        if data_collator is None:
            raise ValueError("WRPOTrainer needs processing_class (the tokenizer)")
        super().__init__(model, ref_model=ref_model, args=args, data_collator=data_collator,
                         train_dataset=train_dataset, processing_class=processing_class, **kw)

    # -- data -------------------------------------------------------------
    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        """Tokenise prompt + each completion; the completion starts after the common prefix."""
        first = next(iter(dataset))
        if "prompt_ids" in first:
            return dataset
        missing = [c for c in ("prompt", *COMPLETIONS) if c not in first]
        if missing:
            raise ValueError(f"WRPO {dataset_name} dataset lacks column(s) {', '.join(missing)}")
        eos = self._tokenizer.eos_token

        def tokenize(example):
            if is_conversational(example):
                prompt_ids = _tokenize(processing_class, example["prompt"],
                                       add_generation_prompt=True)["input_ids"]
                full = {c: _tokenize(processing_class, example["prompt"] + example[c])["input_ids"]
                        for c in COMPLETIONS}
            else:
                prompt_ids = _tokenize(processing_class, example["prompt"])["input_ids"]
                full = {c: _tokenize(processing_class, example["prompt"] + (
                    example[c] if example[c].endswith(eos) else example[c] + eos))["input_ids"]
                    for c in COMPLETIONS}
            n = min(common_prefix_length(prompt_ids, f) for f in full.values())
            return {"prompt_ids": prompt_ids[:n], **{f"{c}_ids": f[n:] for c, f in full.items()}}

        kw = {"num_proc": args.dataset_num_proc, "desc": f"Tokenizing {dataset_name} triplets"}
        dataset = dataset.map(tokenize, **kw)
        if args.max_length is not None and args.truncation_mode == "keep_start":
            # a prompt filling max_length leaves no completion token to learn from
            n = len(dataset)
            dataset = dataset.filter(lambda ex: len(ex["prompt_ids"]) < args.max_length,
                                     num_proc=args.dataset_num_proc)
            if len(dataset) < n:
                logging.getLogger("fusedata").warning(
                    "WRPO %s: dropped %d of %d triplets whose prompt alone has >= %d tokens "
                    "(max_length)", dataset_name, n - len(dataset), n, args.max_length)
        return dataset

    def _set_signature_columns_if_needed(self):
        if self._signature_columns is None:
            self._signature_columns = ["prompt_ids"] + [f"{c}_ids" for c in COMPLETIONS] + [
                f"ref_{c}_logps" for c in COMPLETIONS]

    # -- reference --------------------------------------------------------
    def compute_ref_log_probs(self, model, inputs):
        """Summed reference log-probs of one padded batch, as (y_ws, y_wt, y_l)."""
        model_kwargs = {k: inputs[k] for k in ("input_ids", "attention_mask")}
        labels = inputs["input_ids"].masked_fill(inputs["completion_mask"] == 0, -100)
        with (torch.no_grad(), self.accelerator.autocast(),
              disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs)):
            logps = model(**model_kwargs, labels=labels, use_cache=False,
                          fused_lm_head=True).log_probs
        return logps.sum(dim=1).chunk(3, dim=0)

    def _precompute_ref_logps(self, dataset, name: str, batch_size: int):
        """One pass of the frozen initial model over the set; adds ``ref_*_logps`` columns."""
        loader = self.accelerator.prepare(DataLoader(
            dataset, batch_size=batch_size, collate_fn=self.data_collator, shuffle=False,
            num_workers=self.args.dataloader_num_workers))
        if self.ref_model is None and self.is_deepspeed_enabled:
            # as DPOTrainer: ZeRO parameters are not placed yet, wrap them for inference once
            if self._precompute_engine is None:
                self._precompute_engine = prepare_deepspeed(self.model, self.accelerator)
            model = self._precompute_engine
        else:
            model = self.ref_model or self.model
        was_training = model.training
        model.eval()
        cols: list[list[torch.Tensor]] = [[], [], []]
        for batch in loader:
            parts = self.compute_ref_log_probs(model, batch)
            parts = self.accelerator.gather_for_metrics(tuple(parts))
            for acc, p in zip(cols, parts, strict=True):
                acc.append(p.double().cpu())
        model.train(was_training)
        for c, acc in zip(COMPLETIONS, cols, strict=True):
            dataset = dataset.add_column(f"ref_{c}_logps", torch.cat(acc).tolist())
        return dataset

    # -- loss -------------------------------------------------------------
    def current_alpha(self) -> float:
        """alpha for the optimizer step being taken now."""
        return alpha_at(self.state.global_step, self.state.max_steps, self.args.alpha_max,
                        self.args.alpha_schedule)

    def _compute_loss(self, model, inputs, return_outputs):
        mode = "train" if self.model.training else "eval"
        labels = inputs["input_ids"].masked_fill(inputs["completion_mask"] == 0, -100)
        outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                        labels=labels, use_cache=False, fused_lm_head=True)
        seq_len = inputs["completion_mask"].size(1) - 1
        logps = outputs.log_probs[:, -seq_len:].sum(dim=1)
        pol_ws, pol_wt, pol_l = logps.chunk(3, dim=0)
        if self.precompute_ref_logps:
            ref_ws, ref_wt, ref_l = (inputs[f"ref_{c}_logps"].to(logps.device, torch.float64)
                                     for c in COMPLETIONS)
        else:
            ref_ws, ref_wt, ref_l = self.compute_ref_log_probs(self.ref_model, inputs)
        r_ws, r_wt, r_l = pol_ws - ref_ws, pol_wt - ref_wt, pol_l - ref_l
        alpha = self.current_alpha()
        loss = wrpo_loss(r_ws, r_wt, r_l, self.beta, alpha).mean().to(logps.dtype)

        m = self._metrics[mode]
        gather = self.accelerator.gather_for_metrics
        m["alpha"].append(alpha)
        for key, val in (("rewards/chosen_source", r_ws), ("rewards/chosen_target", r_wt),
                         ("rewards/rejected", r_l)):
            m[key].append(gather(self.beta * val.detach()).mean().item())
        fused = alpha * r_ws.detach() + (1 - alpha) * r_wt.detach()
        m["rewards/margins"].append(gather(self.beta * (fused - r_l.detach())).mean().item())
        m["rewards/accuracies"].append(gather((fused > r_l.detach()).float()).mean().item())
        if return_outputs:
            with torch.no_grad():
                outputs = model(input_ids=inputs["input_ids"],
                                attention_mask=inputs["attention_mask"])
            return loss, outputs
        return loss


def wrpo_config(output_dir: str, *, n_rows: int, lr: float | None = None,
                beta: float | None = None, alpha_max: float | None = None,
                alpha_schedule: str = "progressive", epochs: float | None = None,
                per_device_batch: int = 2, effective_batch: int | None = None,
                max_length: int | None = None, max_steps: int = -1, bf16: bool | None = None,
                seed: int = 0, save_steps: int | None = None,
                gradient_checkpointing: bool = True) -> WRPOConfig:
    """``WRPOConfig`` with the paper's settings (lr 3e-7, beta 0.01, alpha_max 0.1, 1 epoch)."""
    from . import presets as P

    return WRPOConfig(
        **P.common_args(output_dir, lr=P.WRPO_LR if lr is None else lr,
                        epochs=P.WRPO_EPOCHS if epochs is None else epochs, n_rows=n_rows,
                        per_device_batch=per_device_batch,
                        effective_batch=effective_batch or P.EFFECTIVE_BATCH,
                        max_steps=max_steps, bf16=bf16, seed=seed,
                        save_steps=save_steps or P.SAVE_STEPS,
                        gradient_checkpointing=gradient_checkpointing),
        beta=P.WRPO_BETA if beta is None else beta,
        alpha_max=P.WRPO_ALPHA_MAX if alpha_max is None else alpha_max,
        alpha_schedule=alpha_schedule,
        max_length=max_length or P.MAX_LENGTH,
        precompute_ref_log_probs=True,
    )


def train_wrpo(out, model: str, output_dir=None, *, chat_template: str | None = None,
               resume: bool = False, **cfg):
    """WRPO-train ``model`` (the SFT checkpoint) on ``OUT``'s WRPO triplets."""
    from .run import run_training

    return run_training(
        out, "wrpo", model, output_dir, chat_template=chat_template, resume=resume,
        make_config=lambda d, n: wrpo_config(d, n_rows=n, **cfg), trainer_cls=WRPOTrainer,
        describe=lambda n, a: (
            f"WRPO: {n} triplets, lr {a.learning_rate:g}, beta {a.beta:g}, alpha "
            f"{a.alpha_schedule} to {a.alpha_max:g}"))


__all__ = ["WRPOConfig", "WRPOTrainer", "DataCollatorForWRPO", "alpha_at", "wrpo_loss",
           "wrpo_config", "train_wrpo"]
