"""``vllm.LLM`` look-alike (vLLM 0.33's ``vllm/entrypoints/llm.py``), over seeded random tokens.

What it keeps from the real class, because fusedata depends on it:

* keyword arguments beyond the named ones go to ``EngineArgs(...)``, a
  dataclass, so an unknown one raises ``TypeError``;
* no ``shutdown`` on ``LLM`` or on ``llm_engine``; ``llm_engine.engine_core``
  (the engine core client) has it, and generating after it fails;
* ``model_config.max_model_len`` from ``max_model_len`` or the model's
  ``max_position_embeddings``; a decoder prompt that is empty, longer than it,
  or *equal* to it fails the whole ``generate`` call
  (``InputProcessor._validate_prompt_len``);
* ``chat`` templates through ``vllm.renderers.hf.safe_apply_chat_template``.

Its "model" is not batch invariant, like real vLLM by default: a sample depends
on its request's seed, prompt and index *and* on the other prompts of the
call, unless ``VLLM_BATCH_INVARIANT=1`` is set (the fake's stand-in for
vLLM's batch-invariant mode).  Greedy requests (``temperature == 0``) ignore
the seed.  Every engine, call and release step is appended to
``vllm._record.CALLS`` in order.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any

from .. import _record
from ..engine.arg_utils import EngineArgs
from ..exceptions import VLLMValidationError
from ..outputs import CompletionOutput, RequestOutput
from ..renderers.hf import safe_apply_chat_template
from ..sampling_params import SamplingParams
from ..v1.engine.core_client import InprocClient


class _ModelConfig:
    def __init__(self, max_model_len: int, trust_remote_code: bool) -> None:
        self.max_model_len = max_model_len
        self.trust_remote_code = trust_remote_code
        self.runner_type = "generate"


class _LLMEngine:
    """v1 ``LLMEngine``: holds the engine core client; has no ``shutdown`` of its own."""

    def __init__(self, model_config: _ModelConfig, tokenizer: Any) -> None:
        self.model_config = model_config
        self.engine_core = InprocClient()
        self._tok = tokenizer

    def get_tokenizer(self) -> Any:
        return self._tok


class LLM:
    def __init__(self, model: str, *, tokenizer: str | None = None,
                 trust_remote_code: bool = False, tensor_parallel_size: int = 1,
                 dtype: str = "auto", seed: int = 0, gpu_memory_utilization: float = 0.92,
                 **kwargs: Any) -> None:
        from transformers import AutoTokenizer

        if "disable_log_stats" not in kwargs:
            kwargs["disable_log_stats"] = True
        args = EngineArgs(model=model, tokenizer=tokenizer, trust_remote_code=trust_remote_code,
                          tensor_parallel_size=tensor_parallel_size, dtype=dtype, seed=seed,
                          gpu_memory_utilization=gpu_memory_utilization, **kwargs)
        tok = AutoTokenizer.from_pretrained(tokenizer or model)
        cfg = json.loads((Path(model) / "config.json").read_text())
        max_len = args.max_model_len or cfg.get("max_position_embeddings", 2048)
        self.llm_engine = _LLMEngine(_ModelConfig(int(max_len), trust_remote_code), tok)
        self.model_config = self.llm_engine.model_config
        self.kwargs = dict(model=model, trust_remote_code=trust_remote_code,
                           tensor_parallel_size=tensor_parallel_size, dtype=dtype, seed=seed,
                           gpu_memory_utilization=gpu_memory_utilization, **kwargs)
        _record._LLMS.add(self)
        _record.CALLS.append(("LLM", self.kwargs))

    def get_tokenizer(self) -> Any:
        return self.llm_engine.get_tokenizer()

    def _sample(self, ids: list[int], sp: SamplingParams, idx: int,
                batch: tuple[int, ...]) -> CompletionOutput:
        tok = self.llm_engine.get_tokenizer()
        seed = None if sp.temperature == 0 else sp.seed
        if seed is None and sp.temperature > 0:
            seed = random.getrandbits(31)  # an unseeded request is not reproducible
        context = "" if os.environ.get("VLLM_BATCH_INVARIANT") == "1" else str(batch)
        h = hashlib.sha256(f"{seed}|{idx}|{ids}|{sp.temperature}|{sp.top_p}|{context}".encode())
        rng = random.Random(h.hexdigest())
        special = set(tok.all_special_ids)
        vocab = [i for i in range(len(tok)) if i not in special]
        want = rng.randint(1, (sp.max_tokens or 16) + 4)
        n = min(want, sp.max_tokens or 16)
        toks = [rng.choice(vocab) for _ in range(n)]
        reason = "length" if want > n else "stop"
        if reason == "stop":
            toks.append(tok.eos_token_id)
        text = tok.decode(toks, skip_special_tokens=True)
        return CompletionOutput(idx, text, toks, None, None, None, reason, None)

    def generate(self, prompts: Any, sampling_params: Any = None, *,
                 use_tqdm: bool = True, lora_request: Any = None) -> list[RequestOutput]:
        if not self.llm_engine.engine_core.alive:
            raise RuntimeError("engine core was shut down")
        tok = self.llm_engine.get_tokenizer()
        prompts = prompts if isinstance(prompts, list) else [prompts]
        if sampling_params is None:
            sampling_params = SamplingParams()
        sps = sampling_params if isinstance(sampling_params, list) else (
            [sampling_params] * len(prompts))
        if len(sps) != len(prompts):
            raise ValueError("The lengths of prompts and sampling_params must be the same.")
        _record.CALLS.append(("generate", {"prompts": len(prompts), "n": [sp.n for sp in sps],
                                           "seed": [sp.seed for sp in sps]}))
        max_len = self.model_config.max_model_len
        all_ids = []
        for p in prompts:
            if isinstance(p, dict) and "prompt_token_ids" in p:
                all_ids.append((list(p["prompt_token_ids"]), None))
            else:
                text = p if isinstance(p, str) else p["prompt"]
                all_ids.append((tok(text)["input_ids"], text))
        for ids, _ in all_ids:  # like vLLM: one bad prompt fails the whole call
            if not ids:
                raise VLLMValidationError("The decoder prompt cannot be empty")
            if len(ids) > max_len:
                raise VLLMValidationError(
                    f"The decoder prompt (length {len(ids)}) is longer than the maximum model "
                    f"length of {max_len}. Make sure that `max_model_len` is no smaller than "
                    "the number of text tokens.")
            if len(ids) == max_len:
                raise VLLMValidationError(
                    f"The decoder prompt (length {len(ids)}) plus the number of requested "
                    f"output tokens (at least 1) is longer than the maximum model length of "
                    f"{max_len}.")
        batch = tuple(len(ids) for ids, _ in all_ids)
        return [RequestOutput(str(r), text, ids, None,
                              [self._sample(ids, sp, k, batch) for k in range(sp.n)], True)
                for r, ((ids, text), sp) in enumerate(zip(all_ids, sps, strict=True))]

    def chat(self, messages: Any, sampling_params: Any = None, use_tqdm: bool = True,
             lora_request: Any = None, priority: Any = None, chat_template: str | None = None,
             chat_template_content_format: str = "auto",
             add_generation_prompt: bool = True) -> list[RequestOutput]:
        convs = messages if messages and isinstance(messages[0], list) else [messages]
        ids = [safe_apply_chat_template(self.model_config, self.get_tokenizer(), c,
                                        chat_template=chat_template, tokenize=True,
                                        add_generation_prompt=add_generation_prompt)
               for c in convs]
        return self.generate([{"prompt_token_ids": i} for i in ids], sampling_params,
                             use_tqdm=use_tqdm)
