"""The vLLM offline backend (``backend: vllm``; ``pip install 'fusedata[vllm]'``).

One ``vllm.LLM`` per model, built from the recipe's ``vllm:`` settings
(tensor_parallel_size, gpu_memory_utilization, max_model_len,
enable_prefix_caching) and the model's ``dtype``.  What this module relies on
was read from vLLM 0.33.0's source; ``benchmarks/vllm_contract.py`` re-checks
every name against a vLLM wheel.

**Prompts.**  vLLM rejects a whole ``generate`` call when one prompt is not
shorter than ``max_model_len`` (``InputProcessor._validate_prompt_len``: a
prompt longer than it, or equal to it for a generating model, raises).  So we
template each conversation ourselves, measure it, turn the too-long ones into
``finish_reason: error`` rows and submit the rest as token ids.  Templating goes
through ``vllm.renderers.hf.safe_apply_chat_template`` - the function
``LLM.chat`` itself ends in - so the template comes from where ``LLM.chat``
takes it (the model's processor, then the tokenizer, then vLLM's bundled
fallbacks) and a ``developer`` message becomes ``system`` when the template
does not know that role.  A vLLM without that function (older than the 0.33
layout) gets ``tokenizer.apply_chat_template``, with a warning naming the
difference.

**Sampling.**  The whole shard goes to vLLM in **one** ``LLM.generate`` call
with one ``SamplingParams(n=k, seed=...)`` per prompt: the k samples of a
prompt share one prefill and continuous batching schedules everything else.
``SamplingParams`` is built per prompt inside the error handling, so a value
vLLM rejects becomes that prompt's error rows, not a lost shard (the recipe
schema already rejects the values we know of).

**Reproducibility (what holds, what does not).**  Each prompt's seed is
derived from the recipe seed and the prompt id (:func:`request_seed`), so a
prompt asks vLLM for the same seeded request whichever shard or run it lands
in, and a resumed build keeps finished shards byte-identical (they are not
sampled again).  The samples themselves are *not* guaranteed to repeat: vLLM
documents that results are not reproducible by default, because the batch a
request is scheduled with changes its logits.  To get repeatable samples run
with ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` (deterministic scheduling, offline
only) or ``VLLM_BATCH_INVARIANT=1`` (batch-invariant kernels), on the same
hardware and vLLM version - the version is recorded in the ``sampler`` column.

**Release.**  Neither ``LLM`` nor its V1 ``LLMEngine`` has a ``shutdown``
method; the engine core client (``llm.llm_engine.engine_core``) does.  With
``VLLM_ENABLE_V1_MULTIPROCESSING=0`` the in-process engine core calls
``gc.freeze()`` at start-up, so dropping the ``LLM`` alone leaves the weights
and KV cache on the GPU (vllm-project/vllm#21073) and the next model of the
recipe runs out of memory.  :meth:`VLLMSampler.close` does what vLLM's own
tests do: shut the engine core down, drop every reference, collect, then
``vllm.distributed.parallel_state.cleanup_dist_env_and_memory()`` (which
unfreezes the GC, destroys the model-parallel groups and empties the cache).
GPU memory in use is logged before each model loads and after it is released.
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


def gpu_memory_in_use() -> list[int] | None:
    """Bytes in use on each visible CUDA device (total - free), or None without CUDA.

    ``torch.cuda.mem_get_info`` asks the driver, so it counts every process and
    allocator, which is what decides whether the next model fits.
    """
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    used = []
    for d in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(d)
        used.append(int(total - free))
    return used


def _log_gpu_memory(model: str, when: str) -> None:
    used = gpu_memory_in_use()
    if used is not None:
        log.info("vllm %s %s: GPU memory in use %s", model, when,
                 ", ".join(f"cuda:{i} {b / 2**30:.2f} GiB" for i, b in enumerate(used)))


class VLLMSampler(Sampler):
    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        self.opts = spec.vllm or VLLMOptions()
        self.llm: Any = None
        self.tok: Any = None
        self.max_len: int | None = None
        self._apply_template: Any = None

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
        _log_gpu_memory(self.spec.name, "before load")
        self.llm = vllm.LLM(**self.engine_kwargs())
        self.tok = self.llm.get_tokenizer()
        self.max_len = self.opts.max_model_len
        if self.max_len is None:
            self.max_len = getattr(getattr(self.llm, "model_config", None), "max_model_len", None)
        try:
            from vllm.renderers.hf import safe_apply_chat_template
        except ImportError:
            log.warning("vllm %s has no vllm.renderers.hf.safe_apply_chat_template: prompts use "
                        "the tokenizer's chat template only (LLM.chat would also try the "
                        "model's processor and map 'developer' to 'system')", self.version)
            safe_apply_chat_template = None
        self._apply_template = safe_apply_chat_template

    def close(self) -> None:
        """Free the GPU before the next model loads (see the module docstring: Release).

        Order matters: the engine core is shut down while we still hold it, then
        every reference we keep is dropped and collected, and only then does
        ``cleanup_dist_env_and_memory`` destroy the parallel groups and empty the
        cache - emptying the cache while the engine is still referenced frees nothing.
        """
        if self.llm is None:
            return
        core = getattr(getattr(self.llm, "llm_engine", None), "engine_core", None)
        if core is None:
            log.warning("vllm: LLM has no llm_engine.engine_core; cannot shut the engine down")
        else:
            try:
                core.shutdown()
            except Exception as e:  # cleanup is best effort; report, don't mask the build
                log.warning("vllm engine_core.shutdown(): %s", e)
        del core
        self.llm = None
        self.tok = None
        self._apply_template = None
        gc.collect()
        try:
            from vllm.distributed.parallel_state import cleanup_dist_env_and_memory
        except ImportError as e:
            log.warning("vllm: no cleanup_dist_env_and_memory (%s); GPU memory may stay held", e)
        else:
            try:
                cleanup_dist_env_and_memory()
            except Exception as e:
                log.warning("vllm cleanup_dist_env_and_memory(): %s", e)
        _log_gpu_memory(self.spec.name, "after release")

    def sampling_kwargs(self, n: int, seed: int) -> dict[str, Any]:
        sp = self.spec.sampling
        kw: dict[str, Any] = dict(n=n, temperature=sp.temperature, top_p=sp.top_p,
                                  repetition_penalty=sp.repetition_penalty,
                                  max_tokens=sp.max_tokens, seed=seed)
        if sp.top_k:
            kw["top_k"] = sp.top_k
        return kw

    def sampling_params(self, n: int, seed: int) -> Any:
        return import_vllm().SamplingParams(**self.sampling_kwargs(n, seed))

    def template(self, messages: list[dict[str, Any]]) -> list[int]:
        """Token ids of the conversation with the generation prompt, as ``LLM.chat`` builds them."""
        if self._apply_template is not None:
            ids = self._apply_template(self.llm.model_config, self.tok, messages,
                                       tokenize=True, add_generation_prompt=True)
        else:
            ids = self.tok.apply_chat_template(messages, add_generation_prompt=True,
                                               tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):  # BatchEncoding
            ids = ids["input_ids"]
        return list(ids)

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
                ids = self.template(r.messages)
            except Exception as e:  # a template that rejects this conversation
                results[i] = [Generation("", "error", error=f"chat_template: {e}")] * r.n
                continue
            if not ids or (self.max_len is not None and len(ids) >= self.max_len):
                results[i] = [Generation("", "error", prompt_tokens=len(ids),
                                         error=f"prompt_too_long: {len(ids)} tokens >= "
                                               f"max_model_len {self.max_len}" if ids else
                                         "empty_prompt: the template produced no tokens")] * r.n
                continue
            try:
                sp = self.sampling_params(r.n, request_seed(self.spec.sampling.seed, r.key,
                                                            r.seed))
            except Exception as e:  # vLLM's own validation (VLLMValidationError in 0.33)
                results[i] = [Generation("", "error", prompt_tokens=len(ids),
                                         error=f"sampling_params: {e}")] * r.n
                continue
            prompts.append({"prompt_token_ids": ids})
            params.append(sp)
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
