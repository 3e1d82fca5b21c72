"""The selection oracle: the rules of ``fusedata/select.py`` as a plain per-prompt loop.

:func:`reference_select` is written from the rules in ``fusedata/select.py``'s
docstring, independently of the polars implementation; the property tests
compare the two on random tables, and ``benchmarks/selection.py`` times it as
the baseline (and imports it from here: one copy).  :func:`make_data` makes
synthetic verified responses at any scale.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np
import polars as pl

from fusedata.recipe import CATEGORIES, KNOWN_VERDICTS, PASSING_VERDICT, Selection
from fusedata.select import DPO_COLUMNS, DROP_SCHEMA, SFT_COLUMNS, WRPO_COLUMNS

VERIFIED = ("math", "code")

#: recipes/fusechat3.yaml's split kinds: record shares per category and one per source
BENCH_CFG = Selection(seed=0, split={"instruction": {"mode": "record_share", "sft": 0.4},
                                     "math": {"mode": "record_share", "sft": 0.7758},
                                     "code": {"mode": "pair_first", "dpo_share": 0.2},
                                     "leetcode": {"mode": "record_share", "sft": 0.603}})


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


def hash_u(seed: int, pid: str) -> tuple[float, float]:
    """(u, v) of a prompt, from the documented rule: top 53 bits of each blake2b half."""
    d = hashlib.blake2b(f"{seed}\x00{pid}".encode(), digest_size=16).digest()
    return ((int.from_bytes(d[:8], "big") >> 11) / 2.0**53,
            (int.from_bytes(d[8:], "big") >> 11) / 2.0**53)


def reference_select(responses: pl.DataFrame, prompts_meta: pl.DataFrame | None,
                     cfg: Selection) -> dict[str, pl.DataFrame]:
    """The selection rules as a plain loop over prompts (the benchmark baseline and test oracle)."""
    lo, hi = cfg.margin
    w_lo, w_hi = cfg.wrpo_margin if cfg.wrpo_margin is not None else (-math.inf, math.inf)
    dec = cfg.margin_decimals
    failing = cfg.failing_verdicts
    cols = responses.columns

    def get(row: dict[str, Any], k: str, default: Any) -> Any:
        return row[k] if k in cols else default

    def margin(c: dict[str, Any], r: dict[str, Any]) -> float:
        m = c["score"] - r["score"]
        return m if dec is None else round(m * 10.0**dec) / 10.0**dec

    def same_text(a: dict[str, Any], b: dict[str, Any]) -> bool:
        return "response" in cols and a["response"].strip() == b["response"].strip()

    meta: dict[str, tuple[str, str]] = {}
    if prompts_meta is not None:
        for pid, cat, src in prompts_meta.select("prompt_id", "category", "source").iter_rows():
            meta.setdefault(pid, (cat, src))
    by_prompt: dict[str, list[dict[str, Any]]] = {}
    for row in responses.iter_rows(named=True):
        meta.setdefault(row["prompt_id"], (row["category"], row["source"]))
        by_prompt.setdefault(row["prompt_id"], []).append(row)
    for pid, (cat, _) in meta.items():
        if cat is not None and cat not in CATEGORIES:
            raise ValueError(f"unknown category {cat!r} (prompt {pid!r})")

    drops: list[tuple] = []
    info: dict[str, dict[str, Any]] = {}
    for pid, rows in by_prompt.items():
        cat, src = meta[pid]
        if cat is None:
            continue
        verified = cat in VERIFIED
        for row in rows:
            v = get(row, "verdict", None)
            s = row["score"]
            text = get(row, "response", "x")
            passing = verified and v == PASSING_VERDICT[cat]
            fails = verified and v in failing.get(cat, [])
            if get(row, "finish_reason", "stop") == "error" or get(row, "error", None) is not None:
                bad = "error"
            elif s is None or s != s:
                bad = "nan_score"
            elif math.isinf(s):
                bad = "non_finite_score"
            elif get(row, "truncated", False):
                bad = "truncated"
            elif text is None or not text.strip():
                bad = "empty_response"
            elif verified and v in (None, "unverified"):
                bad = "unverified"
            elif verified and v not in KNOWN_VERDICTS[cat]:
                bad = "verdict_mismatch"
            elif verified and not passing and not fails:
                bad = "verifier_error"
            else:
                bad = None
            row["_bad"] = bad
            row["_elig"] = bad is None and (not verified or passing)
            row["_rej"] = bad is None and (not verified or fails)
            if bad is not None:
                drops.append((pid, cat, src, "responses", row["model"], bad))

    def stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
        bads = [x["_bad"] for x in rows]
        return {"n_resp": len(rows), "n_usable": bads.count(None),
                "n_elig": sum(x["_elig"] for x in rows), "n_rej": sum(x["_rej"] for x in rows),
                "bads": set(bads)}

    def base_reason(st: dict[str, Any], verified: bool) -> str | None:
        if st["n_resp"] == 0:
            return "no_responses"
        if st["n_usable"] == 0:
            return next(iter(st["bads"])) if len(st["bads"]) == 1 else "no_usable_response"
        if st["n_elig"] == 0:
            return "all_failed" if verified else "no_eligible_response"
        return None

    def rank(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted((x for x in rows if x["_bad"] is None),
                      key=lambda x: (-x["score"], x["response_id"]))

    def pairs(rows: list[dict[str, Any]], lo: float, hi: float
              ) -> tuple[list[tuple], list[float], int]:
        per_model: dict[str, list[dict[str, Any]]] = {}
        for x in rank(rows):
            per_model.setdefault(x["model"], []).append(x)
        valid, margins, n_ident = [], [], 0
        for m, xs in per_model.items():
            elig = [x for x in xs if x["_elig"]]
            if not elig:
                continue
            c = elig[0]
            cands = [x for x in xs if x["_rej"] and x is not c]
            n_ident += sum(same_text(c, x) for x in cands)
            cands = [x for x in cands if not same_text(c, x)]
            if not cands:
                continue
            if cfg.window_policy == "strict":
                e = cands[-1]
                margins.append(margin(c, e))
                if lo <= margin(c, e) <= hi:
                    valid.append((m, c, e))
            else:
                margins += [margin(c, x) for x in cands]
                inside = [x for x in cands if lo <= margin(c, x) <= hi]
                if inside:
                    valid.append((m, c, inside[-1]))
        return valid, margins, n_ident

    def pair_reason(st: dict[str, Any], margins: list[float], n_ident: int, verified: bool,
                    lo: float, hi: float) -> str:
        if verified and st["n_rej"] == 0:
            return "all_passed"
        if not margins:
            return "identical_pair" if n_ident else "no_same_model_pair"
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
    split: dict[str, str] = {}
    over: set[str] = set()
    for pid in sorted(meta):
        cat, src = meta[pid]
        if cat is None:
            drops.append((pid, cat, src, "sft", None, "null_category"))
            continue
        rule = cfg.rule_for(cat, src)
        u, v = hash_u(cfg.seed, pid)
        rows = by_prompt.get(pid, [])
        source_rows = [x for x in rows if get(x, "role", "source") == "source"]
        target_rows = [x for x in rows if get(x, "role", "source") == "target"]
        sft_rows = [x for x in source_rows if rule.model is None or x["model"] == rule.model]
        ranked_src = [x for x in rank(source_rows) if x["_elig"]]
        ranked_sft = [x for x in rank(sft_rows) if x["_elig"]]
        may_dpo = rule.mode in ("pair_first", "record_share") or (
            rule.mode == "ratio" and u >= rule.sft)
        valid, margins, n_ident = pairs(source_rows, lo, hi) if may_dpo else ([], [], 0)
        info[pid] = dict(cat=cat, src=src, rule=rule, u=u, v=v, verified=cat in VERIFIED,
                         source_rows=source_rows, target_rows=target_rows, sft_rows=sft_rows,
                         best_any=ranked_src[0] if ranked_src else None,
                         best_sft=ranked_sft[0] if ranked_sft else None,
                         valid=valid, margins=margins, n_ident=n_ident)

    # the split; pair_first and record_share need the whole source
    groups: dict[tuple[str, str, str], list[str]] = {}
    for pid, d in info.items():
        mode = d["rule"].mode
        if mode == "sft_only":
            split[pid] = "sft"
        elif mode == "ratio":
            split[pid] = "sft" if d["u"] < d["rule"].sft else "dpo"
        else:
            split[pid] = "sft"
            groups.setdefault((mode, d["src"], d["cat"] if mode == "record_share" else ""),
                              []).append(pid)
    for (mode, _, _), pids in groups.items():
        rule = info[pids[0]]["rule"]
        by_u = sorted(pids, key=lambda p: (info[p]["u"], p))
        if mode == "pair_first":
            k = math.floor(rule.dpo_share * len(pids))
            for p in [p for p in by_u if info[p]["valid"]][:k]:
                split[p] = "dpo"
            continue
        s = rule.sft
        sft_ok = {p for p in pids if info[p]["best_sft"] is not None}
        dpo_ok = {p for p in pids if info[p]["valid"]}
        only_s = [p for p in by_u if p in sft_ok and p not in dpo_ok]
        only_d = [p for p in by_u if p in dpo_ok and p not in sft_ok]
        both = [p for p in by_u if p in sft_ok and p in dpo_ok]
        a, b, f = len(only_s), len(only_d), len(both)
        n = math.floor(s * (a + b + f) + 0.5)
        for p in by_u:
            if p not in sft_ok and p not in dpo_ok:
                split[p] = "sft" if info[p]["u"] < s else "dpo"
        for p in only_d:
            split[p] = "dpo"
        if n < a:  # too few pairs: every pair to DPO, SFT-only prompts trimmed
            for p in both:
                split[p] = "dpo"
            keep = min(a, math.floor(s * (b + f) / (1 - s) + 0.5))
            over.update(only_s[keep:])
        elif n > a + f:  # too few SFT-able prompts: DPO-only prompts trimmed
            for p in both:
                split[p] = "sft"
            keep = min(b, math.floor((1 - s) * (a + f) / s + 0.5))
            over.update(only_d[keep:])
        else:
            for i, p in enumerate(both):
                split[p] = "sft" if i < n - a else "dpo"

    sft, dpo, wrpo = [], [], []
    tgt_sources = {info[p]["src"] for p in info if info[p]["target_rows"]}
    for pid in sorted(info):
        d = info[pid]
        cat, src, verified = d["cat"], d["src"], d["verified"]
        if split[pid] == "sft":
            b = d["best_sft"]
            if pid in over:
                drops.append((pid, cat, src, "sft", None, "over_share"))
            elif b is not None:
                sft.append((pid, cat, src, b["model"], b["response_id"], b["response"],
                            b["score"]))
            else:
                reason = base_reason(stats(d["sft_rows"]), verified) or "no_eligible_response"
                drops.append((pid, cat, src, "sft", None, reason))
            continue
        chosen = [] if pid in over else pick(d["valid"], d["v"])
        for m, c, r in chosen:
            dpo.append((pid, cat, src, m, c["response_id"], c["response"], c["score"],
                        r["response_id"], r["response"], r["score"], margin(c, r)))
        if pid in over:
            drops.append((pid, cat, src, "dpo", None, "over_share"))
        elif not chosen:
            st = stats(d["source_rows"])
            reason = base_reason(st, verified) or pair_reason(st, d["margins"], d["n_ident"],
                                                              verified, lo, hi)
            drops.append((pid, cat, src, "dpo", None, reason))
        if src not in tgt_sources:
            continue
        t_valid, t_margins, t_ident = pairs(d["target_rows"], w_lo, w_hi)
        t_pick = pick(t_valid, d["v"])
        s = d["best_any"]
        kept = [(m, c, r) for m, c, r in t_pick if s is not None and not same_text(s, r)]
        if kept:
            for m, c, r in kept:
                wrpo.append((pid, cat, src, s["model"], s["response_id"], s["response"],
                             s["score"], m, c["response_id"], c["response"], c["score"],
                             r["response_id"], r["response"], r["score"], margin(c, r)))
        elif s is None:
            drops.append((pid, cat, src, "wrpo", None, "no_source_response"))
        elif t_pick:
            drops.append((pid, cat, src, "wrpo", None, "identical_pair"))
        else:
            st = stats(d["target_rows"])
            reason = base_reason(st, verified) or pair_reason(st, t_margins, t_ident, verified,
                                                              w_lo, w_hi)
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
