"""The ``select`` stage: SFT records, DPO pairs and WRPO triplets from verified responses.

The rules are FuseChat-3.0's "Data Construction" and WRPO's data recipe, with
every choice the papers leave open made explicit and configurable
(:class:`fusedata.recipe.Selection`).

**Categories.**  A prompt's category must be instruction / math / code / chinese:
any other value is an error naming it and a prompt id (a recipe's own
``category:`` fields are checked when it loads); a prompt whose category is null
gets one ``drops`` row (split ``sft``) with reason ``null_category`` and nothing else.

**Ranking.**  Within any group, responses are ranked by RM ``score`` descending,
ties broken by ``response_id`` ascending.  "Best" is the first eligible response
of a ranking, "lowest" the last candidate.  Nothing depends on input order.

**Usable / eligible / rejectable.**  A response is *unusable* (and listed in
``drops`` with ``split = "responses"`` and its model) for the first of: its
backend failed (``error``); its score is null or NaN (``nan_score``) or +-inf
(``non_finite_score``); it was cut at ``max_tokens`` (``truncated``); its text is
empty or whitespace only (``empty_response``, checked when a ``response`` column
is given); for math/code: no verdict or ``unverified`` (``unverified``), a verdict
that is not one of its category's verifier's (``verdict_mismatch``, e.g. ``passed``
on a math response), or any other verdict that is neither the category's passing
verdict nor one of its ``failing_verdicts`` (``verifier_error``: math ``no_answer``,
``timeout``, ``too_complex``, ``error``; code ``sandbox_error``).  A usable response
is *eligible* (SFT target, DPO chosen) when its category has no verifier
(instruction, chinese) or its verdict is the category's passing one (math
``correct``, code ``passed``).  It is *rejectable* (DPO/WRPO rejected) when its
category has no verifier or its verdict is in ``failing_verdicts`` (math:
``incorrect``; code: ``failed``, ``timeout``, ``memory``, ``syntax_error``,
``static_error``; see :data:`fusedata.recipe.DEFAULT_FAILING_VERDICTS` for why).

**Margins.**  margin = score_chosen - score_rejected rounded to ``margin_decimals``
(default 6) decimals, half to even; the window test uses and the tables store the
rounded value.  So float32 RM scores 0.51 / 0.50 (float64 difference 0.0099999905)
have margin 0.01 and fit ``[0.01, 0.1]``, and the stored margin is exactly the
number that was compared.  ``margin_decimals: null`` compares the raw difference.

**Split** (:class:`~fusedata.recipe.SplitRule`, looked up by the prompt's source
name, else its category, else ``default``).  Every prompt gets ``u`` = a blake2b
hash of ``(seed, prompt_id)`` mapped to [0, 1) (stable across machines and
polars versions).

* ``record_share``: per (source, category), each prompt is *SFT-able* (it has an
  SFT record under the SFT rule) and/or *DPO-able* (it has a valid DPO pair).
  With a = SFT-able only, b = DPO-able only, f = both and T = a + b + f, the
  SFT target is n = floor(sft * T + 0.5).  If a <= n <= a + f: the a go to SFT,
  the b to DPO and the f with the smallest ``u`` fill SFT up to n, the rest DPO.
  If n < a (too few pairs): every DPO-able prompt goes to DPO and SFT keeps the
  floor(sft * (b + f) / (1 - sft) + 0.5) SFT-only prompts with the smallest
  ``u``; if n > a + f: every SFT-able prompt goes to SFT and DPO keeps
  floor((1 - sft) * (a + f) / sft + 0.5) DPO-only prompts.  The prompts left out
  are dropped as ``over_share`` (in the split they would have gone to).  So the
  records land on ``sft`` within one record (of prompts, under ``pairing: all``).
  Prompts that are neither go to SFT when ``u < sft`` (for their drop reason).
* ``ratio``: SFT when ``u < sft`` (a share of prompts), else DPO.
* ``pair_first``: among the prompts of one *source dataset* that have a valid
  DPO pair, the ones with the smallest ``u`` go to DPO until
  ``floor(dpo_share * prompts of that source)`` are DPO; every other prompt is
  an SFT prompt (and is dropped if it has no eligible response).
* ``sft_only``: every prompt is an SFT prompt.

**SFT record.**  The best eligible response across source models (or only
from the rule's ``model``, e.g. Qwen-2.5-72B-Instruct for Chinese sets).

**DPO pair.**  Per (prompt, source model): chosen = the model's best eligible
response; rejected candidates = its other rejectable responses whose stripped
text differs from the chosen one's (a candidate with the same text is no
preference).  In window when the margin is inside ``margin``.
``window_policy: nearest`` takes the lowest-ranked candidate inside the window
(the extreme pair when it fits); ``strict`` keeps the model only if its extreme
(lowest-ranked) candidate fits.  Among models with a valid pair, ``pairing``
picks: ``best_chosen`` (highest chosen score, ties by model name), ``random``
(seeded per prompt) or ``all``.

**WRPO triplet** (only when target-role responses exist; for DPO-split prompts
of the sources the target sampled): ``chosen_source`` (y_ws) = the best
eligible source response (the SFT rule, without the model restriction);
``chosen_target`` (y_wt) / ``rejected`` (y_l) = the target's best eligible and
its lowest-ranked rejectable response with a different text (WRPO's rule: its
highest- and lowest-scored samples; math/code keep the verifier rules).  With
``wrpo_margin`` set, that window (and ``window_policy``) applies to y_wt - y_l as
the DPO window does.  A triplet whose y_ws text equals y_l's is dropped
(``identical_pair``).

**Drops.**  Every prompt without a record in the split it went to gets one
``drops`` row (``model`` null, ``split`` sft/dpo/wrpo) whose reason is the first
that applies: ``null_category``; ``over_share``; ``no_responses``; all responses
unusable: their common reason (``error``, ``nan_score``, ...) when they share
one, else ``no_usable_response``; ``all_failed`` (math/code: no response passes);
DPO/WRPO only: ``all_passed`` (math/code: nothing to reject),
``identical_pair`` (the only candidates repeat the chosen text),
``no_same_model_pair`` (no model has an eligible and another rejectable
response), ``margin_below`` / ``margin_above`` (every candidate pair is
below / above the window), ``margin_outside`` (some below, some above).
WRPO reasons about the target's responses are prefixed ``target_``; a prompt
without an eligible source response gets ``no_source_response``.  So every
prompt appears exactly once in ``sft`` / ``dpo`` (by prompt id) or in
``drops`` with split sft/dpo: the report recovers per-source totals from that.

The heavy lifting is :func:`select_tables`, a pure function over a polars
frame (group by prompt and model, rank by score), so the benchmark and tests
call it without the engine.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import polars as pl

from .engine import Dataset, ReduceStage
from .recipe import CATEGORIES, KNOWN_VERDICTS, PASSING_VERDICT, Selection

VERIFIED = ("math", "code")
#: a prompt row whose category has a verifier
_VERIFIED = pl.col("category").is_in(VERIFIED)

#: texts of the selected rows (``ri`` -> text), for a slim frame (see :func:`select_tables`)
FetchTexts = Callable[[pl.Series], pl.DataFrame]
#: the text columns of the output tables (filled last: texts are big)
TEXT_COLUMNS = {"sft": ("response",), "dpo": ("chosen", "rejected"),
                "wrpo": ("chosen_source", "chosen_target", "rejected")}

#: the response columns selection reads (others are never loaded)
INPUT_COLUMNS = ("prompt_id", "category", "source", "model", "role", "response_id", "response",
                 "score", "truncated", "finish_reason", "error", "verdict")

SFT_COLUMNS = ("prompt_id", "category", "source", "model", "response_id", "response", "score")
DPO_COLUMNS = ("prompt_id", "category", "source", "model", "chosen_id", "chosen", "score_chosen",
               "rejected_id", "rejected", "score_rejected", "margin")
WRPO_COLUMNS = ("prompt_id", "category", "source", "chosen_source_model", "chosen_source_id",
                "chosen_source", "score_chosen_source", "target_model", "chosen_target_id",
                "chosen_target", "score_chosen_target", "rejected_id", "rejected",
                "score_rejected", "margin")
DROP_SCHEMA: dict[str, pl.DataType] = {"prompt_id": pl.String, "category": pl.String,
                                       "source": pl.String, "split": pl.String,
                                       "model": pl.String, "reason": pl.String}

#: why a response is unusable (``drops`` rows with ``split = "responses"``), in check order
BAD_REASONS = pl.Enum(["error", "nan_score", "non_finite_score", "truncated", "empty_response",
                       "unverified", "verdict_mismatch", "verifier_error"])

_DEFAULTS: dict[str, pl.Expr] = {
    "role": pl.lit("source"), "truncated": pl.lit(False), "finish_reason": pl.lit("stop"),
    "error": pl.lit(None, pl.String), "verdict": pl.lit(None, pl.String),
    "response": pl.lit(None, pl.String),
}


def split_u(seed: int, prompt_ids: list[str]) -> tuple[list[float], list[float]]:
    """Two independent uniforms in [0, 1) per prompt from blake2b(seed, prompt_id).

    ``u`` decides the split (and pair_first / record_share order), ``v`` the
    ``pairing: random`` choice.  A cryptographic hash, not ``pl.Expr.hash``, because
    polars documents its hash as unstable across versions and the split must not move
    on upgrade.
    """
    import numpy as np

    pre = f"{seed}\x00".encode()
    blob = b"".join([hashlib.blake2b(pre + pid.encode(), digest_size=16).digest()
                     for pid in prompt_ids])
    # top 53 bits: exact in float64, so u is in [0, 1) and never rounds up to 1.0
    words = (np.frombuffer(blob, dtype=">u8").reshape(-1, 2) >> 11).astype(np.float64) / 2.0**53
    return words[:, 0].tolist(), words[:, 1].tolist()


def text_keys(has_text: bool = True) -> dict[str, pl.Expr]:
    """``empty`` and ``h`` of the ``response`` column (see :func:`_prepare`): the only
    things selection needs from a text, so a slim frame can carry them instead."""
    text = pl.col("response").str.strip_chars()
    if not has_text:
        return {"empty": pl.lit(False), "h": pl.int_range(pl.len(), dtype=pl.UInt64)}
    return {"empty": text.is_null() | (text == ""), "h": text.hash(seed=0)}


def _prepare(responses: pl.DataFrame, prompts_meta: pl.DataFrame | None
             ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Prompt table P (sorted by prompt_id, ``pidx`` = row) and slim responses R.

    R drops the text and carries ``ri`` (row in ``responses``) to fetch it at
    the end, ``empty`` (blank text) and ``h`` (a hash of the stripped text, to
    spot a rejected response that repeats the chosen one: equal texts always get
    equal hashes, so a collision can only drop a pair, never emit a bad one);
    ``model`` becomes an Enum over the sorted model names, so grouping is on small
    integers and sorting by it is sorting by name.
    """
    missing = [c for c in ("prompt_id", "category", "source", "model", "response_id", "score")
               if c not in responses.columns]
    if missing:
        raise ValueError(f"select: response records lack column(s) {missing}; "
                         "expected the verify stage's output (fusedata/records.py)")
    has_text = "response" in responses.columns
    slim = not has_text and "h" in responses.columns
    fill = [v.alias(k) for k, v in _DEFAULTS.items() if k not in responses.columns]
    r = responses.with_columns(fill).select(
        *[c for c in INPUT_COLUMNS if c != "response"],
        **(dict(empty="empty", h="h") if slim else text_keys(has_text)))
    models = sorted(r["model"].cast(pl.String).unique().drop_nulls().to_list())
    if r["model"].null_count():
        raise ValueError("select: a response record has no model name")

    def table(frames: list[pl.DataFrame]) -> pl.DataFrame:
        return (pl.concat(frames, how="vertical_relaxed")
                .unique("prompt_id", keep="first", maintain_order=True)
                .sort("prompt_id").with_row_index("pidx"))

    def attach(p: pl.DataFrame) -> pl.DataFrame:
        return r.select("prompt_id").join(p.select("prompt_id", "pidx"), on="prompt_id",
                                          how="left", maintain_order="left")["pidx"]

    keys = ["prompt_id", "category", "source"]
    if prompts_meta is not None:
        p = table([prompts_meta.select(keys)])
        pidx = attach(p)
        if pidx.null_count():  # responses to prompts the table does not list: keep them too
            p = table([prompts_meta.select(keys), r.filter(pidx.is_null()).select(keys)])
            pidx = attach(p)
    else:
        p = table([r.select(keys)])
        pidx = attach(p)
    p = p.with_columns(pl.col("category").cast(pl.String), pl.col("source").cast(pl.String))
    unknown = p.filter(pl.col("category").is_not_null()
                       & ~pl.col("category").is_in(list(CATEGORIES)))
    if unknown.height:
        cats = sorted(unknown["category"].unique().to_list())
        raise ValueError(
            f"select: {unknown.height} prompt(s) have an unknown category "
            f"({', '.join(map(repr, cats))}), e.g. prompt_id {unknown['prompt_id'][0]!r} "
            f"(category {unknown['category'][0]!r}); a category must be one of "
            f"{', '.join(CATEGORIES)}: fix the prompt source's `category` or its loader")
    roles = set(r["role"].cast(pl.String).unique().to_list())
    if roles - {"source", "target"}:
        raise ValueError(f"select: unknown response role(s) {sorted(map(str, roles))}; "
                         "expected source or target")
    r = r.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("ri"), pidx,
        p["category"].gather(pidx).alias("category"),
        pl.col("model").cast(pl.String).cast(pl.Enum(models)),
        target=pl.col("role").cast(pl.String) == "target",
        response_id=pl.col("response_id").cast(pl.String), score=pl.col("score"),
        truncated="truncated", finish_reason="finish_reason", error="error",
        verdict=pl.col("verdict").cast(pl.String), empty="empty", h="h")
    return p, r


