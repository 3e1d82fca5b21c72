"""The ``score`` stage: a reward model's scalar for every response.

Any ``AutoModelForSequenceClassification`` reward model works (Skywork-Reward,
InternLM2-Reward, ...); models with custom heads such as ArmoRM return an
object whose ``score`` attribute holds the reward: set ``output: score`` and
``trust_remote_code: true``.  (Loading ArmoRM through a generic class instead
of its own code gives wrong rewards.)

The prompt messages plus the response are formatted with the RM tokenizer's
chat template.  Inputs longer than ``max_length`` are cut from
``truncation_side`` and flagged ``score_truncated``.

Exactness.  The scores decide every SFT choice and DPO pair, so a record's
score must not depend on which batch it landed in.  Three things can break
that, and each is handled here rather than left to the model's code:

* *pooling*: sequence-classification heads find the last real token through
  ``config.pad_token_id`` (transformers >= 4.48: the rightmost non-pad token;
  older code and some custom heads such as ArmoRM's: the first pad token minus
  one).  Batches are padded with exactly the id the model pools on, and with
  left padding every row gets at least one pad token, so "first pad minus
  one" wraps to the last position even for the longest row, and a response
  that itself contains the pad token's text cannot move the pooled position;
* *positions*: left-padded rows get ``position_ids`` counted from their first
  real token, so models with absolute positions see the same input as alone;
* *dtype*: bf16 on GPU, fp32 on CPU (the recipe may override).

Speed.  Batches are built by a token budget (rows x padded width <=
``batch_tokens``) over length-sorted inputs, so short answers are not padded
to the length of a long one; scores come back in input order.  With several
GPUs (``devices``, or every visible GPU when ``device: auto``) each holds a
replica and takes every n-th batch, in a thread per replica.  Scores are
cached per (reward model, prompt, response) in ``WORK/score_cache/<rm-key>/``
(the key names the model's resolved Hub commit, or a local folder's config and
weight files: see :func:`rm_cache_key`), so re-annotating after adding a source model or a prompt source only sends
the new responses to the RM, and a build whose scores are all cached never
loads the model.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from .engine import Dataset, RowLookup, Stage, atomic_write_parquet, stable_hash
from .recipe import RewardModelSpec
from .records import SCORE_COLUMNS
from .storage import PathLike

log = logging.getLogger("fusedata")

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class ScoreResult:
    score: float | None
    truncated: bool = False
    error: str | None = None


@dataclass(frozen=True)
class Encoded:
    """One tokenized input: ``ids`` is None when it could not be built (``note`` says why)."""

    ids: list[int] | None
    truncated: bool = False
    note: str | None = None


def plan_batches(lengths: Sequence[int], batch_tokens: int, extra: int = 0) -> list[list[int]]:
    """Group indices into batches of at most ``batch_tokens`` padded tokens, longest first.

    Sorting by length makes each batch's rows nearly equally long, so little of
    the budget is spent on padding.  Longest first puts an out-of-memory batch
    at the start of a run rather than hours in.  A row longer than the budget
    gets a batch of its own.  ``extra`` is added to every row's width (the
    guaranteed left pad).  Ties keep input order, so the plan is deterministic.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    cur: list[int] = []
    width = 0
    for i in order:
        if cur and (len(cur) + 1) * width > batch_tokens:
            batches.append(cur)
            cur = []
        if not cur:
            width = lengths[i] + extra
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


def resolve_devices(spec: RewardModelSpec) -> list[str]:
    """Where the replicas go: ``devices`` if set, else every visible GPU for ``auto``."""
    if spec.devices:
        return list(spec.devices)
    if spec.device != "auto":
        return [spec.device]
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return [f"cuda:{i}" for i in range(n)] or ["cpu"]


def _utf8_safe(text: str) -> tuple[str, str | None]:
    """Tokenizers take UTF-8 only: lone surrogates become U+FFFD (and the record says so)."""
    try:
        text.encode("utf-8")
        return text, None
    except UnicodeEncodeError:
        fixed = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return fixed, "sanitized: lone surrogates replaced by U+FFFD before scoring"


