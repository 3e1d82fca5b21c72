"""``recipes/fusechat3.yaml``'s selection on a synthetic table shaped like FuseChat-3.0's.

The table is invented (random scores and verdicts), shaped by the recipe itself: one
prompt per 10 of each source's published total, each model sampling the categories
and sources the recipe gives it (5 instruction / 8 code samples from the four source
LLMs, the imported Llama-3.1-405B answer plus 5 Qwen2.5-Math samples for math, one
Qwen2.5-72B answer for Chinese).  Scores are float32 like an RM's bf16/float32 output,
with some NaN, truncated, failing and unverifiable responses.  The SFT share of each
source's records must be within one percentage point of the seed's composition table.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl

from fusedata.recipe import load_recipe
from fusedata.select import select_tables

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "fusechat3.yaml"
#: the seed README's composition table: source -> (SFT count, DPO count)
PUBLISHED = {"ultrafeedback": (20439, 30659), "magpie_pro_dpo": (8149, 12225),
             "helpsteer2": (3774, 5661), "openmathinstruct2": (40188, 11615),
             "leetcode": (1877, 1236), "self_oss_instruct": (10160, 2849),
             "alpaca_gpt4_zh": (2471, 0), "magpie_qwen2_zh": (7481, 0)}
SCALE = 10


def _table(seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    rec = load_recipe(RECIPE)
    rng = np.random.default_rng(seed)
    prompts, frames = [], []
    for src in rec.prompts:
        n = round(src.limit / SCALE)
        pids = [hashlib.sha256(f"{src.name}:{i}".encode()).hexdigest() for i in range(n)]
        prompts.append(pl.DataFrame({"prompt_id": pids, "category": src.category,
                                     "source": src.name}))
        level = rng.normal(0.12, 0.03, size=n)
        allfail = rng.random(n) < 0.08                     # prompts nobody solves
        for m in rec.models:
            k = m.samples_for(src.category)
            if k == 0 or (m.sources is not None and src.name not in m.sources):
                continue
            p_idx = np.repeat(np.arange(n), k)
            rows = len(p_idx)
            score = (level[p_idx] + rng.normal(0, 0.04, size=rows)).astype(np.float32)
            w = rng.random(rows)
            score[w < 0.005] = np.nan
            u = rng.random(rows)
            if src.category == "math":
                verdict = np.where(u < 0.6, "correct", np.where(u < 0.93, "incorrect",
                                   np.where(u < 0.98, "no_answer", "timeout")))
            elif src.category == "code":
                verdict = np.where(u < 0.5, "passed", np.where(u < 0.92, "failed",
                                   np.where(u < 0.97, "syntax_error", "sandbox_error")))
                verdict[allfail[p_idx] & (verdict == "passed")] = "failed"
            else:
                verdict = np.full(rows, None, dtype=object)
            frames.append(pl.DataFrame({
                "prompt_id": np.array(pids)[p_idx], "category": src.category,
                "source": src.name, "model": m.name, "role": m.role,
                "response_id": [f"{m.name}-{src.name}-{i}" for i in range(rows)],
                "response": [f"{m.name} answer {i} to {src.name}" for i in range(rows)],
                "score": score.astype(np.float64), "truncated": (w > 0.005) & (w < 0.02),
                "finish_reason": "stop", "error": pl.Series([None] * rows, dtype=pl.String),
                "verdict": pl.Series(verdict.tolist(), dtype=pl.String)}))
    return pl.concat(frames, how="vertical_relaxed"), pl.concat(prompts)


def test_fusechat3_selection_lands_on_the_published_shares():
    responses, prompts = _table()
    cfg = load_recipe(RECIPE).selection
    out = select_tables(responses, prompts, cfg)
    n = {s: [0, 0] for s in PUBLISHED}
    for i, kind in enumerate(("sft", "dpo")):
        for src, k in out[kind].group_by("source").len().iter_rows():
            n[src][i] = k
    shares = {}
    for src, (sft, dpo) in n.items():
        pub_sft, pub_dpo = PUBLISHED[src]
        shares[src] = sft / (sft + dpo)
        published = pub_sft / (pub_sft + pub_dpo)
        assert abs(shares[src] - published) <= 0.01, (src, sft, dpo, published)
        n_prompts = prompts.filter(pl.col("source") == src).height
        assert sft + dpo > 0.5 * n_prompts, (src, sft, dpo, n_prompts)  # not a degenerate split
    # math and code now go to both phases (the issue: 0 SFT / 100% DPO)
    assert all(n[s][0] and n[s][1] for s in ("openmathinstruct2", "leetcode",
                                              "self_oss_instruct"))
    # Chinese: SFT only, Qwen2.5-72B only
    zh = out["sft"].filter(pl.col("category") == "chinese")
    assert set(zh["model"]) == {"qwen2.5-72b-instruct"} and zh.height > 0
    # every DPO margin is inside the window after rounding
    assert out["dpo"]["margin"].is_between(0.01, 0.1).all()
