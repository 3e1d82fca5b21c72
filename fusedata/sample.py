"""The ``sample`` stage: one model's responses to its prompts.

Runs once per model over the prompts routed to it (its ``sources`` and the
categories for which ``samples`` is > 0).  Each prompt of a shard becomes one
:class:`~fusedata.backends.Request` for ``samples_for(category)`` responses,
and the whole shard goes to the backend in one call.  Responses cut at
``max_tokens`` are kept but flagged ``truncated`` so selection can exclude
them; backend errors for a single prompt are kept as ``finish_reason=error``
rows with the reason (never silently dropped).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from .backends import Request, Sampler, get_sampler
from .engine import Dataset, ReduceStage, Stage
from .recipe import ModelSpec
from .records import SAMPLE_SCHEMA, response_id


class RoutePrompts(ReduceStage):
    """Select the prompts one model samples (its sources; categories with samples > 0)."""

    name = "route"

    def __init__(self, spec: ModelSpec):
        self.spec = spec

    def fingerprint(self) -> Any:
        return {"sources": self.spec.sources, "samples": self.spec.samples}

    def reduce(self, inputs: dict[str, Dataset]) -> dict[str, pl.DataFrame]:
        df = inputs["prompts"].read()
        if self.spec.sources is not None:
            df = df.filter(pl.col("source").is_in(self.spec.sources))
        wanted = [c for c in df["category"].unique().to_list() if self.spec.samples_for(c) > 0]
        return {"prompts": df.filter(pl.col("category").is_in(wanted))}


class SampleStage(Stage):
    name = "sample"
    version = "1"
    #: prompts per shard (one backend call each) unless the recipe says otherwise
    shard_size = 64

    def __init__(self, spec: ModelSpec, shard_size: int | None = None,
                 sampler: Sampler | None = None):
        self.spec = spec
        if shard_size is not None:
            self.shard_size = shard_size
        self._sampler = sampler

    def fingerprint(self) -> Any:
        # Everything that changes what this model generates.  Batch size and
        # device are excluded on purpose: they change speed, not the sampling
        # distribution (exact tokens may differ across hardware anyway).
        d = self.spec.model_dump(mode="json", exclude={"batch_size", "device", "sources"})
        # backend settings left unset do not enter the key (keeps older caches valid)
        for k in ("transformers", "vllm", "http", "import_"):
            if d.get(k) is None:
                d.pop(k, None)
        if d.get("http"):  # where the servers are changes speed, not what is sampled
            d["http"] = {k: v for k, v in d["http"].items()
                         if k not in ("base_urls", "concurrency", "max_retries", "backoff_s",
                                      "max_backoff_s", "timeout_s", "api_key_env")}
        return d

    def setup(self) -> None:
        if self._sampler is None:
            self._sampler = get_sampler(self.spec)
        self._sampler.load()

    def teardown(self) -> None:
        if self._sampler is not None:
            self._sampler.close()

    def run(self, records: pl.DataFrame, shard_index: int, n_shards: int) -> pl.DataFrame:
        if records.height == 0:
            return pl.DataFrame(schema=SAMPLE_SCHEMA)
        assert self._sampler is not None
        cols = ["prompt_id", "category", "source", "messages"]
        if "existing_response" in records.columns:
            cols.append("existing_response")
        rows = records.select(cols).to_dicts()
        reqs = [Request(messages=r["messages"], n=self.spec.samples_for(r["category"]),
                        seed=self.spec.sampling.seed, key=r["prompt_id"],
                        existing=r.get("existing_response")) for r in rows]
        gens = self._sampler.generate(reqs)
        if len(gens) != len(reqs):
            raise RuntimeError(f"backend {self.spec.backend} returned {len(gens)} results for "
                               f"{len(reqs)} requests")
        out = []
        for r, req, gs in zip(rows, reqs, gens, strict=True):
            if len(gs) != req.n:
                raise RuntimeError(f"backend {self.spec.backend} returned {len(gs)} samples for "
                                   f"prompt {r['prompt_id']}, expected {req.n}")
            for k, g in enumerate(gs):
                out.append({
                    "response_id": response_id(r["prompt_id"], self.spec.name, k),
                    "prompt_id": r["prompt_id"], "category": r["category"],
                    "source": r["source"], "model": self.spec.name, "role": self.spec.role,
                    "sample_idx": k, "response": g.text, "finish_reason": g.finish_reason,
                    "truncated": g.finish_reason == "length",
                    "prompt_tokens": g.prompt_tokens, "completion_tokens": g.completion_tokens,
                    "sampler": f"{self.spec.backend}:{self._sampler.version}",
                    "error": g.error,
                })
        return pl.DataFrame(out, schema=SAMPLE_SCHEMA)

    summary_columns = ("finish_reason",)

    def summarize(self, out: pl.DataFrame) -> str:
        if out.height == 0:
            return ""
        c = out.group_by("finish_reason").len().sort("finish_reason")
        return "finish: " + ", ".join(f"{r} {n}" for r, n in c.iter_rows())