class RewardScorer:
    """Loads a reward model (one replica per device) and scores (messages, response) pairs."""

    def __init__(self, spec: RewardModelSpec, revision: str | None = None):
        self.spec = spec
        #: Hub commit to load (None: the default branch, or a local folder)
        self.revision = revision
        self.models: list[Any] = []
        self.devices: list[str] = []
        self.tok: Any = None
        #: batches each replica ran since load() (shows how work was split)
        self.batches_run: list[int] = []

    @property
    def model(self) -> Any:
        return self.models[0] if self.models else None

    def load(self) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from .torchenv import quiet_transformers, resolve_dtype

        quiet_transformers()
        self.devices = resolve_devices(self.spec)
        self.dtype = resolve_dtype(self.spec.dtype, self.devices[0])
        self.tok = AutoTokenizer.from_pretrained(
            self.spec.path, revision=self.revision, trust_remote_code=self.spec.trust_remote_code)
        self.models = []
        for dev in self.devices:
            m = AutoModelForSequenceClassification.from_pretrained(
                self.spec.path, dtype=self.dtype, revision=self.revision,
                trust_remote_code=self.spec.trust_remote_code).to(dev)
            m.eval()
            self.models.append(m)
        cfg = self.models[0].config
        # Pad with the id the model pools on; give it one if it has none.
        pad = getattr(cfg, "pad_token_id", None)
        if pad is None:
            pad = self.tok.pad_token_id if self.tok.pad_token_id is not None \
                else self.tok.eos_token_id
            for m in self.models:
                m.config.pad_token_id = pad
        self.pad_id = int(pad)
        self.left = (self.spec.padding_side or self.tok.padding_side) == "left"
        limit = getattr(cfg, "max_position_embeddings", None)
        self.max_length = min(self.spec.max_length, limit) if limit else self.spec.max_length
        params = inspect.signature(self.models[0].forward).parameters
        self.pass_positions = "position_ids" in params
        self.batches_run = [0] * len(self.models)

    def close(self) -> None:
        import gc

        import torch

        self.models = []
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # ------------------------------------------------------------ encoding
    def _cut(self, ids: list[int]) -> tuple[list[int], bool]:
        if len(ids) <= self.max_length:
            return ids, False
        if self.spec.truncation_side == "left":
            return ids[-self.max_length:], True
        return ids[: self.max_length], True

    def encode(self, messages: Messages, response: str) -> tuple[list[int], bool]:
        """Token ids of one chat (prompt + response) and whether they were truncated."""
        e = self.encode_many([(messages, response)])[0]
        if e.ids is None:
            raise ValueError(e.note)
        return e.ids, e.truncated

    def encode_many(self, items: Sequence[tuple[Messages | None, str | None]]) -> list[Encoded]:
        """Chat-template and tokenize all items (one tokenizer call for speed; per item on error)."""
        texts: dict[int, str] = {}
        notes: dict[int, str | None] = {}
        out: list[Encoded | None] = [None] * len(items)
        for i, (msgs, resp) in enumerate(items):
            if msgs is None:
                out[i] = Encoded(None, note="prompt_not_found")
                continue
            if resp is None:
                out[i] = Encoded(None, note="no_response")
                continue
            conv = [*msgs, {"role": "assistant", "content": resp}]
            try:
                text = self.tok.apply_chat_template(conv, tokenize=False)
            except Exception as e:  # a template that rejects this conversation
                out[i] = Encoded(None, note=f"template: {type(e).__name__}: {e}"[:300])
                continue
            texts[i], notes[i] = _utf8_safe(text)
        idx = list(texts)
        try:
            ids = self.tok([texts[i] for i in idx], add_special_tokens=False)["input_ids"]
        except Exception:  # find the culprit(s) one by one
            ids = []
            for i in idx:
                try:
                    ids.append(self.tok(texts[i], add_special_tokens=False)["input_ids"])
                except Exception as e:
                    ids.append(None)
                    notes[i] = f"tokenize: {type(e).__name__}: {e}"[:300]
        for i, seq in zip(idx, ids, strict=True):
            if seq is None:
                out[i] = Encoded(None, note=notes[i])
            elif not seq:
                out[i] = Encoded(None, note="empty_input")
            else:
                cut, tr = self._cut(list(seq))
                out[i] = Encoded(cut, tr, notes[i])
        return [e if e is not None else Encoded(None, note="unencoded") for e in out]

    # ------------------------------------------------------------- scoring
    def score(self, items: Sequence[tuple[Messages | None, str | None]]) -> list[ScoreResult]:
        """Scores in input order; an item that cannot be scored gets a reason instead."""
        assert self.models, "load() first"
        enc = self.encode_many(items)
        ok = [i for i, e in enumerate(enc) if e.ids is not None]
        vals = self.score_ids([enc[i].ids for i in ok])  # type: ignore[misc]
        res = [ScoreResult(None, e.truncated, e.note) for e in enc]
        for i, v in zip(ok, vals, strict=True):
            e = enc[i]
            if isinstance(v, str):
                res[i] = ScoreResult(None, e.truncated, v)
            elif v != v:
                res[i] = ScoreResult(None, e.truncated, "nan_score")
            else:
                res[i] = ScoreResult(v, e.truncated, e.note)
        return res

    def score_ids(self, seqs: Sequence[list[int]],
                  batches: list[list[int]] | None = None) -> list[float | str]:
        """Score token sequences: a float each, or an error string; in input order.

        ``batches`` (lists of indices into ``seqs``) defaults to the token-budget
        plan; benchmarks pass other plans to compare.  Batch ``k`` runs on replica
        ``k % n_replicas`` (deterministic: the same input always meets the same
        device), each replica in its own thread so GPUs work concurrently.
        """
        assert self.models, "load() first"
        if batches is None:
            batches = plan_batches([len(s) for s in seqs], self.spec.batch_tokens,
                                   extra=1 if self.left else 0)
        out: list[float | str] = [""] * len(seqs)
        n = len(self.models)
        if n == 1:
            for b in batches:
                self._run_batch(0, seqs, b, out)
            return out
        from concurrent.futures import ThreadPoolExecutor

        def work(k: int) -> None:
            for b in batches[k::n]:
                self._run_batch(k, seqs, b, out)

        with ThreadPoolExecutor(n, thread_name_prefix="rm-replica") as ex:
            for f in [ex.submit(work, k) for k in range(n)]:
                f.result()
        return out

    def _run_batch(self, k: int, seqs: Sequence[list[int]], b: list[int],
                   out: list[float | str]) -> None:
        """Run one batch on replica ``k``; on failure (e.g. out of memory) split it in halves."""
        try:
            vals = self._forward(k, [seqs[i] for i in b])
        except Exception as e:
            if len(b) > 1:
                import torch

                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                h = len(b) // 2
                self._run_batch(k, seqs, b[:h], out)
                self._run_batch(k, seqs, b[h:], out)
                return
            out[b[0]] = f"forward: {type(e).__name__}: {e}"[:300]
            return
        self.batches_run[k] += 1
        for i, v in zip(b, vals, strict=True):
            out[i] = v

    def _forward(self, k: int, rows: list[list[int]]) -> list[float]:
        import torch

        width = max(len(r) for r in rows) + (1 if self.left else 0)
        pad = self.pad_id
        if self.left:
            ids = [[pad] * (width - len(r)) + r for r in rows]
            mask = [[0] * (width - len(r)) + [1] * len(r) for r in rows]
        else:
            ids = [r + [pad] * (width - len(r)) for r in rows]
            mask = [[1] * len(r) + [0] * (width - len(r)) for r in rows]
        dev = self.devices[k]
        t_ids = torch.tensor(ids, dtype=torch.long, device=dev)
        t_mask = torch.tensor(mask, dtype=torch.long, device=dev)
        kw: dict[str, Any] = {"input_ids": t_ids, "attention_mask": t_mask}
        if self.pass_positions:
            kw["position_ids"] = (t_mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            out = self.models[k](**kw)
        return self._read(out)

    def _read(self, out: Any) -> list[float]:
        if self.spec.output == "logits":
            t = out.logits
        elif hasattr(out, self.spec.output):
            t = getattr(out, self.spec.output)
        else:
            raise ValueError(f"reward_model.output: the model's output has no attribute "
                             f"{self.spec.output!r} (it has {sorted(vars(out))})")
        if t.dim() > 1:
            t = t[:, 0]
        return t.float().cpu().tolist()


# ----------------------------------------------------------------- cache
#: files that hold weights: identified by name, size and modification time (hashing
#: 16 GB per build would cost more than it saves); every other file of a local
#: model (config, tokenizer, chat template, remote code) by its content
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".h5", ".msgpack",
                   ".onnx", ".npz")