def _classify(r: pl.DataFrame, failing: dict[str, list[str]]) -> pl.DataFrame:
    """Add ``bad`` (the unusable reason or null), ``eligible`` and ``rejectable``.

    Verdicts count only for their own category: ``passed`` on a math response is a
    ``verdict_mismatch``, never a pass.
    """
    cat = pl.col("category")
    verdict = pl.col("verdict")
    verified = cat.is_in(VERIFIED)
    passing = pl.lit(False)
    fails = pl.lit(False)
    known = pl.lit(False)
    for c in VERIFIED:
        passing = pl.when(cat == c).then(verdict == PASSING_VERDICT[c]).otherwise(passing)
        fails = pl.when(cat == c).then(verdict.is_in(failing.get(c, []))).otherwise(fails)
        known = pl.when(cat == c).then(verdict.is_in(KNOWN_VERDICTS[c])).otherwise(known)
    passing, fails, known = (x.fill_null(False) for x in (passing, fails, known))
    score = pl.col("score")
    reason = (pl.when((pl.col("finish_reason") == "error").fill_null(False)
                      | pl.col("error").is_not_null()).then(pl.lit("error"))
              .when(score.is_null() | score.is_nan()).then(pl.lit("nan_score"))
              .when(score.is_infinite()).then(pl.lit("non_finite_score"))
              .when(pl.col("truncated").fill_null(False)).then(pl.lit("truncated"))
              .when(pl.col("empty")).then(pl.lit("empty_response"))
              .when(verified & (verdict.is_null() | (verdict == "unverified")))
              .then(pl.lit("unverified"))
              .when(verified & ~known).then(pl.lit("verdict_mismatch"))
              .when(verified & ~passing & ~fails).then(pl.lit("verifier_error"))
              .otherwise(pl.lit(None, pl.String)))
    r = r.with_columns(bad=reason.cast(BAD_REASONS), verified=verified, passing=passing,
                       fails=fails)
    usable = pl.col("bad").is_null()
    return r.select("ri", "pidx", "model", "target", "response_id", "score", "h", "bad",
                    eligible=usable & (~pl.col("verified") | pl.col("passing")),
                    rejectable=usable & (~pl.col("verified") | pl.col("fails")))


