"""The embedded default backend: ``transformers`` ``generate`` on CPU or GPU.

Good for the demo, tests and small target models; for 70B source models use
the vLLM or HTTP backends.  Chat formatting uses the model tokenizer's own chat
template; requests are sorted by prompt length and batched (``batch_size``
sequences per ``generate`` call, the ``n`` samples of a prompt sharing one
call via ``num_return_sequences``), and each batch is seeded from the recipe
seed and the prompt ids in it, so results do not depend on which shard or run
produced them.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..recipe import ModelSpec
from .base import Generation, Request, Sampler


def quiet_transformers() -> None:
    """transformers' per-file progress bars and warnings drown the stage progress bars."""
    from transformers.utils import logging as tlog

    tlog.disable_progress_bar()
    tlog.set_verbosity_error()


def resolve_device(device: str) -> str:
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


class TransformersSampler(Sampler):
    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        self.model = None
        self.tok = None

    def load(self) -> None:
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        quiet_transformers()
        self.device = resolve_device(self.spec.device)
        self.tok = AutoTokenizer.from_pretrained(self.spec.path, padding_side="left")
        if self.tok.pad_token_id is None:
            self.tok.pad_token = self.tok.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(
            self.spec.path, dtype=resolve_dtype(self.spec.dtype, self.device)
        ).to(self.device)
        self.model.eval()
        self.version = f"transformers-{transformers.__version__}/torch-{torch.__version__}"
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tok.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos])
        self.max_positions = getattr(self.model.config, "max_position_embeddings", None)

    def close(self) -> None:
        import gc

        import torch

        self.model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _template(self, messages: list[dict[str, str]]) -> str:
        return self.tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def generate(self, requests: list[Request]) -> list[list[Generation]]:
        import torch

        assert self.model is not None and self.tok is not None, "load() first"
        results: list[list[Generation] | None] = [None] * len(requests)
        texts: dict[int, str] = {}
        lengths: dict[int, int] = {}
        for i, r in enumerate(requests):
            if r.n == 0:
                results[i] = []
                continue
            try:
                texts[i] = self._template(r.messages)
            except Exception as e:  # a template that rejects this conversation
                results[i] = [Generation("", "error", error=f"chat_template: {e}")] * r.n
                continue
            lengths[i] = len(self.tok(texts[i], add_special_tokens=False)["input_ids"])
            if self.max_positions and lengths[i] >= self.max_positions:
                results[i] = [Generation("", "error", prompt_tokens=lengths[i],
                                         error=f"prompt_too_long: {lengths[i]} tokens >= "
                                               f"{self.max_positions}")] * r.n
        # group by n (num_return_sequences is per call), then by length
        order = sorted(texts, key=lambda i: (requests[i].n, lengths[i], i))
        batch: list[int] = []
        for i in order:
            if batch and (requests[batch[0]].n != requests[i].n
                          or (len(batch) + 1) * requests[i].n > self.spec.batch_size):
                self._run_batch(batch, requests, texts, results, torch)
                batch = []
            batch.append(i)
        if batch:
            self._run_batch(batch, requests, texts, results, torch)
        return [r if r is not None else [] for r in results]

    def _run_batch(self, idx: list[int], requests: list[Request], texts: dict[int, str],
                   results: list, torch: Any) -> None:
        sp = self.spec.sampling
        n = requests[idx[0]].n
        enc = self.tok([texts[i] for i in idx], add_special_tokens=False, padding=True,
                       return_tensors="pt").to(self.device)
        seed_src = f"{sp.seed}|" + "|".join(f"{requests[i].key}:{requests[i].seed}" for i in idx)
        torch.manual_seed(int(hashlib.sha256(seed_src.encode()).hexdigest()[:8], 16))
        kwargs: dict[str, Any] = dict(
            max_new_tokens=sp.max_tokens, num_return_sequences=n,
            repetition_penalty=sp.repetition_penalty, pad_token_id=self.tok.pad_token_id,
        )
        if sp.temperature > 0:
            kwargs.update(do_sample=True, temperature=sp.temperature, top_p=sp.top_p,
                          top_k=sp.top_k or None)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            out = self.model.generate(**enc, **kwargs)
        gen = out[:, enc["input_ids"].shape[1]:].tolist()
        prompt_lens = enc["attention_mask"].sum(dim=1).tolist()
        for b, i in enumerate(idx):
            gens = []
            for k in range(n):
                toks = gen[b * n + k]
                cut = next((j for j, t in enumerate(toks) if t in self.eos_ids), None)
                if cut is not None:
                    body, reason, count = toks[:cut], "stop", cut + 1
                else:
                    body = [t for t in toks if t != self.tok.pad_token_id]
                    reason = "length" if len(toks) >= sp.max_tokens else "stop"
                    count = len(body)
                text = self.tok.decode(body, skip_special_tokens=True)
                gens.append(Generation(text, reason, int(prompt_lens[b]), count))
            results[i] = gens