#: non-weight files larger than this are identified like weights
_HASH_LIMIT = 64 << 20


def local_model_files(folder: Path) -> list[tuple[Any, ...]]:
    """What identifies a local model's scores: its config and weight files.

    Config, tokenizer and code files count by content, so touching or copying
    them changes nothing while editing e.g. the chat template does; weight files
    by (name, size, mtime), so retraining into the same folder is a new model.
    Documentation (``*.md``) and hidden entries (``.git``, ``.cache``) are left
    out: they do not change a score.
    """
    out: list[tuple[Any, ...]] = []
    for f in sorted(folder.rglob("*")):
        rel = f.relative_to(folder)
        if (not f.is_file() or any(part.startswith(".") for part in rel.parts)
                or f.suffix.lower() == ".md"):
            continue
        st = f.stat()
        if f.suffix.lower() in WEIGHT_SUFFIXES or st.st_size > _HASH_LIMIT:
            out.append((rel.as_posix(), st.st_size, st.st_mtime_ns))
        else:
            out.append((rel.as_posix(), hashlib.sha256(f.read_bytes()).hexdigest()))
    return out


def hub_commit(repo_id: str, revision: str = "main") -> str | None:
    """The commit ``revision`` of a Hub model resolves to, or None if it cannot be known.

    Asks the Hub; offline (``HF_HUB_OFFLINE``) or when the Hub cannot be reached,
    reads the local Hugging Face cache (``models--ORG--NAME/refs/<revision>``),
    which is what ``from_pretrained`` would load then.
    """
    from huggingface_hub import HfApi, constants

    if not constants.is_offline_mode():
        try:
            sha = HfApi().model_info(repo_id, revision=revision).sha
            if sha:
                return sha
        except Exception as e:  # noqa: BLE001 - any failure to ask falls back to the cache
            log.warning("score: could not resolve %s@%s on the Hub (%s: %s); using the local "
                        "cache's ref", repo_id, revision, type(e).__name__, e)
    ref = (Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}" / "refs"
           / revision)
    return ref.read_text().strip() if ref.is_file() else None


