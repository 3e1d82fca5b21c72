"""The ``select`` stage: SFT targets and DPO pairs from scored, verified responses.

Rules (FuseChat-3.0, "Data Construction"):

* **split**: each prompt goes to SFT or DPO, deterministically by
  ``hash(seed, prompt_id)`` against the category's ``sft`` ratio (4:6 for
  instruction following).
* **eligible** response: scored, not truncated, no backend error; for math it
  must be verified ``correct``, for code ``passed``.
* **SFT record**: the highest-scoring eligible response across source models.
* **DPO pair**: from one source model: chosen = its highest-scoring eligible
  response, rejected = its lowest-scoring response (math/code: a failing one);
  the margin ``chosen - rejected`` must lie in ``selection.margin``.  Among
  models with a valid pair, the one with the highest chosen score supplies it.

Everything is polars expressions over the whole table (group by prompt and
model, rank by score); every prompt that yields no record gets a reason in the
``drops`` table.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from .engine import Dataset, ReduceStage
from .recipe import Selection
from .records import PASSING_VERDICTS

VERIFIED = ("math", "code")


def split_expr(seed: int, sft_ratio: pl.Expr) -> pl.Expr:
    """True where a prompt goes to SFT: a seeded hash of its id, uniform in [0, 1)."""
    h = pl.concat_str(pl.lit(f"{seed}:"), pl.col("prompt_id")).hash(seed=0)
    return (h % 1_000_000).cast(pl.Float64) / 1_000_000 < sft_ratio


def eligible_expr() -> pl.Expr:
    ok = (pl.col("score").is_not_null() & pl.col("score").is_not_nan()
          & ~pl.col("truncated") & (pl.col("finish_reason") != "error"))
    verified = pl.col("category").is_in(VERIFIED)
    return ok & (~verified | pl.col("verdict").is_in(PASSING_VERDICTS).fill_null(False))


class SelectStage(ReduceStage):
    name = "select"
    version = "1"

    def __init__(self, cfg: Selection):
        self.cfg = cfg

    def fingerprint(self) -> Any:
        return self.cfg.model_dump(mode="json")

    def reduce(self, inputs: dict[str, Dataset]) -> dict[str, pl.DataFrame]:
        frames = [d.read() for k, d in sorted(inputs.items()) if k.startswith("responses:")]
        resp = pl.concat(frames, how="vertical_relaxed")
        resp = resp.filter(pl.col("role") == "source").with_columns(eligible=eligible_expr())
        prompts = resp.select("prompt_id", "category").unique(maintain_order=True)
        cats = prompts["category"].unique().to_list()
        ratio = pl.col("category").replace_strict(
            {c: self.cfg.rule_for(c).sft for c in cats}, default=0.4, return_dtype=pl.Float64)
        prompts = prompts.with_columns(to_sft=split_expr(self.cfg.seed, ratio))
        resp = resp.join(prompts.select("prompt_id", "to_sft"), on="prompt_id")
        lo, hi = self.cfg.margin
        cols = ["prompt_id", "category", "source"]

        # --- SFT: best eligible response across source models
        sft_resp = resp.filter(pl.col("to_sft"))
        best = (sft_resp.filter(pl.col("eligible"))
                .sort(["score", "response_id"], descending=[True, False])
                .group_by("prompt_id", maintain_order=True).first())
        sft = best.select(*cols, "model", "response_id", "response", "score")

        # --- DPO: per (prompt, model) best eligible vs worst
        dpo_resp = resp.filter(~pl.col("to_sft") & pl.col("score").is_not_null()
                               & pl.col("score").is_not_nan())
        chosen = (dpo_resp.filter(pl.col("eligible"))
                  .sort(["score", "response_id"], descending=[True, False])
                  .group_by(["prompt_id", "model"], maintain_order=True).first()
                  .select(*cols, "model", chosen_id="response_id", chosen="response",
                          score_chosen="score"))
        # math/code: the rejected response must be a failing one
        rej_cands = (dpo_resp.filter(~pl.col("category").is_in(VERIFIED) | ~pl.col("eligible"))
                     .select("prompt_id", "model", rejected_id="response_id",
                             rejected="response", score_rejected="score"))
        cands = (chosen.join(rej_cands, on=["prompt_id", "model"], how="inner")
                 .filter(pl.col("chosen_id") != pl.col("rejected_id"))
                 .with_columns(margin=pl.col("score_chosen") - pl.col("score_rejected"))
                 .sort(["score_rejected", "rejected_id"]))
        # the extreme pair (lowest-scored rejected) decides the drop reason
        pairs = cands.group_by(["prompt_id", "model"], maintain_order=True).first()
        in_window = pl.col("margin").is_between(lo, hi)
        if self.cfg.window_policy == "strict":
            valid = pairs.filter(in_window)
        else:  # nearest: the lowest-scored rejected candidate whose margin is in the window
            valid = cands.filter(in_window).group_by(["prompt_id", "model"],
                                                     maintain_order=True).first()
        dpo = (valid.sort(["score_chosen", "model"], descending=[True, False])
               .group_by("prompt_id", maintain_order=True).first())

        # --- drop reasons, one per prompt without a record
        sft_p = prompts.filter(pl.col("to_sft"))
        dpo_p = prompts.filter(~pl.col("to_sft"))
        sft_drops = sft_p.join(sft, on="prompt_id", how="anti").select(
            "prompt_id", "category", split=pl.lit("sft"), reason=pl.lit("no_eligible_response"))
        best_margin = pairs.group_by("prompt_id").agg(pl.col("margin").max().alias("m"))
        dpo_drops = (dpo_p.join(dpo, on="prompt_id", how="anti")
                     .join(best_margin, on="prompt_id", how="left")
                     .select("prompt_id", "category", split=pl.lit("dpo"),
                             reason=pl.when(pl.col("m").is_null()).then(pl.lit("no_valid_pair"))
                             .when(pl.col("m") < lo).then(pl.lit("margin_below"))
                             .otherwise(pl.lit("margin_above"))))
        return {
            "sft": sft.sort("prompt_id"),
            "dpo": dpo.select(*cols, "model", "chosen_id", "chosen", "score_chosen",
                              "rejected_id", "rejected", "score_rejected", "margin"
                              ).sort("prompt_id"),
            "drops": pl.concat([sft_drops, dpo_drops]).sort("prompt_id"),
        }

    def summarize_tables(self, tables: dict[str, pl.DataFrame]) -> str:
        d = tables["drops"]
        if d.height == 0:
            return "no prompt dropped"
        c = d.group_by("split", "reason").len().sort("split", "reason")
        return "dropped: " + ", ".join(f"{s}/{r} {n}" for s, r, n in c.iter_rows())
