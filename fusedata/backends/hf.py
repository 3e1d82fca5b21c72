"""The embedded default backend: ``transformers`` ``generate`` on CPU or GPU.

Good for the demo, tests and small target models; for 70B source models use
the vLLM or HTTP backends.  Chat formatting uses the model tokenizer's own chat
template; requests are sorted by prompt length and batched (``batch_size``
sequences per ``generate`` call, the ``n`` samples of a prompt sharing one
call via ``num_return_sequences``), and each batch is seeded from the recipe
seed and the prompt ids in it, never from a shard's index, the run or the
worker, so a resumed or Ray run reproduces it.  Batches are cut inside one
shard, so ``shard_size`` and ``batch_size`` decide which prompts share a seed:
changing them changes the samples (neither is in the cache key).

Continuous batching: with ``transformers: {continuous_batching: on}`` each
group of prompts sharing ``n`` goes to transformers' ``generate_batch`` (paged
attention, requests scheduled as slots free up) instead of padded batches.
``auto`` (the default) currently means padded ``generate`` everywhere: on CPU
padded measured ~8x faster than the paged path on a tiny model
(``benchmarks/sampling_cpu.py --cb on``), and on an H100 with transformers 5.17
the paged path returned incomplete results and fell back, 39x slower in all
(``benchmarks/sampling_gpu_check.py``).  For real GPU throughput use vLLM.  The paged path applies the recipe's
sampling fields only (temperature, top_p, top_k, repetition_penalty, eos), not
extra logits processors from the model's own ``generation_config``.  A model that does
not support continuous batching, or a group whose results come back
incomplete, falls back to padded ``generate`` (logged), so the backend never
loses a prompt.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from ..recipe import ModelSpec, TransformersOptions
from ..torchenv import quiet_transformers, resolve_device, resolve_dtype
from .base import Generation, Request, Sampler

log = logging.getLogger("fusedata")

class TransformersSampler(Sampler):
    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        self.model = None
        self.tok = None
        self.opts = spec.transformers or TransformersOptions()
        self.use_cb = False

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
        cb = self.opts.continuous_batching
        self.use_cb = hasattr(self.model, "generate_batch") and (
            cb == "on")  # auto: padded (see the module docstring for the measurements)
        if cb == "on" and not self.use_cb:
            log.warning("model %s: this transformers has no generate_batch; using padded "
                        "generate", self.spec.name)
        mode = "continuous-batching" if self.use_cb else "padded"
        self.version += f"/{mode}"

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
        if self.use_cb:
            leftover = self._continuous(requests, texts, results, torch)
            texts = {i: texts[i] for i in leftover}
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

    def _seed(self, idx: list[int], requests: list[Request], torch: Any) -> None:
        """Seed from the recipe seed and the prompt ids of the batch (not the shard's index)."""
        sp = self.spec.sampling
        seed_src = f"{sp.seed}|" + "|".join(f"{requests[i].key}:{requests[i].seed}" for i in idx)
        torch.manual_seed(int(hashlib.sha256(seed_src.encode()).hexdigest()[:8], 16))

    def _finish(self, toks: list[int], prompt_len: int) -> Generation:
        """Cut at the first end-of-turn token; name why generation stopped."""
        sp = self.spec.sampling
        cut = next((j for j, t in enumerate(toks) if t in self.eos_ids), None)
        if cut is not None:
            body, reason, count = toks[:cut], "stop", cut + 1
        else:
            body = [t for t in toks if t != self.tok.pad_token_id]
            reason = "length" if len(toks) >= sp.max_tokens else "stop"
            count = len(body)
        text = self.tok.decode(body, skip_special_tokens=True)
        return Generation(text, reason, int(prompt_len), count)

    def _continuous(self, requests: list[Request], texts: dict[int, str], results: list,
                    torch: Any) -> list[int]:
        """generate_batch per group of equal ``n``; returns the prompts left for padded."""
        from transformers import GenerationConfig

        sp = self.spec.sampling
        leftover: list[int] = []
        for n in sorted({requests[i].n for i in texts}):
            idx = sorted(i for i in texts if requests[i].n == n)
            ids = [self.tok(texts[i], add_special_tokens=False)["input_ids"] for i in idx]
            # a fresh config with the sampling fields only: the paged path does not
            # prepare the special-token tensors other logits processors from the
            # model's own generation_config need (e.g. exponential_decay_length_penalty)
            gc = GenerationConfig(eos_token_id=sorted(self.eos_ids),
                                  bos_token_id=self.model.generation_config.bos_token_id)
            greedy_n = 1 if sp.temperature <= 0 else n
            gc.num_return_sequences = greedy_n
            gc.max_new_tokens = sp.max_tokens
            gc.repetition_penalty = sp.repetition_penalty
            gc.pad_token_id = self.tok.pad_token_id
            if sp.temperature > 0:
                gc.do_sample, gc.temperature, gc.top_p = True, sp.temperature, sp.top_p
                gc.top_k = sp.top_k or None
            else:
                gc.do_sample, gc.temperature, gc.top_p, gc.top_k = False, None, None, None
            self._seed(idx, requests, torch)
            try:
                kw = self._cb_kwargs(ids, greedy_n)
                # no inference_mode here: generate_batch runs its own thread, and tensors
                # made under inference_mode break its in-place cache resets
                out = self.model.generate_batch(ids, generation_config=gc, progress_bar=False,
                                                **kw)
            except Exception as e:  # model without paged-attention support, older API, ...
                log.warning("model %s: continuous batching failed (%s); padded generate",
                            self.spec.name, e)
                leftover += idx
                continue
            groups: dict[str, list[Any]] = {}
            for rid, o in out.items():
                groups.setdefault(rid.split("__child#")[0], []).append(o)
            parents = list(groups)
            if len(parents) != len(idx) or any(len(g) != greedy_n or any(o.error for o in g)
                                               for g in groups.values()):
                log.warning("model %s: continuous batching returned incomplete results; "
                            "padded generate for this group", self.spec.name)
                leftover += idx
                continue
            for i, pid, prompt_ids in zip(idx, parents, ids, strict=True):
                gens = [self._finish(list(o.generated_tokens), len(prompt_ids))
                        for o in groups[pid]]
                results[i] = gens if greedy_n == n else gens * n
        return leftover

    def _cb_kwargs(self, ids: list[list[int]], greedy_n: int) -> dict[str, Any]:
        """Paged-cache sizing for ``generate_batch`` on CPU.

        transformers sizes the paged KV cache from free memory (meant for a GPU); on a
        shared CPU host ask for exactly what this group needs.  Only the fields this
        transformers version's ``ContinuousBatchingConfig`` accepts are passed (the
        class changed across 5.x releases).
        """
        if self.device.startswith("cuda"):
            return {}
        import inspect

        from transformers import ContinuousBatchingConfig

        page = 256
        need = sum(-(-(len(x) + self.spec.sampling.max_tokens) // page) for x in ids) * greedy_n
        accepted = inspect.signature(ContinuousBatchingConfig).parameters
        want = {"page_size": page, "num_blocks": need + 4}
        if not set(want) <= set(accepted):
            raise TypeError("this transformers' ContinuousBatchingConfig cannot size the "
                            f"cache (accepts {sorted(accepted)[:8]}...)")
        return {"continuous_batching_config": ContinuousBatchingConfig(**want)}

    def _run_batch(self, idx: list[int], requests: list[Request], texts: dict[int, str],
                   results: list, torch: Any) -> None:
        sp = self.spec.sampling
        n = requests[idx[0]].n
        enc = self.tok([texts[i] for i in idx], add_special_tokens=False, padding=True,
                       return_tensors="pt").to(self.device)
        self._seed(idx, requests, torch)
        # greedy decoding gives n identical answers: decode once, repeat (generate
        # rejects num_return_sequences > 1 without sampling)
        k = n if sp.temperature > 0 else 1
        kwargs: dict[str, Any] = dict(
            max_new_tokens=sp.max_tokens, num_return_sequences=k,
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
            results[i] = [self._finish(gen[b * k + (j if k > 1 else 0)], prompt_lens[b])
                          for j in range(n)]