def model_identity(path: str) -> dict[str, Any] | None:
    """A local folder's files, or a Hub id's resolved commit; None when unknowable."""
    p = Path(path)
    if p.is_dir():
        return {"files": local_model_files(p)}
    commit = hub_commit(path)
    return {"commit": commit} if commit else None


def rm_cache_key(spec: RewardModelSpec, dtype: str, identity: dict[str, Any]) -> str:
    """Names one reward model's scores: what changes them.

    The model itself (``identity``: :func:`model_identity`, so an updated Hub
    model or retrained local one gets a new cache), its head, length limit,
    truncation side and dtype.  Devices, batch sizes and padding do not change
    scores, so they are left out.
    """
    ident: dict[str, Any] = {
        "path": spec.path, "output": spec.output, "trust_remote_code": spec.trust_remote_code,
        "max_length": spec.max_length, "truncation_side": spec.truncation_side, "dtype": dtype,
        **identity,
    }
    return stable_hash(ident)


def entry_key(prompt_id: str, response: str) -> bytes:
    return hashlib.blake2b(f"{prompt_id}\x00{response}".encode("utf-8", "surrogatepass"),
                           digest_size=16).digest()


class ScoreCache:
    """Scores of one reward model, content-addressed by (prompt_id, response).

    Stored as ``part-<hash>.parquet`` files (key, score, truncated), each written
    atomically, so concurrent or killed writers leave only whole parts.  The
    folder is read once per stage into a dict (about 150 bytes per score).
    Only successful scores are stored; failures are retried next time.
    """

    SCHEMA: dict[str, pl.DataType] = {"key": pl.Binary, "score": pl.Float64,
                                      "truncated": pl.Boolean}

    def __init__(self, folder: PathLike):
        self.folder = folder
        self._map: dict[bytes, tuple[float, bool]] | None = None

    def _load(self) -> dict[bytes, tuple[float, bool]]:
        if self._map is None:
            files = sorted(self.folder.glob("part-*.parquet"))
            # through Dataset: the cache may live in a work folder on an object store
            df = (Dataset(tuple(files), "score-cache").read() if files
                  else pl.DataFrame(schema=self.SCHEMA))
            self._map = dict(zip(df["key"].to_list(),
                                 zip(df["score"].to_list(), df["truncated"].to_list(),
                                     strict=True), strict=True))
        return self._map

    def __len__(self) -> int:
        return len(self._load())

    def get(self, keys: Sequence[bytes]) -> list[tuple[float, bool] | None]:
        m = self._load()
        return [m.get(k) for k in keys]

    def put(self, keys: Sequence[bytes], scores: Sequence[float],
            truncated: Sequence[bool]) -> None:
        if not keys:
            return
        df = pl.DataFrame({"key": list(keys), "score": list(scores),
                           "truncated": list(truncated)}, schema=self.SCHEMA)
        name = f"part-{hashlib.blake2b(b''.join(sorted(keys)), digest_size=12).hexdigest()}"
        atomic_write_parquet(df, self.folder / f"{name}.parquet")
        m = self._load()
        m.update(zip(keys, zip(scores, truncated, strict=True), strict=True))


