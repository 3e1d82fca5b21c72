"""The ``score`` stage: a reward model's scalar for every response.

Any ``AutoModelForSequenceClassification`` reward model works (Skywork-Reward,
InternLM2-Reward, ...); models with custom heads such as ArmoRM return an
object whose ``score`` attribute holds the reward: set ``output: score`` and
``trust_remote_code: true``.  (Loading ArmoRM through a generic class instead
of its own code gives wrong rewards.)

The prompt messages plus the response are formatted with the RM tokenizer's
chat template.  Inputs longer than ``max_length`` are cut from
``truncation_side`` and flagged ``score_truncated``.  Batches are built by a
token budget over length-sorted inputs, so a batch of short answers is not
padded to the length of one long one; scores come back in input order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import polars as pl

from .engine import Dataset, Stage
from .recipe import RewardModelSpec
from .records import SCORE_COLUMNS

log = logging.getLogger("fusedata")


@dataclass(frozen=True)
class ScoreResult:
    score: float | None
    truncated: bool = False
    error: str | None = None


class RewardScorer:
    """Loads a reward model and scores (messages, response) pairs exactly and in batches."""

    def __init__(self, spec: RewardModelSpec):
        self.spec = spec
        self.model = None

    def load(self) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from .backends.hf import quiet_transformers, resolve_device, resolve_dtype

        quiet_transformers()
        self.device = resolve_device(self.spec.device)
        self.tok = AutoTokenizer.from_pretrained(
            self.spec.path, trust_remote_code=self.spec.trust_remote_code)
        if self.tok.pad_token_id is None:
            self.tok.pad_token = self.tok.eos_token
        self.model = AutoModelForSequenceClassification.from_pretrained(
            self.spec.path, dtype=resolve_dtype(self.spec.dtype, self.device),
            trust_remote_code=self.spec.trust_remote_code,
        ).to(self.device)
        self.model.eval()
        if getattr(self.model.config, "pad_token_id", None) is None:
            self.model.config.pad_token_id = self.tok.pad_token_id
        limit = getattr(self.model.config, "max_position_embeddings", None)
        self.max_length = min(self.spec.max_length, limit) if limit else self.spec.max_length

    def close(self) -> None:
        import gc

        import torch

        self.model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def encode(self, messages: list[dict[str, str]], response: str) -> tuple[list[int], bool]:
        conv = [*messages, {"role": "assistant", "content": response}]
        text = self.tok.apply_chat_template(conv, tokenize=False)
        ids = self.tok(text, add_special_tokens=False)["input_ids"]
        if len(ids) <= self.max_length:
            return ids, False
        if self.spec.truncation_side == "left":
            return ids[-self.max_length:], True
        return ids[: self.max_length], True

    def score(self, items: list[tuple[list[dict[str, str]], str]]) -> list[ScoreResult]:
        import torch

        assert self.model is not None, "load() first"
        results: list[ScoreResult | None] = [None] * len(items)
        encoded: dict[int, list[int]] = {}
        trunc: dict[int, bool] = {}
        for i, (msgs, resp) in enumerate(items):
            try:
                encoded[i], trunc[i] = self.encode(msgs, resp)
            except Exception as e:  # template or tokenizer rejects this text
                results[i] = ScoreResult(None, False, f"encode: {type(e).__name__}: {e}"[:300])
        order = sorted(encoded, key=lambda i: (-len(encoded[i]), i))
        batches: list[list[int]] = []
        cur: list[int] = []
        for i in order:
            width = len(encoded[cur[0]]) if cur else len(encoded[i])  # longest first
            if cur and (len(cur) + 1) * width > self.spec.batch_tokens:
                batches.append(cur)
                cur = []
            cur.append(i)
        if cur:
            batches.append(cur)
        pad = self.tok.pad_token_id
        left = self.tok.padding_side == "left"
        for b in batches:
            width = max(len(encoded[i]) for i in b)
            ids = torch.full((len(b), width), pad, dtype=torch.long)
            mask = torch.zeros((len(b), width), dtype=torch.long)
            for r, i in enumerate(b):
                seq = torch.tensor(encoded[i], dtype=torch.long)
                if left:
                    ids[r, width - len(seq):], mask[r, width - len(seq):] = seq, 1
                else:
                    ids[r, : len(seq)], mask[r, : len(seq)] = seq, 1
            with torch.inference_mode():
                out = self.model(input_ids=ids.to(self.device),
                                 attention_mask=mask.to(self.device))
            vals = self._read(out)
            for r, i in enumerate(b):
                v = float(vals[r])
                results[i] = (ScoreResult(v, trunc[i]) if v == v
                              else ScoreResult(None, trunc[i], "nan_score"))
        return [r if r is not None else ScoreResult(None, False, "unscored") for r in results]

    def _read(self, out: Any) -> list[float]:
        t = out.logits if self.spec.output == "logits" else getattr(out, self.spec.output)
        if t.dim() > 1:
            t = t[:, 0]
        return t.float().cpu().tolist()


class ScoreStage(Stage):
    name = "score"
    version = "1"

    def __init__(self, spec: RewardModelSpec, prompts: Dataset, shard_size: int = 256):
        self.spec = spec
        self.prompts = prompts
        self.shard_size = shard_size
        self.scorer = RewardScorer(spec)

    def fingerprint(self) -> Any:
        return {"rm": self.spec.model_dump(mode="json", exclude={"device", "batch_tokens"}),
                "prompts": self.prompts.key}

    def setup(self) -> None:
        self.scorer.load()

    def teardown(self) -> None:
        self.scorer.close()

    def run(self, records: pl.DataFrame, rank: int, world_size: int) -> pl.DataFrame:
        if records.height == 0:
            return records.with_columns(
                [pl.lit(None, dtype=t).alias(c) for c, t in SCORE_COLUMNS.items()])
        msgs = (self.prompts.scan().select("prompt_id", "messages")
                .filter(pl.col("prompt_id").is_in(records["prompt_id"].unique().implode()))
                .collect())
        joined = records.join(msgs, on="prompt_id", how="left")
        todo = joined.with_row_index("_i").filter(pl.col("finish_reason") != "error")
        res: list[ScoreResult] = [ScoreResult(None, False, "no_response")] * records.height
        scored = self.scorer.score(list(zip(todo["messages"].to_list(),
                                            todo["response"].to_list(), strict=True)))
        for i, r in zip(todo["_i"].to_list(), scored, strict=True):
            res[i] = r
        return records.with_columns(
            pl.Series("score", [r.score for r in res], dtype=pl.Float64),
            pl.Series("score_truncated", [r.truncated for r in res], dtype=pl.Boolean),
            pl.Series("score_error", [r.error for r in res], dtype=pl.String),
        )

    def summarize(self, out: pl.DataFrame) -> str:
        n_err = out["score"].null_count()
        n_tr = int(out["score_truncated"].sum() or 0)
        return f"{n_err} unscored, {n_tr} truncated" if (n_err or n_tr) else ""
