"""bf16 training steps of ``fusedata train`` on CUDA: time per step and peak GPU memory.

Runs, on a small random-weight Llama (built here, nothing downloaded) and a
synthetic set of long-ish chat examples:

* SFT (``sft_config``: assistant-only loss, bf16),
* DPO as ``fusedata train dpo`` runs it (reference log-probs precomputed once,
  only the policy in memory) -- "ours" --
* the same DPO with TRL's live reference model (a second model in memory,
  one extra forward per step) -- the baseline --,
* WRPO (precomputed reference, three completions per example).

Both DPO variants start from the same weights and data, so their first-step
losses must agree (asserted).  The last line is ``ratio: X`` = peak memory of
ours / peak memory of the baseline.  Without CUDA it prints why and exits 0;
``--cpu-smoke`` instead runs the same code path on CPU in fp32 (tiny sizes, no
memory numbers) to check the script itself before spending GPU time.

    python benchmarks/train_step_gpu.py [--hidden 1024 --layers 8 --rows 32 --words 400]
    python benchmarks/train_step_gpu.py --cpu-smoke

Packages it needs beyond torch/transformers: trl>=1.16 and datasets (the
``fusedata[train]`` extra); polars is not needed.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WORDS = ("the quick brown fox jumps over the lazy dog solve for x the answer is "
         "def add return a plus b write a short poem about the sea and sky explain "
         "gradient descent in simple terms import math print").split()


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _model(folder: Path, hidden: int, layers: int) -> Path:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from fusedata.tiny import build_tokenizer

    tok = build_tokenizer("left")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 3,
                      num_hidden_layers=layers, num_attention_heads=max(1, hidden // 64),
                      num_key_value_heads=max(1, hidden // 256), max_position_embeddings=4096,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id, tie_word_embeddings=False)
    m = LlamaForCausalLM(cfg)
    m.generation_config = GenerationConfig(bos_token_id=tok.bos_token_id,
                                           eos_token_id=tok.eos_token_id,
                                           pad_token_id=tok.pad_token_id)
    m.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


class StepTimer:
    """TrainerCallback timing each optimizer step with CUDA synchronisation."""

    def __init__(self) -> None:
        from transformers import TrainerCallback

        timer = self

        class _CB(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                _sync()
                timer._t = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                _sync()
                timer.times.append(time.perf_counter() - timer._t)

        self.times: list[float] = []
        self._t = 0.0
        self.callback = _CB()

    def per_step(self) -> float:
        """Median over steps after the first (the first pays for kernel warm-up)."""
        t = sorted(self.times[1:] or self.times)
        return t[len(t) // 2]


def _run(name: str, make_trainer) -> dict:
    import torch

    cuda = torch.cuda.is_available()
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    timer = StepTimer()
    t0 = time.perf_counter()
    trainer = make_trainer()
    setup = time.perf_counter() - t0
    trainer.add_callback(timer.callback)
    trainer.train()
    first_loss = next(h["loss"] for h in trainer.state.log_history if "loss" in h)
    res = {"name": name, "step_s": timer.per_step(), "first_step_s": timer.times[0],
           "setup_s": setup,
           "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan"),
           "loss": float(first_loss)}
    print(f"{name:14s} step {res['step_s'] * 1000:8.1f} ms  (first {res['first_step_s']:.2f} s, "
          f"setup incl. ref pass {setup:.2f} s)  peak {res['peak_gib']:.3f} GiB  "
          f"first loss {res['loss']:.4f}", flush=True)
    del trainer
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--words", type=int, default=400, help="words per response (~tokens x 2)")
    ap.add_argument("--batch", type=int, default=4, help="per-device batch (no accumulation)")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--cpu-smoke", action="store_true",
                    help="run the code path on CPU (fp32, tiny sizes) to check the script")
    a = ap.parse_args()

    import torch

    cuda = torch.cuda.is_available()
    if not cuda and not a.cpu_smoke:
        print("skipped: no CUDA device (this benchmark measures bf16 steps on a GPU; "
              "--cpu-smoke checks the script on CPU)")
        return
    if not cuda:
        a.hidden, a.layers, a.rows, a.words, a.steps = 64, 2, 8, 30, 2
    import datasets
    from transformers import AutoTokenizer
    from trl import DPOTrainer, SFTTrainer

    from fusedata.train.dpo import dpo_config
    from fusedata.train.sft import sft_config
    from fusedata.train.wrpo import WRPOTrainer, wrpo_config

    print(f"device: {torch.cuda.get_device_name() if cuda else 'cpu (smoke run, fp32)'}  "
          f"torch {torch.__version__}")
    tmp = Path(tempfile.mkdtemp(prefix="fusedata-gpu-bench-"))
    path = _model(tmp / "model", a.hidden, a.layers)
    n_params = sum(p.numel() for p in __import__("transformers").AutoModelForCausalLM
                   .from_pretrained(path).parameters())
    print(f"model: Llama {a.layers} layers x {a.hidden}, {n_params / 1e6:.1f} M parameters; "
          f"{a.rows} rows, batch {a.batch}, {a.steps} steps")
    tok = AutoTokenizer.from_pretrained(path)
    rng = random.Random(0)

    def msg(role, text):
        return [{"role": role, "content": text}]

    rows = [{"prompt": msg("user", _text(rng, 40)),
             "src": _text(rng, a.words), "tgt": _text(rng, a.words // 2),
             "bad": _text(rng, int(a.words * 0.8))} for _ in range(a.rows)]
    sft_ds = datasets.Dataset.from_list(
        [{"messages": r["prompt"] + msg("assistant", r["src"])} for r in rows])
    dpo_ds = datasets.Dataset.from_list(
        [{"prompt": r["prompt"], "chosen": msg("assistant", r["src"]),
          "rejected": msg("assistant", r["bad"])} for r in rows])
    wrpo_ds = datasets.Dataset.from_list(
        [{"prompt": r["prompt"], "chosen_source": msg("assistant", r["src"]),
          "chosen_target": msg("assistant", r["tgt"]), "rejected": msg("assistant", r["bad"])}
         for r in rows])
    common = dict(n_rows=a.rows, per_device_batch=a.batch, effective_batch=a.batch,
                  max_steps=a.steps, bf16=cuda, save_steps=10**6)
    out = tmp / "runs"

    _run("sft", lambda: SFTTrainer(
        model=str(path), processing_class=tok, train_dataset=sft_ds,
        args=sft_config(str(out / "sft"), lr=1e-5, **common)))

    def dpo(precompute: bool):
        args = dpo_config(str(out / f"dpo{int(precompute)}"), lr=1e-6, beta=0.1,
                          length_normalize=False, **common)
        args.precompute_ref_log_probs = precompute
        return DPOTrainer(model=str(path), processing_class=tok, train_dataset=dpo_ds, args=args)

    ours = _run("dpo (ours)", lambda: dpo(True))
    base = _run("dpo (live ref)", lambda: dpo(False))
    _run("wrpo", lambda: WRPOTrainer(
        model=str(path), processing_class=tok, train_dataset=wrpo_ds,
        args=wrpo_config(str(out / "wrpo"), lr=1e-6, **common)))

    assert abs(ours["loss"] - base["loss"]) < 1e-2, (ours["loss"], base["loss"])
    print(f"dpo step time ours/baseline: {ours['step_s'] / base['step_s']:.3f}")
    if not cuda:
        print("ratio: n/a (cpu smoke run: no GPU memory to compare)")
        return
    print(f"ratio: {ours['peak_gib'] / base['peak_gib']:.3f}")


if __name__ == "__main__":
    main()
