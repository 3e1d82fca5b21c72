"""Reward scoring throughput: token-budget length-sorted batches vs fixed batches of 8.

Both sides score the same records with the same tiny random-weight reward model
(built offline) through the same forward code (:meth:`RewardScorer.score_ids`);
only the batch plan differs:

* ours: ``plan_batches`` (length-sorted, rows x padded width <= ``--batch-tokens``);
* baseline: batches of 8 in arrival order (each padded to its longest member).

Input lengths are log-normal, clipped to 20..2,000 tokens (prompt + response, as the
RM sees them).  Asserts both give the same scores (max abs diff <= ``--atol``, 1e-4, in
fp32; in bf16/fp16, where matmul results depend on batch shape, 5% of max(1, |score|)), prints
tokens/s of both and ends with ``ratio: ours/baseline`` (target >= 1.8).

    python benchmarks/reward_batching.py [--records 200] [--device cpu] [--dtype float32]
    python benchmarks/reward_batching.py --device cuda --dtype bfloat16 --records 4000
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_items(sc, n: int, seed: int, lo: int, hi: int, median: int, sigma: float):
    """(messages, response) pairs whose chat-templated length follows a clipped log-normal.

    Responses are random non-special tokens, decoded; re-encoding merges some of them,
    so each response is resized (twice at most) until the RM input hits its target.
    """
    rng = random.Random(seed)
    tok = sc.tok
    special = set(tok.all_special_ids)
    vocab = [i for i in range(len(tok)) if i not in special]
    out = []
    for k in range(n):
        target = int(min(hi, max(lo, rng.lognormvariate(math.log(median), sigma))))
        msgs = [{"role": "user", "content": f"Question {k}: explain this."}]
        ids = [rng.choice(vocab) for _ in range(target)]
        for attempt in range(4):
            resp = tok.decode(ids)
            text = tok.apply_chat_template([*msgs, {"role": "assistant", "content": resp}],
                                           tokenize=False)
            got = len(tok(text, add_special_tokens=False)["input_ids"])
            if attempt == 3 or (lo <= got <= hi and abs(got - target) <= max(2, target // 50)):
                break
            ids = ids[: max(1, int(len(ids) * target / got))] if got > target else \
                ids + [rng.choice(vocab) for _ in range(target - got)]
        out.append((msgs, resp))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=200)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--batch-tokens", type=int, default=16384)
    ap.add_argument("--baseline-batch", type=int, default=8)
    ap.add_argument("--median", type=int, default=300, help="median input length (tokens)")
    ap.add_argument("--sigma", type=float, default=0.9, help="log-normal sigma")
    ap.add_argument("--padding-side", default="right", choices=["left", "right"])
    ap.add_argument("--atol", type=float, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    atol = args.atol if args.atol is not None else (1e-4 if args.dtype == "float32" else 5e-2)
    sys.path.insert(0, str(ROOT))
    import torch

    from fusedata.recipe import RewardModelSpec
    from fusedata.score import RewardScorer, plan_batches
    from fusedata.tiny import build_reward_model

    torch.manual_seed(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = build_reward_model(Path(tmp) / "rm", seed=args.seed, head_scale=30.0,
                                  padding_side=args.padding_side, max_positions=2048)
        spec = RewardModelSpec(path=str(path), device=args.device, dtype=args.dtype,
                               max_length=2048, batch_tokens=args.batch_tokens)
        sc = RewardScorer(spec)
        sc.load()
    items = make_items(sc, args.records, args.seed, 20, 2000, args.median, args.sigma)
    enc = sc.encode_many(items)
    seqs = [e.ids for e in enc]
    assert all(s is not None for s in seqs)
    lens = sorted(len(s) for s in seqs)
    tokens = sum(lens)
    print(f"{len(seqs)} records, {tokens:,} tokens; length min {lens[0]} median "
          f"{lens[len(lens) // 2]} p95 {lens[int(0.95 * len(lens))]} max {lens[-1]}; "
          f"device {args.device} {args.dtype}")
    fixed = [list(range(i, min(i + args.baseline_batch, len(seqs))))
             for i in range(0, len(seqs), args.baseline_batch)]

    def sync() -> None:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    sc.score(items[:16])  # warm-up (kernels, allocator)
    sc.score_ids(seqs[:16], [list(range(8)), list(range(8, 16))])
    sync()
    t0 = time.perf_counter()
    ours = [r.score for r in sc.score(items)]  # the stage's path: encode, plan, run
    sync()
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    base_enc = sc.encode_many(items)
    base = sc.score_ids([e.ids for e in base_enc], fixed)
    sync()
    t_base = time.perf_counter() - t0

    assert all(isinstance(x, float) for x in ours + base), "a record failed to score"
    # fp32: absolute; bf16/fp16: relative to max(1, |score|) (one bf16 step at 5 is 0.03)
    rel = args.dtype != "float32"
    diff = max(abs(a - b) / (max(1.0, abs(a)) if rel else 1.0)
               for a, b in zip(ours, base, strict=True))
    assert diff <= atol, f"scores differ by {diff} > {atol}"
    plan = plan_batches([len(s) for s in seqs], args.batch_tokens, 1 if sc.left else 0)
    pad_ours = sum(max(len(seqs[i]) for i in b) * len(b) for b in plan)
    pad_base = sum(max(len(seqs[i]) for i in b) * len(b) for b in fixed)
    print(f"token-budget length-sorted (budget {args.batch_tokens}): {tokens / t_ours:,.0f} "
          f"tokens/s ({t_ours:.2f}s, {pad_ours / tokens:.2f}x padded tokens)")
    print(f"fixed batches of {args.baseline_batch}, arrival order: {tokens / t_base:,.0f} "
          f"tokens/s ({t_base:.2f}s, {pad_base / tokens:.2f}x padded tokens)")
    print(f"identical scores: max {'rel' if rel else 'abs'} diff {diff:.2e} (tol {atol:g})")
    print(f"ratio: {t_base / t_ours:.2f}")


if __name__ == "__main__":
    main()
