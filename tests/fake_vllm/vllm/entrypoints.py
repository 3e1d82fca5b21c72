"""``vllm.LLM`` look-alike.  ``LLM.LOG`` records every engine and call for assertions."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

from .outputs import CompletionOutput, RequestOutput
from .sampling_params import SamplingParams


class _ModelConfig:
    def __init__(self, max_model_len: int) -> None:
        self.max_model_len = max_model_len


class _Engine:
    def __init__(self, max_model_len: int) -> None:
        self.model_config = _ModelConfig(max_model_len)
        self.alive = True

    def shutdown(self) -> None:
        self.alive = False
        LLM.LOG.append(("shutdown",))


class LLM:
    LOG: list[tuple] = []

    def __init__(self, model: str, *, tokenizer: str | None = None,
                 trust_remote_code: bool = False, tensor_parallel_size: int = 1,
                 dtype: str = "auto", seed: int | None = None,
                 gpu_memory_utilization: float = 0.9, **kwargs: Any) -> None:
        from transformers import AutoTokenizer

        self._tok = AutoTokenizer.from_pretrained(tokenizer or model)
        cfg = json.loads((Path(model) / "config.json").read_text())
        max_len = kwargs.get("max_model_len") or cfg.get("max_position_embeddings", 2048)
        self.llm_engine = _Engine(int(max_len))
        self.kwargs = dict(model=model, trust_remote_code=trust_remote_code,
                           tensor_parallel_size=tensor_parallel_size, dtype=dtype, seed=seed,
                           gpu_memory_utilization=gpu_memory_utilization, **kwargs)
        LLM.LOG.append(("init", self.kwargs))

    def get_tokenizer(self) -> Any:
        return self._tok

    def _sample(self, ids: list[int], sp: SamplingParams, idx: int) -> CompletionOutput:
        h = hashlib.sha256(f"{sp.seed}|{idx}|{ids}|{sp.temperature}|{sp.top_p}".encode())
        rng = random.Random(h.hexdigest())
        special = set(self._tok.all_special_ids)
        vocab = [i for i in range(len(self._tok)) if i not in special]
        want = rng.randint(1, (sp.max_tokens or 16) + 4)
        n = min(want, sp.max_tokens or 16)
        toks = [rng.choice(vocab) for _ in range(n)]
        reason = "length" if want > n else "stop"
        if reason == "stop":
            toks.append(self._tok.eos_token_id)
        text = self._tok.decode(toks, skip_special_tokens=True)
        return CompletionOutput(idx, text, toks, None, None, reason, None)

    def generate(self, prompts: Any, sampling_params: Any = None, *, use_tqdm: bool = True,
                 lora_request: Any = None) -> list[RequestOutput]:
        if not self.llm_engine.alive:
            raise RuntimeError("engine was shut down")
        prompts = prompts if isinstance(prompts, list) else [prompts]
        if sampling_params is None:
            sampling_params = SamplingParams()
        sps = sampling_params if isinstance(sampling_params, list) else (
            [sampling_params] * len(prompts))
        if len(sps) != len(prompts):
            raise ValueError("The lengths of prompts and sampling_params must be the same.")
        LLM.LOG.append(("generate", len(prompts), [sp.n for sp in sps]))
        outs = []
        for r, (p, sp) in enumerate(zip(prompts, sps, strict=True)):
            if isinstance(p, dict) and "prompt_token_ids" in p:
                ids, text = list(p["prompt_token_ids"]), None
            else:
                text = p if isinstance(p, str) else p["prompt"]
                ids = self._tok(text, add_special_tokens=False)["input_ids"]
            if len(ids) > self.llm_engine.model_config.max_model_len:
                # like vLLM: one over-long prompt fails the whole call
                raise ValueError(f"The decoder prompt (length {len(ids)}) is longer than the "
                                 f"maximum model length of "
                                 f"{self.llm_engine.model_config.max_model_len}.")
            outs.append(RequestOutput(str(r), text, ids, None,
                                      [self._sample(ids, sp, k) for k in range(sp.n)], True))
        return outs

    def chat(self, messages: Any, sampling_params: Any = None, use_tqdm: bool = True,
             lora_request: Any = None, chat_template: str | None = None,
             add_generation_prompt: bool = True) -> list[RequestOutput]:
        convs = messages if messages and isinstance(messages[0], list) else [messages]
        texts = [self._tok.apply_chat_template(c, add_generation_prompt=add_generation_prompt,
                                               tokenize=False, chat_template=chat_template)
                 for c in convs]
        return self.generate(texts, sampling_params, use_tqdm=use_tqdm)