def _stats(r: pl.DataFrame) -> pl.DataFrame:
    """Per-prompt counts that decide a drop reason (``b_one``: the unusable reason when
    every response shares one)."""
    b = pl.col("bad")
    return r.group_by("pidx").agg(
        n_resp=pl.len(), n_usable=b.is_null().sum(), n_elig=pl.col("eligible").sum(),
        n_rej=pl.col("rejectable").sum(),
        b_one=pl.when(b.n_unique() == 1).then(b.first().cast(pl.String)))


def _base_reason(verified: pl.Expr) -> pl.Expr:
    """Why a prompt has no eligible response (null when it has one)."""
    n = pl.col("n_resp")
    return (pl.when(n.is_null() | (n == 0)).then(pl.lit("no_responses"))
            .when(pl.col("n_usable") == 0)
            .then(pl.coalesce(pl.col("b_one"), pl.lit("no_usable_response")))
            .when(pl.col("n_elig") == 0)
            .then(pl.when(verified).then(pl.lit("all_failed"))
                  .otherwise(pl.lit("no_eligible_response")))
            .otherwise(pl.lit(None, pl.String)))


def _pair_reason(verified: pl.Expr, lo: float, hi: float) -> pl.Expr:
    """Why a prompt with an eligible response still has no pair."""
    return (pl.when(verified & (pl.col("n_rej") == 0)).then(pl.lit("all_passed"))
            .when(pl.col("m_max").is_null())
            .then(pl.when(pl.col("n_ident").fill_null(0) > 0).then(pl.lit("identical_pair"))
                  .otherwise(pl.lit("no_same_model_pair")))
            .when(pl.col("m_max") < lo).then(pl.lit("margin_below"))
            .when(pl.col("m_min") > hi).then(pl.lit("margin_above"))
            .otherwise(pl.lit("margin_outside")))