# ----------------------------------------------------------------- stage
class ScoreStage(Stage):
    name = "score"
    version = "2"
    #: responses per shard unless the recipe says otherwise; larger than sample's
    #: because a shard's responses are length-sorted into token-budget batches
    shard_size = 256

    def __init__(self, spec: RewardModelSpec, prompts: Dataset, shard_size: int | None = None,
                 cache_dir: PathLike | None = None):
        self.spec = spec
        self.prompts = prompts
        self._prompt_rows = RowLookup(prompts, "prompt_id")
        if shard_size is not None:
            self.shard_size = shard_size
        self.scorer = RewardScorer(spec)
        self.cache_dir = cache_dir
        self.cache: ScoreCache | None = None
        self._identity: dict[str, Any] | None = None
        self._identity_known = False
        #: responses sent to the reward model / answered from the cache (this process)
        self.n_scored = 0
        self.n_cached = 0

    def identity(self) -> dict[str, Any] | None:
        """The reward model's :func:`model_identity`, resolved once per stage object."""
        if not self._identity_known:
            self._identity = model_identity(self.spec.path)
            self._identity_known = True
        return self._identity

    def fingerprint(self) -> Any:
        # the model's identity too: scores of an updated Hub model or a retrained
        # local one are new scores, not cached ones
        return {"rm": self.spec.model_dump(
                    mode="json",
                    exclude={"device", "devices", "batch_tokens", "padding_side", "cache"}),
                "model": self.identity(),
                "prompts": self.prompts.key}

    def setup(self) -> None:
        """Open the score cache; the model itself is loaded only when a score is missing.

        A Hub model is loaded at the commit the stage and cache keys name, so the
        scores stored under a key always come from that commit, even if the Hub
        moves on mid-build.  A model whose identity cannot be known (a Hub id offline and
        not in the local cache) gets no score cache.
        """
        identity = self.identity()
        self.scorer.revision = (identity or {}).get("commit")
        if not self.spec.cache or self.cache_dir is None:
            return
        if identity is None:
            log.warning("score: no commit known for %s: its scores are not cached",
                        self.spec.path)
            return
        from .torchenv import resolve_dtype

        dtype = str(resolve_dtype(self.spec.dtype, resolve_devices(self.spec)[0]))
        self.cache = ScoreCache(self.cache_dir / rm_cache_key(self.spec, dtype, identity))

    def teardown(self) -> None:
        if self.scorer.models:
            self.scorer.close()
        if self.n_cached:
            log.info("score: %d responses scored by the RM, %d from the score cache",
                     self.n_scored, self.n_cached)

    def run(self, records: pl.DataFrame, shard_index: int, n_shards: int) -> pl.DataFrame:
        if records.height == 0:
            return records.with_columns(
                [pl.lit(None, dtype=t).alias(c) for c, t in SCORE_COLUMNS.items()])
        # only this shard's prompts, located by position (not a scan of the whole table)
        msgs = self._prompt_rows.fetch(records["prompt_id"], ["prompt_id", "messages"])
        joined = records.join(msgs, on="prompt_id", how="left", maintain_order="left")
        todo = joined.with_row_index("_i").filter(pl.col("finish_reason") != "error")
        res: list[ScoreResult] = [ScoreResult(None, False, "no_response")] * records.height
        rows = todo["_i"].to_list()
        pids = todo["prompt_id"].to_list()
        resps = todo["response"].to_list()
        keys = [entry_key(p, r) if r is not None else b"" for p, r in zip(pids, resps,
                                                                           strict=True)]
        hits = self.cache.get(keys) if self.cache is not None else [None] * len(keys)
        miss = [j for j, h in enumerate(hits) if h is None]
        for j, h in enumerate(hits):
            if h is not None:
                res[rows[j]] = ScoreResult(h[0], h[1])
        self.n_cached += len(rows) - len(miss)
        if miss:
            if not self.scorer.models:
                self.scorer.load()
            msg_list = todo["messages"].to_list()
            scored = self.scorer.score([(msg_list[j], resps[j]) for j in miss])
            self.n_scored += len(miss)
            new = [(keys[j], r) for j, r in zip(miss, scored, strict=True)
                   if r.score is not None and r.error is None]
            if self.cache is not None:
                self.cache.put([k for k, _ in new], [r.score for _, r in new],  # type: ignore[misc]
                               [r.truncated for _, r in new])
            for j, r in zip(miss, scored, strict=True):
                res[rows[j]] = r
        return records.with_columns(
            pl.Series("score", [r.score for r in res], dtype=pl.Float64),
            pl.Series("score_truncated", [r.truncated for r in res], dtype=pl.Boolean),
            pl.Series("score_error", [r.error for r in res], dtype=pl.String),
        )

    summary_columns = ("score", "score_truncated")

    def summarize(self, out: pl.DataFrame) -> str:
        n_err = out["score"].null_count()
        n_tr = int(out["score_truncated"].sum() or 0)
        return f"{n_err} unscored, {n_tr} truncated" if (n_err or n_tr) else ""
