"""Selection speed: ``fusedata.select.select_tables`` (polars) vs a per-prompt Python loop.

Synthetic verified responses at FuseChat-3.0 scale (default 160k prompts x 4
source models x 4-6 samples = ~3.2M responses; instruction / math / code;
some NaN scores, truncations, backend errors and unverifiable verdicts) go
through both implementations of the same rules; the outputs are asserted
equal, both times are printed, and the last line is ``ratio: X``
(baseline seconds / polars seconds).

    python benchmarks/selection.py              # full size
    python benchmarks/selection.py --prompts 20000

The loop baseline (:func:`reference_select`) is written plainly from the rules
in ``fusedata/select.py``'s docstring; the tests also use it as an oracle.
"""

from __future__ import annotations

import sys
from pathlib import Path

# this file is named like the stdlib ``select`` module: never let its folder shadow it
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import gc  # noqa: E402
import hashlib  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from fusedata.recipe import Selection  # noqa: E402
from fusedata.select import (  # noqa: E402
    DPO_COLUMNS,
    DROP_SCHEMA,
    SFT_COLUMNS,
    WRPO_COLUMNS,
    select_tables,
)

VERIFIED = ("math", "code")
PASSING = ("correct", "passed")

BENCH_CFG = Selection(seed=0, split={"instruction": {"mode": "ratio", "sft": 0.4},
                                     "math": {"mode": "pair_first", "dpo_share": 0.2},
                                     "code": {"mode": "pair_first", "dpo_share": 0.2}})


# --------------------------------------------------------------------------- data