def _margin(chosen: pl.Expr, rejected: pl.Expr, decimals: int | None) -> pl.Expr:
    """score_chosen - score_rejected, rounded as the module docstring says."""
    m = chosen - rejected
    return m if decimals is None else m.round(decimals)


def _pairs(ranked: pl.DataFrame, lo: float, hi: float, policy: str, decimals: int | None
           ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Valid (chosen, rejected) per (prompt, model), and per-prompt margin extremes.

    ``ranked`` holds usable responses sorted by (pidx, score desc, response_id).
    Candidates repeating the chosen text are left out (``n_ident`` counts them).
    """
    keys = ["pidx", "model"]
    chosen = (ranked.filter(pl.col("eligible")).group_by(keys, maintain_order=True)
              .agg(c_ri=pl.col("ri").first(), c_score=pl.col("score").first(),
                   c_h=pl.col("h").first()))
    cands = (ranked.filter(pl.col("rejectable")).select("pidx", "model", "ri", "score", "h")
             .join(chosen, on=keys, how="inner", maintain_order="left")
             .filter(pl.col("ri") != pl.col("c_ri")))
    ident = (cands.filter(pl.col("h") == pl.col("c_h")).group_by("pidx")
             .agg(n_ident=pl.len()))
    cands = (cands.filter(pl.col("h") != pl.col("c_h"))
             .with_columns(margin=_margin(pl.col("c_score"), pl.col("score"), decimals)))
    in_window = pl.col("margin").is_between(lo, hi)
    if policy == "strict":
        considered = cands.group_by(keys, maintain_order=True).last()
        valid = considered.filter(in_window)
    else:
        considered = cands
        valid = cands.filter(in_window).group_by(keys, maintain_order=True).last()
    extremes = (considered.group_by("pidx").agg(m_max=pl.col("margin").max(),
                                                m_min=pl.col("margin").min())
                .join(ident, on="pidx", how="full", coalesce=True))
    return valid, extremes


def _pick(valid: pl.DataFrame, pairing: str, v: pl.DataFrame) -> pl.DataFrame:
    """One pair per prompt (or all) among the models with a valid pair."""
    if pairing == "all":
        return valid.sort("pidx", "model")
    if pairing == "best_chosen":
        return (valid.sort(["pidx", "c_score", "model"], descending=[False, True, False])
                .group_by("pidx", maintain_order=True).first())
    # random: the floor(v * n)-th model (by name) of the prompt's valid models
    return (valid.sort("pidx", "model").join(v, on="pidx", how="left", maintain_order="left")
            .with_columns(k=pl.int_range(pl.len()).over("pidx"),
                          n=pl.len().over("pidx"))
            .filter(pl.col("k") == (pl.col("v") * pl.col("n")).floor().cast(pl.UInt32))
            .drop("k", "n", "v"))


def _rules(p: pl.DataFrame, cfg: Selection) -> pl.DataFrame:
    """Each prompt's split rule as columns (by source, else category, else default)."""
    combos = p.select("category", "source").unique()
    rows = []
    for cat, src in combos.iter_rows():
        rule = cfg.rule_for(cat, src)
        rows.append({"category": cat, "source": src,
                     "mode": rule.mode if cat is not None else "none",
                     "sft_ratio": rule.sft, "dpo_share": rule.dpo_share,
                     "only": rule.model or ""})
    table = pl.DataFrame(rows, schema={"category": pl.String, "source": pl.String,
                                       "mode": pl.String, "sft_ratio": pl.Float64,
                                       "dpo_share": pl.Float64, "only": pl.String})
    return p.join(table, on=["category", "source"], how="left", nulls_equal=True,
                  maintain_order="left")


def _record_share(rs: pl.DataFrame) -> pl.DataFrame:
    """The ``record_share`` split (module docstring): ``split`` and ``over`` per prompt.

    ``rs``: the mode's prompts with ``u``, ``sft_ratio``, ``sft_ok``, ``dpo_ok``.
    """
    g = ["source", "category"]
    s = pl.col("sft_ratio")
    kind = (pl.when(pl.col("sft_ok") & pl.col("dpo_ok")).then(pl.lit("both"))
            .when(pl.col("sft_ok")).then(pl.lit("sft"))
            .when(pl.col("dpo_ok")).then(pl.lit("dpo")).otherwise(pl.lit("none")))
    rs = rs.with_columns(kind=kind).with_columns(
        a=(pl.col("kind") == "sft").sum().over(g).cast(pl.Float64),
        b=(pl.col("kind") == "dpo").sum().over(g).cast(pl.Float64),
        f=(pl.col("kind") == "both").sum().over(g).cast(pl.Float64),
        rk=pl.col("u").rank("ordinal").over([*g, "kind"]).cast(pl.Float64))
    a, b, f, rk = pl.col("a"), pl.col("b"), pl.col("f"), pl.col("rk")
    n = (s * (a + b + f) + 0.5).floor()
    few_pairs, few_sft = n < a, n > a + f
    # kept SFT-only prompts when pairs are short; kept DPO-only prompts when SFT is short
    keep_sft = pl.min_horizontal(a, (s * (b + f) / (1 - s) + 0.5).floor())
    keep_dpo = pl.min_horizontal(b, ((1 - s) * (a + f) / s + 0.5).floor())
    k = pl.col("kind")
    split = (pl.when(k == "none").then(pl.when(pl.col("u") < s).then(pl.lit("sft"))
                                       .otherwise(pl.lit("dpo")))
             .when(k == "sft").then(pl.lit("sft"))
             .when(k == "dpo").then(pl.lit("dpo"))
             .when(few_pairs).then(pl.lit("dpo"))
             .when(few_sft).then(pl.lit("sft"))
             .when(rk <= n - a).then(pl.lit("sft"))
             .otherwise(pl.lit("dpo")))
    over = (((k == "sft") & few_pairs & (rk > keep_sft))
            | ((k == "dpo") & few_sft & (rk > keep_dpo)))
    return rs.select("pidx", rs_split=split, over=over)


def select_tables(responses: pl.DataFrame, prompts_meta: pl.DataFrame | None,
                  cfg: Selection, fetch_texts: FetchTexts | None = None
                  ) -> dict[str, pl.DataFrame]:
    """Apply the selection rules (module docstring) to all models' verified responses.

    ``responses``: verify-stage records of every model (columns of
    :data:`INPUT_COLUMNS`; ``role``, ``response``, ``truncated``, ``finish_reason``,
    ``error``, ``verdict`` may be absent).  ``prompts_meta``: optional ``prompt_id``,
    ``category``, ``source`` of *all* prompts, so prompts that got no response
    are reported (``no_responses``) instead of vanishing.
    Returns ``sft``, ``dpo``, ``wrpo`` and ``drops`` (columns in this module).
    Raises ValueError for a category outside instruction/math/code/chinese.

    A *slim* ``responses`` has no ``response`` column but ``empty`` and ``h``
    (:func:`text_keys` of each text) instead; ``fetch_texts(ri)`` then returns the
    texts of input rows ``ri`` (columns ``ri``, ``text``), called once at the end for
    the selected rows only.  So the selection never holds all texts (tens of GB at
    FuseChat scale), and its output is that of the full frame.

    The steps, each a function below: rank the usable responses; SFT candidates
    (:func:`_sft_candidates`); DPO pairs (:func:`_pairs`); the split
    (:func:`_assign_split`); the SFT and DPO tables; WRPO triplets
    (:func:`_wrpo_triplets`); drops (:func:`_split_drops`, :func:`_all_drops`).
    """
    p, r = _prepare(responses, prompts_meta)
    r = _classify(r, cfg.failing_verdicts)
    lo, hi = cfg.margin

    u, v = split_u(cfg.seed, p["prompt_id"].to_list())
    p = _rules(p.with_columns(u=pl.Series(u, dtype=pl.Float64)), cfg)
    vtab = p.select("pidx", v=pl.Series(v, dtype=pl.Float64))

    # a prompt without a category takes no part: its responses are not judged either
    r = r.join(p.filter(pl.col("mode") != "none").select("pidx"), on="pidx", how="semi",
               maintain_order="left")
    src = r.filter(~pl.col("target"))
    tgt = r.filter(pl.col("target"))
    ranked_all = (r.filter(pl.col("bad").is_null())
                  .select("pidx", "model", "target", "ri", "score", "h", "response_id",
                          "eligible", "rejectable")
                  .sort(["pidx", "score", "response_id"], descending=[False, True, False]))
    ranked = ranked_all.filter(~pl.col("target"))

    best_any = _best(ranked)
    best_sft, sft_stats = _sft_candidates(p, src, ranked, best_any)
    src_stats = _stats(src)

    # --- DPO pairs for prompts that may go to DPO
    mode = pl.col("mode")
    may_dpo = p.filter(mode.is_in(["pair_first", "record_share"])
                       | ((mode == "ratio") & (pl.col("u") >= pl.col("sft_ratio"))))
    ranked_dpo = ranked.join(may_dpo.select("pidx"), on="pidx", how="semi", maintain_order="left")
    valid, extremes = _pairs(ranked_dpo, lo, hi, cfg.window_policy, cfg.margin_decimals)

    p = _assign_split(p, best_sft, valid.select("pidx").unique())
    live = (mode != "none") & ~pl.col("over")
    dpo_p = p.filter((pl.col("split") == "dpo") & live).select("pidx")
    sft_p = p.filter((pl.col("split") == "sft") & live).select("pidx")

    slim = "response" not in responses.columns and "h" in responses.columns
    text = (responses.select("response_id") if slim
            else responses if "response" in responses.columns
            else responses.with_columns(response=_DEFAULTS["response"])
            ).select("response_id", *([] if slim else ["response"]))
    meta = p.select("pidx", "prompt_id", "category", "source")

    # --- SFT table
    sft_sel = best_sft.join(sft_p, on="pidx", how="semi", maintain_order="left")
    g = _gather(text, sft_sel["s_ri"], "")
    sft = sft_sel.join(meta, on="pidx", how="left", maintain_order="left").select(
        "prompt_id", "category", "source", model=pl.col("s_model").cast(pl.String),
        response_id=g["id"], response=g["text"], score=pl.col("s_score"))

    # --- DPO table
    dpo_sel = _pick(valid.join(dpo_p, on="pidx", how="semi", maintain_order="left"),
                    cfg.pairing, vtab)
    gc, gr = _gather(text, dpo_sel["c_ri"], "c_"), _gather(text, dpo_sel["ri"], "r_")
    dpo = dpo_sel.join(meta, on="pidx", how="left", maintain_order="left").select(
        "prompt_id", "category", "source", pl.col("model").cast(pl.String),
        chosen_id=gc["c_id"], chosen=gc["c_text"],
        score_chosen=pl.col("c_score"), rejected_id=gr["r_id"], rejected=gr["r_text"],
        score_rejected=pl.col("score"), margin=pl.col("margin"))

    frames = _split_drops(p, meta, sft_sel, dpo_sel, extremes,
                          sft_stats if sft_stats is not None else src_stats, src_stats, lo, hi)

    wrpo = pl.DataFrame(schema={c: _wrpo_dtype(c) for c in WRPO_COLUMNS})
    if tgt.height:
        wrpo, wrpo_drops = _wrpo_triplets(tgt, p, meta, ranked_all, best_any, src_stats,
                                          vtab, text, cfg)
        frames.append(wrpo_drops)
    out = {"sft": sft, "dpo": dpo, "wrpo": wrpo, "drops": _all_drops(frames, r, meta)}
    return _fill_texts(out, fetch_texts) if slim else out


def _fill_texts(tables: dict[str, pl.DataFrame], fetch: FetchTexts | None
                ) -> dict[str, pl.DataFrame]:
    """Replace the row numbers a slim selection left in the text columns by the texts:
    one fetch for all of them (one pass over the inputs, selected rows only)."""
    if fetch is None:
        raise ValueError("select: a slim response frame (no response column) needs fetch_texts")
    placeholders = [tables[t][c] for t, cols in TEXT_COLUMNS.items() for c in cols
                    if tables[t][c].dtype == pl.UInt32]
    if not placeholders:
        return tables
    wanted = pl.concat(placeholders)
    lut = fetch(wanted.unique().sort()).select(pl.col("ri").cast(pl.UInt32),
                                                pl.col("text").cast(pl.String))
    out = dict(tables)
    for t, cols in TEXT_COLUMNS.items():
        df = out[t]
        for c in cols:
            if df[c].dtype != pl.UInt32:  # an empty table: already the String column
                continue
            df = (df.join(lut.rename({"ri": c, "text": "_text"}), on=c, how="left",
                          maintain_order="left")
                  .with_columns(pl.col("_text").alias(c)).drop("_text"))
        out[t] = df
    return out


def _best(frame: pl.DataFrame) -> pl.DataFrame:
    """The first (best-ranked) eligible response per prompt of a ranked frame."""
    return (frame.filter(pl.col("eligible")).group_by("pidx", maintain_order=True)
            .agg(s_ri=pl.col("ri").first(), s_model=pl.col("model").first(),
                 s_score=pl.col("score").first(), s_h=pl.col("h").first()))


def _sft_candidates(p: pl.DataFrame, src: pl.DataFrame, ranked: pl.DataFrame,
                    best_any: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """SFT candidates (best eligible per prompt) and, if a rule names the only model
    allowed to supply SFT, the response stats of that model's pool for drop reasons."""
    if not (p["only"] != "").any():
        return best_any, None
    only = p.select("pidx", "only")
    allowed = (pl.col("only") == "") | (pl.col("model").cast(pl.String) == pl.col("only"))
    pool = src.join(only, on="pidx", how="left", maintain_order="left").filter(allowed)
    best_sft = _best(ranked.join(only, on="pidx", how="left", maintain_order="left")
                     .filter(allowed))
    return best_sft, _stats(pool)


def _split_drops(p: pl.DataFrame, meta: pl.DataFrame, sft_sel: pl.DataFrame,
                 dpo_sel: pl.DataFrame, extremes: pl.DataFrame, sft_stats: pl.DataFrame,
                 src_stats: pl.DataFrame, lo: float, hi: float) -> list[pl.DataFrame]:
    """One drop row per prompt that got no SFT record / DPO pair in its split, with why."""
    split_of = p.select("pidx", "split", "mode", "over")
    sft_missing = _with_stats(_missing(split_of, "sft", sft_sel).join(meta, on="pidx"),
                              sft_stats)
    sft_drops = sft_missing.select("pidx", split=pl.lit("sft"), reason=_forced(
        _base_reason(_VERIFIED).fill_null("no_eligible_response")))
    dpo_missing = (_with_stats(_missing(split_of, "dpo", dpo_sel).join(meta, on="pidx"),
                               src_stats)
                   .join(extremes, on="pidx", how="left"))
    dpo_drops = dpo_missing.select("pidx", split=pl.lit("dpo"), reason=_forced(pl.coalesce(
        _base_reason(_VERIFIED), _pair_reason(_VERIFIED, lo, hi))))
    return [sft_drops, dpo_drops]


def _gather(text: pl.DataFrame, ri: pl.Series, prefix: str) -> dict[str, pl.Series]:
    """Response ids and texts at rows ``ri`` of the input (fetched last: texts are big).

    Without a ``response`` column (a slim frame) the "text" is ``ri`` itself, replaced
    by the text in :func:`_fill_texts`."""
    idx = ri.cast(pl.UInt32)
    return {f"{prefix}id": text["response_id"].gather(idx),
            f"{prefix}text": (text["response"].gather(idx) if "response" in text.columns
                              else idx)}


def _assign_split(p: pl.DataFrame, best_sft: pl.DataFrame, pairable: pl.DataFrame
                  ) -> pl.DataFrame:
    """Add ``split`` (sft / dpo) and ``over`` (beyond a record_share quota) to each prompt."""
    mode = pl.col("mode")
    pf = (p.filter(mode == "pair_first")
          .with_columns(n_src=pl.len().over("source"))
          .join(pairable, on="pidx", how="semi")
          .with_columns(rank=pl.col("u").rank("ordinal").over("source"))
          .filter(pl.col("rank") <= (pl.col("dpo_share") * pl.col("n_src")).floor())
          .select("pidx", pf_dpo=pl.lit(True)))
    rs = _record_share(
        p.filter(mode == "record_share")
        .with_columns(sft_ok=pl.col("pidx").is_in(best_sft["pidx"].implode()),
                      dpo_ok=pl.col("pidx").is_in(pairable["pidx"].implode())))
    return (p.join(pf, on="pidx", how="left", maintain_order="left")
            .join(rs, on="pidx", how="left", maintain_order="left")
            .with_columns(
                split=pl.when(mode.is_in(["sft_only", "none"])).then(pl.lit("sft"))
                .when(mode == "ratio")
                .then(pl.when(pl.col("u") < pl.col("sft_ratio")).then(pl.lit("sft"))
                      .otherwise(pl.lit("dpo")))
                .when(mode == "record_share").then(pl.col("rs_split"))
                .when(pl.col("pf_dpo").fill_null(False)).then(pl.lit("dpo"))
                .otherwise(pl.lit("sft")),
                over=pl.col("over").fill_null(False))
            .drop("pf_dpo", "rs_split"))


def _with_stats(frame: pl.DataFrame, stats: pl.DataFrame) -> pl.DataFrame:
    return frame.join(stats, on="pidx", how="left", maintain_order="left")


def _missing(split_of: pl.DataFrame, split: str, selected: pl.DataFrame) -> pl.DataFrame:
    """Prompts assigned to ``split`` that got no record there."""
    return (split_of.filter(pl.col("split") == split)
            .join(selected, on="pidx", how="anti", maintain_order="left"))


def _forced(reason: pl.Expr) -> pl.Expr:
    """A drop reason, unless the prompt had no category or was over its share anyway."""
    return (pl.when(pl.col("mode") == "none").then(pl.lit("null_category"))
            .when(pl.col("over")).then(pl.lit("over_share")).otherwise(reason))


def _wrpo_triplets(tgt: pl.DataFrame, p: pl.DataFrame, meta: pl.DataFrame,
                   ranked_all: pl.DataFrame, best_any: pl.DataFrame, src_stats: pl.DataFrame,
                   vtab: pl.DataFrame, text: pl.DataFrame, cfg: Selection
                   ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """WRPO triplets for DPO-side prompts of sources the target answered, and their drops."""
    w_lo, w_hi = cfg.wrpo_margin if cfg.wrpo_margin is not None else (-math.inf, math.inf)
    tgt_sources = (tgt.select("pidx").unique()
                   .join(meta, on="pidx").select("source").unique())
    w_p = (p.filter((pl.col("split") == "dpo") & (pl.col("mode") != "none"))
           .join(tgt_sources, on="source", how="semi").select("pidx"))
    ranked_t = (ranked_all.filter(pl.col("target"))
                .join(w_p, on="pidx", how="semi", maintain_order="left"))
    t_valid, t_ext = _pairs(ranked_t, w_lo, w_hi, cfg.window_policy, cfg.margin_decimals)
    t_sel = _pick(t_valid, cfg.pairing, vtab)
    w_all = t_sel.join(best_any, on="pidx", how="inner", maintain_order="left")
    same = pl.col("s_h") == pl.col("h")
    w_sel = w_all.filter(~same)
    gs, gc, gr = (_gather(text, w_sel["s_ri"], "s_"), _gather(text, w_sel["c_ri"], "c_"),
                  _gather(text, w_sel["ri"], "r_"))
    wrpo = w_sel.join(meta, on="pidx", how="left", maintain_order="left").select(
        "prompt_id", "category", "source",
        chosen_source_model=pl.col("s_model").cast(pl.String),
        chosen_source_id=gs["s_id"], chosen_source=gs["s_text"],
        score_chosen_source=pl.col("s_score"),
        target_model=pl.col("model").cast(pl.String),
        chosen_target_id=gc["c_id"], chosen_target=gc["c_text"],
        score_chosen_target=pl.col("c_score"), rejected_id=gr["r_id"],
        rejected=gr["r_text"], score_rejected=pl.col("score"), margin=pl.col("margin"))
    ident = w_all.filter(same).select("pidx").unique()
    w_missing = (meta.join(w_p, on="pidx", how="semi", maintain_order="left")
                 .join(w_sel, on="pidx", how="anti", maintain_order="left"))
    src_reason = _with_stats(w_missing, src_stats).select("pidx", r1=_base_reason(_VERIFIED))
    t_reason = (_with_stats(w_missing, _stats(tgt)).join(t_ext, on="pidx", how="left")
                .select("pidx", r2=pl.coalesce(_base_reason(_VERIFIED),
                                               _pair_reason(_VERIFIED, w_lo, w_hi))))
    drops = (src_reason.join(t_reason, on="pidx", maintain_order="left")
             .with_columns(ident=pl.col("pidx").is_in(ident["pidx"].implode()))
             .select("pidx", split=pl.lit("wrpo"),
                     reason=pl.when(pl.col("r1").is_not_null()).then(pl.lit("no_source_response"))
                     .when(pl.col("ident")).then(pl.lit("identical_pair"))
                     .otherwise(pl.concat_str(pl.lit("target_"), pl.col("r2")))))
    return wrpo, drops


def _all_drops(frames: list[pl.DataFrame], r: pl.DataFrame, meta: pl.DataFrame
               ) -> pl.DataFrame:
    """The drops table: prompts without a record in their split, then unusable responses."""
    prompt_drops = (pl.concat(frames).join(meta, on="pidx", how="left")
                    .select("prompt_id", "category", "source", "split",
                            model=pl.lit(None, pl.String), reason="reason"))
    resp_drops = (r.filter(pl.col("bad").is_not_null())
                  .join(meta, on="pidx", how="left", maintain_order="left")
                  .select("prompt_id", "category", "source", split=pl.lit("responses"),
                          model=pl.col("model").cast(pl.String),
                          reason=pl.col("bad").cast(pl.String)))
    return (pl.concat([prompt_drops, resp_drops], how="vertical_relaxed")
            .cast(DROP_SCHEMA).sort("prompt_id", "split", "model", "reason",
                                    nulls_last=False))


#: rows read at a time when the stage streams over the response files: bounds the texts in
#: memory (8,192 responses of 8 KB: 64 MB), whatever the number of responses
CHUNK_ROWS = 8192


def _chunks(d: Dataset, columns: list[str]) -> Iterator[pl.DataFrame]:
    """``columns`` of ``d`` in order, :data:`CHUNK_ROWS` rows at a time (each read costs
    the same wherever it lies: :meth:`Dataset.read_range`)."""
    n = d.num_rows()
    for start in range(0, n, CHUNK_ROWS):
        yield d.read_range(start, CHUNK_ROWS, columns)


def _compact(df: pl.DataFrame) -> pl.DataFrame:
    """A copy holding only its own strings.  Polars strings are views into shared
    buffers, so a few rows filtered out of a chunk keep the whole chunk's texts alive
    (at 100k responses of 8 KB, 0.7 GB for 14k selected texts); the Arrow round trip
    copies the selected strings into buffers of their own."""
    return pl.from_arrow(df.to_arrow())  # type: ignore[return-value]


def _wrpo_dtype(col: str) -> pl.DataType:
    return pl.Float64 if col.startswith("score") or col == "margin" else pl.String


class SelectStage(ReduceStage):
    """Whole-table selection over every model's ``responses:<model>`` dataset.

    An optional ``prompts`` input (the merged prompts dataset) lets prompts that
    got no response at all show up in ``drops`` as ``no_responses``.
    """

    name = "select"
    version = "3"  # 3: issue 15 rules (record_share, rounding, WRPO rule, unusable inf/blank)

    def __init__(self, cfg: Selection):
        self.cfg = cfg

    def fingerprint(self) -> Any:
        return self.cfg.model_dump(mode="json")

    def reduce(self, inputs: dict[str, Dataset]) -> dict[str, pl.DataFrame]:
        """Selection over a slim frame: every column but the text, plus the text's
        :func:`text_keys` computed while streaming over the files; the texts of the
        selected rows are read afterwards in one more streaming pass.  (Holding every
        response's text cost +191 MB at 352k short responses; at FuseChat-3.0's 2.5M
        responses of up to 2,048 tokens it would be tens of GB.)"""
        sets = [d for k, d in sorted(inputs.items()) if k.startswith("responses:")]
        if not sets:
            raise ValueError("select: no responses:<model> input")
        names = [d.scan().collect_schema().names() for d in sets]
        has_text = any("response" in n for n in names)
        frames, starts, start = [], [], 0
        for d, cols in zip(sets, names, strict=True):
            keep = [c for c in INPUT_COLUMNS if c in cols]
            parts = []
            for chunk in _chunks(d, keep):
                if has_text and "response" not in cols:
                    chunk = chunk.with_columns(response=pl.lit(None, pl.String))
                parts.append(chunk.select([c for c in keep if c != "response"],
                                          **(text_keys() if has_text else {})))
            frames.append(pl.concat(parts, how="vertical_relaxed"))
            starts.append(start)
            start += frames[-1].height
        resp = pl.concat(frames, how="diagonal_relaxed")
        del frames
        meta = None
        if "prompts" in inputs:
            meta = inputs["prompts"].scan().select("prompt_id", "category", "source").collect()

        def fetch(ri: pl.Series) -> pl.DataFrame:
            parts = [pl.DataFrame(schema={"ri": pl.UInt32, "text": pl.String})]
            for d, cols, off in zip(sets, names, starts, strict=True):
                if "response" not in cols:
                    continue  # its rows' texts are null: absent from the table, null on join
                want = ri.filter(ri >= off)
                if want.len() == 0:
                    continue
                at = off
                for chunk in _chunks(d, ["response"]):
                    lo, at = at, at + chunk.height
                    mine = want.filter((want >= lo) & (want < at))
                    if mine.len():
                        parts.append(_compact(
                            chunk.select(text="response").with_row_index("ri", offset=lo)
                            .filter(pl.col("ri").is_in(mine.implode()))
                            .select(pl.col("ri").cast(pl.UInt32), "text")))
            return pl.concat(parts, how="vertical_relaxed")

        if has_text:
            return select_tables(resp, meta, self.cfg, fetch)
        return select_tables(resp, meta, self.cfg)

    def summarize_tables(self, tables: dict[str, pl.DataFrame]) -> str:
        d = tables["drops"].filter(pl.col("split") != "responses")
        if d.height == 0:
            return "no prompt dropped"
        c = d.group_by("split", "reason").len().sort("split", "reason")
        return "dropped: " + ", ".join(f"{s}/{r} {n}" for s, r, n in c.iter_rows())
