"""The vLLM offline backend (``backend: vllm``; ``pip install 'fusedata[vllm]'``).

One ``vllm.LLM`` per model, built from the recipe's ``vllm:`` settings
(tensor_parallel_size, gpu_memory_utilization, max_model_len,
enable_prefix_caching) and the model's ``dtype``.

Why the prompts are templated here rather than through ``LLM.chat``: vLLM
rejects a whole ``generate`` call when one prompt is longer than
``max_model_len``; templating with the model's own chat template
(``tokenizer.apply_chat_template``, the same template ``LLM.chat`` applies)
lets us measure every prompt first, turn the too-long ones into
``finish_reason: error`` rows, and submit the rest as token ids.

The whole shard goes to vLLM in **one** ``LLM.generate`` call with one
``SamplingParams(n=k, seed=...)`` per prompt: the k samples of a prompt share
one prefill and continuous batching schedules everything else.  Each prompt's
seed is derived from the recipe seed and the prompt id, so a prompt gets the
same samples whichever shard or run it lands in (on the same hardware and
vLLM version, which is recorded in the ``sampler`` column).
"""

from __future__ import annotations

import gc
import logging
from typing import Any

from ..recipe import ModelSpec, VLLMOptions
from .base import Generation, Request, Sampler, request_seed

log = logging.getLogger("fusedata")


def import_vllm() -> Any:
    try:
        import vllm
    except ImportError as e:
        raise ImportError("backend 'vllm' needs vLLM: pip install 'fusedata[vllm]' "
                          f"(on a CUDA machine) [{e}]") from None
    return vllm


class VLLMSampler(Sampler):
    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        self.opts = spec.vllm or VLLMOptions()
        self.llm: Any = None
        self.tok: Any = None
        self.max_len: int | None = None

    def engine_kwargs(self) -> dict[str, Any]:
        o = self.opts
        kw: dict[str, Any] = dict(
            model=self.spec.path, tensor_parallel_size=o.tensor_parallel_size,
            gpu_memory_utilization=o.gpu_memory_utilization,
            enable_prefix_caching=o.enable_prefix_caching,
            trust_remote_code=o.trust_remote_code, seed=self.spec.sampling.seed,
            dtype=self.spec.dtype,
        )
        if o.max_model_len is not None:
            kw["max_model_len"] = o.max_model_len
        kw.update(o.engine_kwargs)
        return kw

    def load(self) -> None:
        vllm = import_vllm()
        self.version = f"vllm-{getattr(vllm, '__version__', 'unknown')}"
        self.llm = vllm.LLM(**self.engine_kwargs())
        self.tok = self.llm.get_tokenizer()
        self.max_len = self.opts.max_model_len
        if self.max_len is None:
            cfg = getattr(getattr(self.llm, "llm_engine", None), "model_config", None)
            self.max_len = getattr(cfg, "max_model_len", None)

    def close(self) -> None:
        """Free the GPU before the next model loads (vLLM keeps it until told otherwise)."""
        if self.llm is None:
            return
        engine = getattr(self.llm, "llm_engine", None)
        shutdown = getattr(engine, "shutdown", None)
        self.llm = None
        self.tok = None
        del engine
        if callable(shutdown):
            try:
                shutdown()
            except Exception as e:  # cleanup is best effort; report, don't mask the build
                log.warning("vllm engine shutdown: %s", e)
        try:
            from vllm.distributed.parallel_state import (
                destroy_distributed_environment,
                destroy_model_parallel,
            )

            destroy_model_parallel()
            destroy_distributed_environment()
        except ImportError:
            pass
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass

    def sampling_params(self, n: int, seed: int) -> Any:
        vllm = import_vllm()
        sp = self.spec.sampling
        kw: dict[str, Any] = dict(n=n, temperature=sp.temperature, top_p=sp.top_p,
                                  repetition_penalty=sp.repetition_penalty,
                                  max_tokens=sp.max_tokens, seed=seed)
        if sp.top_k:
            kw["top_k"] = sp.top_k
        return vllm.SamplingParams(**kw)

    def generate(self, requests: list[Request]) -> list[list[Generation]]:
        assert self.llm is not None, "load() first"
        results: list[list[Generation] | None] = [None] * len(requests)
        prompts: list[dict[str, list[int]]] = []
        params: list[Any] = []
        idx: list[int] = []
        for i, r in enumerate(requests):
            if r.n == 0:
                results[i] = []
                continue
            try:
                ids = self.tok.apply_chat_template(r.messages, add_generation_prompt=True,
                                                   tokenize=True)
                if isinstance(ids, dict) or hasattr(ids, "keys"):  # BatchEncoding
                    ids = ids["input_ids"]
                ids = list(ids)
            except Exception as e:  # a template that rejects this conversation
                results[i] = [Generation("", "error", error=f"chat_template: {e}")] * r.n
                continue
            if self.max_len is not None and len(ids) >= self.max_len:
                results[i] = [Generation("", "error", prompt_tokens=len(ids),
                                         error=f"prompt_too_long: {len(ids)} tokens >= "
                                               f"max_model_len {self.max_len}")] * r.n
                continue
            prompts.append({"prompt_token_ids": ids})
            params.append(self.sampling_params(
                r.n, request_seed(self.spec.sampling.seed, r.key, r.seed)))
            idx.append(i)
        if prompts:
            outs = self.llm.generate(prompts, sampling_params=params, use_tqdm=False)
            if len(outs) != len(prompts):
                raise RuntimeError(f"vllm returned {len(outs)} outputs for {len(prompts)} prompts")
            for i, o in zip(idx, outs, strict=True):
                results[i] = self._convert(o, requests[i].n)
        return [r if r is not None else [] for r in results]

    def _convert(self, out: Any, n: int) -> list[Generation]:
        n_prompt = len(out.prompt_token_ids or [])
        comps = sorted(out.outputs, key=lambda c: c.index)
        gens = []
        for c in comps:
            reason = c.finish_reason
            if reason in ("stop", "length"):
                gens.append(Generation(c.text, reason, n_prompt, len(c.token_ids)))
            else:  # "abort" or None: the engine gave up on this sequence
                gens.append(Generation(c.text or "", "error", n_prompt, len(c.token_ids),
                                       error=f"vllm finish_reason={reason!r}"))
        if len(gens) != n:
            raise RuntimeError(f"vllm returned {len(gens)} samples, expected {n}")
        return gens