def make_data(n_prompts: int, seed: int = 0, n_models: int = 4, target: bool = False
              ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Synthetic ``responses`` (verify-stage columns) and the prompts table they answer."""
    rng = np.random.default_rng(seed)
    cats = np.array(["instruction", "math", "code"])
    pcat = rng.choice(3, size=n_prompts, p=[0.5, 0.3, 0.2])
    pids = np.array([hashlib.sha256(f"{seed}:{i}".encode()).hexdigest()
                     for i in range(n_prompts)])
    sources = np.array(["ultrafeedback", "openmath", "leetcode"])
    prompts = pl.DataFrame({"prompt_id": pids, "category": cats[pcat], "source": sources[pcat]})
    models = [f"model-{k}" for k in range(n_models)] + (["target"] if target else [])
    k_per = rng.integers(4, 7, size=(n_prompts, len(models)))  # 4..6 samples, mean 5
    reps = k_per.ravel()
    n = int(reps.sum())
    p_idx = np.repeat(np.repeat(np.arange(n_prompts), len(models)), reps)
    m_idx = np.repeat(np.tile(np.arange(len(models)), n_prompts), reps)
    starts = np.repeat(np.cumsum(reps) - reps, reps)
    s_idx = np.arange(n) - starts
    # per-prompt RM level + per-response noise: many pairs land in the 0.01-0.1 window
    level = rng.normal(0.12, 0.03, size=n_prompts)
    score = np.round(level[p_idx] + rng.normal(0, 0.04, size=n), 4)
    cat = pcat[p_idx]
    u = rng.random(n)
    verdict = np.full(n, None, dtype=object)
    math_rows, code_rows = cat == 1, cat == 2
    verdict[math_rows] = np.where(u[math_rows] < 0.55, "correct",
                                  np.where(u[math_rows] < 0.9, "incorrect",
                                           np.where(u[math_rows] < 0.97, "no_answer", "timeout")))
    verdict[code_rows] = np.where(u[code_rows] < 0.5, "passed",
                                  np.where(u[code_rows] < 0.93, "failed",
                                           np.where(u[code_rows] < 0.98, "syntax_error",
                                                    "sandbox_error")))
    # a tenth of code prompts: every response fails
    allfail = (rng.random(n_prompts) < 0.1)[p_idx] & code_rows
    verdict[allfail & (verdict == "passed")] = "failed"
    w = rng.random(n)
    score[w < 0.005] = np.nan
    truncated = (w >= 0.005) & (w < 0.025)
    error = np.where((w >= 0.025) & (w < 0.027), "backend timeout", None)
    model_names = np.array(models)
    resp = pl.DataFrame({
        "prompt_id": pids[p_idx],
        "category": cats[cat],
        "source": sources[cat],
        "model": model_names[m_idx],
        "role": np.where(model_names[m_idx] == "target", "target", "source"),
        "response_id": [f"{i:016x}" for i in rng.permutation(n)],
        "response": [f"response {i}" for i in range(n)],
        "score": score,
        "truncated": truncated,
        "finish_reason": np.where(truncated, "length", np.where(w >= 0.027, "stop", np.where(w >= 0.025, "error", "stop"))),
        "error": pl.Series(error.tolist(), dtype=pl.String),
        "verdict": pl.Series(verdict.tolist(), dtype=pl.String),
        "sample_idx": s_idx.astype(np.int32),
    })
    return resp, prompts


# --------------------------------------------------------------------------- baseline


def _u(seed: int, pid: str) -> tuple[float, float]:
    d = hashlib.blake2b(f"{seed}\x00{pid}".encode(), digest_size=16).digest()
    return ((int.from_bytes(d[:8], "big") >> 11) / 2.0**53,
            (int.from_bytes(d[8:], "big") >> 11) / 2.0**53)


def reference_select(responses: pl.DataFrame, prompts_meta: pl.DataFrame | None,
                     cfg: Selection) -> dict[str, pl.DataFrame]:
    """The selection rules as a plain loop over prompts (the benchmark baseline and test oracle)."""
    lo = cfg.margin[0] - cfg.margin_tolerance
    hi = cfg.margin[1] + cfg.margin_tolerance
    failing = cfg.failing_verdicts
    cols = responses.columns

    def get(row: dict[str, Any], k: str, default: Any) -> Any:
        return row[k] if k in cols else default

    meta: dict[str, tuple[str, str]] = {}
    if prompts_meta is not None:
        for pid, cat, src in prompts_meta.select("prompt_id", "category", "source").iter_rows():
            meta.setdefault(pid, (cat, src))
    by_prompt: dict[str, list[dict[str, Any]]] = {}
    for row in responses.iter_rows(named=True):
        meta.setdefault(row["prompt_id"], (row["category"], row["source"]))
        by_prompt.setdefault(row["prompt_id"], []).append(row)

    drops: list[tuple] = []
    info: dict[str, dict[str, Any]] = {}
    for pid, rows in by_prompt.items():
        cat, src = meta[pid]
        verified = cat in VERIFIED
        for row in rows:
            v = get(row, "verdict", None)
            s = row["score"]
            passing = v in PASSING
            fails = verified and cat in failing and v in failing[cat]
            if get(row, "finish_reason", "stop") == "error" or get(row, "error", None) is not None:
                bad = "error"
            elif s is None or s != s:
                bad = "nan_score"
            elif get(row, "truncated", False):
                bad = "truncated"
            elif verified and not passing and not fails:
                bad = "unverified" if v in (None, "unverified") else "verifier_error"
            else:
                bad = None
            row["_bad"] = bad
            row["_elig"] = bad is None and (not verified or passing)
            row["_rej"] = bad is None and (not verified or fails)
            if bad is not None:
                drops.append((pid, cat, src, "responses", row["model"], bad))

    def stats(rows: list[dict[str, Any]]) -> dict[str, int]:
        bads = [x["_bad"] for x in rows]
        return {"n_resp": len(rows), "n_usable": bads.count(None),
                "n_elig": sum(x["_elig"] for x in rows), "n_rej": sum(x["_rej"] for x in rows),
                "n_error": bads.count("error"), "n_nan": bads.count("nan_score"),
                "n_trunc": bads.count("truncated"), "n_unver": bads.count("unverified")}

    def base_reason(st: dict[str, int], verified: bool) -> str | None:
        n = st["n_resp"]
        if n == 0:
            return "no_responses"
        if st["n_usable"] == 0:
            for key, name in (("n_error", "error"), ("n_nan", "nan_score"),
                              ("n_trunc", "truncated"), ("n_unver", "unverified")):
                if st[key] == n:
                    return name
            return "no_usable_response"
        if st["n_elig"] == 0:
            return "all_failed" if verified else "no_eligible_response"
        return None

    def rank(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted((x for x in rows if x["_bad"] is None),
                      key=lambda x: (-x["score"], x["response_id"]))

    def pairs(rows: list[dict[str, Any]]) -> tuple[list[tuple], list[float]]:
        per_model: dict[str, list[dict[str, Any]]] = {}
        for x in rank(rows):
            per_model.setdefault(x["model"], []).append(x)
        valid, margins = [], []
        for m, xs in per_model.items():
            elig = [x for x in xs if x["_elig"]]
            if not elig:
                continue
            c = elig[0]
            cands = [x for x in xs if x["_rej"] and x is not c]
            if not cands:
                continue
            if cfg.window_policy == "strict":
                e = cands[-1]
                margins.append(c["score"] - e["score"])
                if lo <= c["score"] - e["score"] <= hi:
                    valid.append((m, c, e))
            else:
                margins += [c["score"] - x["score"] for x in cands]
                inside = [x for x in cands if lo <= c["score"] - x["score"] <= hi]
                if inside:
                    valid.append((m, c, inside[-1]))
        return valid, margins

    def pair_reason(st: dict[str, int], margins: list[float], verified: bool) -> str:
        if verified and st["n_rej"] == 0:
            return "all_passed"
        if not margins:
            return "no_same_model_pair"
        if max(margins) < lo:
            return "margin_below"
        if min(margins) > hi:
            return "margin_above"
        return "margin_outside"

    def pick(valid: list[tuple], v: float) -> list[tuple]:
        if not valid:
            return []
        if cfg.pairing == "all":
            return sorted(valid, key=lambda t: t[0])
        if cfg.pairing == "best_chosen":
            return [min(valid, key=lambda t: (-t[1]["score"], t[0]))]
        ordered = sorted(valid, key=lambda t: t[0])
        return [ordered[int(math.floor(v * len(ordered)))]]

    # per prompt: split inputs
    for pid in sorted(meta):
        cat, src = meta[pid]
        rule = cfg.rule_for(cat)
        u, v = _u(cfg.seed, pid)
        rows = by_prompt.get(pid, [])
        source_rows = [x for x in rows if get(x, "role", "source") == "source"]
        target_rows = [x for x in rows if get(x, "role", "source") == "target"]
        sft_rows = [x for x in source_rows if rule.model is None or x["model"] == rule.model]
        ranked_src = [x for x in rank(source_rows) if x["_elig"]]
        ranked_sft = [x for x in rank(sft_rows) if x["_elig"]]
        may_dpo = rule.mode == "pair_first" or (rule.mode == "ratio" and u >= rule.sft)
        valid, margins = pairs(source_rows) if may_dpo else ([], [])
        info[pid] = dict(cat=cat, src=src, rule=rule, u=u, v=v, verified=cat in VERIFIED,
                         source_rows=source_rows, target_rows=target_rows, sft_rows=sft_rows,
                         best_any=ranked_src[0] if ranked_src else None,
                         best_sft=ranked_sft[0] if ranked_sft else None,
                         valid=valid, margins=margins)

    # the split; pair_first needs the whole source
    split: dict[str, str] = {}
    pf_by_source: dict[str, list[str]] = {}
    for pid, d in info.items():
        mode = d["rule"].mode
        if mode == "sft_only":
            split[pid] = "sft"
        elif mode == "ratio":
            split[pid] = "sft" if d["u"] < d["rule"].sft else "dpo"
        else:
            split[pid] = "sft"
            pf_by_source.setdefault(d["src"], []).append(pid)
    for pids in pf_by_source.values():
        k = math.floor(info[pids[0]]["rule"].dpo_share * len(pids))
        pairable = sorted((p for p in pids if info[p]["valid"]),
                          key=lambda p: (info[p]["u"], p))
        for p in pairable[:k]:
            split[p] = "dpo"

    sft, dpo, wrpo = [], [], []
    tgt_sources = {info[p]["src"] for p in info if info[p]["target_rows"]}
    for pid in sorted(info):
        d = info[pid]
        cat, src, verified = d["cat"], d["src"], d["verified"]
        if split[pid] == "sft":
            b = d["best_sft"]
            if b is not None:
                sft.append((pid, cat, src, b["model"], b["response_id"], b["response"],
                            b["score"]))
            else:
                reason = base_reason(stats(d["sft_rows"]), verified) or "no_eligible_response"
                drops.append((pid, cat, src, "sft", None, reason))
            continue
        chosen = pick(d["valid"], d["v"])
        for m, c, r in chosen:
            dpo.append((pid, cat, src, m, c["response_id"], c["response"], c["score"],
                        r["response_id"], r["response"], r["score"], c["score"] - r["score"]))
        if not chosen:
            st = stats(d["source_rows"])
            reason = base_reason(st, verified) or pair_reason(st, d["margins"], verified)
            drops.append((pid, cat, src, "dpo", None, reason))
        if src not in tgt_sources:
            continue
        t_valid, t_margins = pairs(d["target_rows"])
        t_pick = pick(t_valid, d["v"])
        s = d["best_any"]
        if s is not None and t_pick:
            for m, c, r in t_pick:
                wrpo.append((pid, cat, src, s["model"], s["response_id"], s["response"],
                             s["score"], m, c["response_id"], c["response"], c["score"],
                             r["response_id"], r["response"], r["score"],
                             c["score"] - r["score"]))
        elif s is None:
            drops.append((pid, cat, src, "wrpo", None, "no_source_response"))
        else:
            st = stats(d["target_rows"])
            reason = base_reason(st, verified) or pair_reason(st, t_margins, verified)
            drops.append((pid, cat, src, "wrpo", None, "target_" + reason))

    def frame(rows: list[tuple], columns: tuple[str, ...]) -> pl.DataFrame:
        schema = {c: (pl.Float64 if c.startswith("score") or c == "margin" else pl.String)
                  for c in columns}
        return pl.DataFrame(rows, schema=schema, orient="row")

    return {"sft": frame(sft, SFT_COLUMNS), "dpo": frame(dpo, DPO_COLUMNS),
            "wrpo": frame(wrpo, WRPO_COLUMNS), "drops": frame(drops, tuple(DROP_SCHEMA))}


def assert_same(a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame]) -> None:
    """Same tables, same rows (order-insensitive), same columns, exact floats."""
    assert set(a) == set(b), (set(a), set(b))
    for name in a:
        x, y = a[name], b[name]
        assert x.columns == y.columns, (name, x.columns, y.columns)
        assert x.height == y.height, f"{name}: {x.height} rows vs {y.height}"
        xs = x.sort(x.columns, nulls_last=True)
        ys = y.sort(y.columns, nulls_last=True)
        diff = xs.with_row_index().join(ys.with_row_index(), on="index", suffix="_b")
        for c in x.columns:
            bad = diff.filter(~pl.col(c).eq_missing(pl.col(f"{c}_b")))
            assert bad.height == 0, f"{name}.{c} differs, e.g. {bad.head(3).to_dicts()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=160_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t = time.perf_counter()
    resp, prompts = make_data(args.prompts, seed=args.seed)
    print(f"data: {args.prompts:,} prompts, {resp.height:,} responses "
          f"({time.perf_counter() - t:.1f}s to generate); load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machines: timings vary)",
          flush=True)

    gc.collect()
    t = time.perf_counter()
    ours = select_tables(resp, prompts, BENCH_CFG)
    t_ours = time.perf_counter() - t
    print(f"polars select_tables: {t_ours:.2f}s  "
          + ", ".join(f"{k} {v.height:,}" for k, v in ours.items()), flush=True)

    gc.collect()
    t = time.perf_counter()
    base = reference_select(resp, prompts, BENCH_CFG)
    t_base = time.perf_counter() - t
    print(f"python per-prompt loop: {t_base:.2f}s  "
          + ", ".join(f"{k} {v.height:,}" for k, v in base.items()), flush=True)

    assert_same(ours, base)
    print("outputs: identical")
    print(f"ratio: {t_base / t_ours:.1f}")


if __name__ == "__main__":
    main()
