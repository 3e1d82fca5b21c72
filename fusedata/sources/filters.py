"""Prompt filters applied inside the prompts stage, one record at a time.

Each filter is built from its recipe entry (:mod:`fusedata.recipe`, ``filters``)
and answers ``check(record) -> drop reason | None``.  Records are checked in
the stage's processing order, so stateful filters (dedup) keep the first
occurrence.  Everything here is deterministic: hashes are blake2b, never
Python's salted ``hash``.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..recipe import (
    DecontaminateFilter,
    DedupFilter,
    DomainFilter,
    HasTestsFilter,
    LanguageFilter,
    ReferencePassesFilter,
)
from .classify import classify

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")
_CJK_CLASS = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK_CLASS}]|[^\W_{_CJK_CLASS}]+")


def user_text(rec: dict[str, Any]) -> str:
    """The text a filter judges: all user turns of the prompt, joined."""
    return "\n".join(m["content"] for m in rec["messages"] if m["role"] == "user")


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens; every CJK character is its own token (no segmenter needed)."""
    return _TOKEN.findall(text.lower())


def normalize(text: str) -> str:
    """Case-, width-, whitespace- and punctuation-insensitive form used for exact dedup."""
    return " ".join(tokens(unicodedata.normalize("NFKC", text)))


def _h64(s: str) -> int:
    return int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little")


class Filter(Protocol):
    def check(self, rec: dict[str, Any]) -> str | None: ...


# --------------------------------------------------------------------------- simple filters


class Domain:
    def __init__(self, spec: DomainFilter):
        self.exclude = set(spec.exclude)
        self.use_labels = spec.use_dataset_labels

    def check(self, rec: dict[str, Any]) -> str | None:
        hint = (rec.get("meta") or {}).get("domain")
        if self.use_labels and hint is not None:
            return f"domain:{hint}:label" if hint in self.exclude else None
        label = classify(user_text(rec)).label
        return f"domain:{label}" if label in self.exclude else None


def cjk_ratio(text: str) -> float:
    """CJK characters / (CJK characters + Latin words).

    Latin *words*, not letters, because one Chinese character carries about as
    much as one English word: a Chinese question quoting ``IndexError: list index
    out of range`` stays Chinese.
    """
    cjk = len(_CJK.findall(text))
    latin = len(_LATIN_WORD.findall(text))
    return cjk / (cjk + latin) if cjk + latin else 0.0


class Language:
    """Language check; a dataset language label (Magpie's ``language``) decides when present."""

    def __init__(self, spec: LanguageFilter):
        self.lang = spec.lang
        self.min_ratio = spec.min_ratio

    def check(self, rec: dict[str, Any]) -> str | None:
        hint = (rec.get("meta") or {}).get("language")
        if hint is not None:
            code = str(hint).lower()[:2]
            return None if code == self.lang else f"language:{code}:label"
        text = user_text(rec)
        r = cjk_ratio(text)
        if not _CJK.search(text) and not _LATIN_WORD.search(text):
            return "language:unknown"
        if self.lang == "zh":
            return None if r >= self.min_ratio else "language:en"
        return None if (1 - r) >= self.min_ratio else "language:zh"


class HasTests:
    def __init__(self, spec: HasTestsFilter):
        pass

    def check(self, rec: dict[str, Any]) -> str | None:
        return None if rec.get("tests") else "no_tests"


class ReferencePasses:
    """Drop rows whose dataset solution fails the extracted tests (see
    :class:`~fusedata.recipe.ReferencePassesFilter`).  The pool (isolation on) starts at the
    first row and is closed when the filter is garbage-collected or at exit."""

    def __init__(self, spec: ReferencePassesFilter):
        self.spec = spec
        self._pool: Any = None
        self._n = 0

    def _get_pool(self) -> Any:
        if self._pool is None:
            from sandbox import SandboxPool  # lazy: only recipes using the filter need it

            self._pool = SandboxPool(workers=self.spec.workers, isolation=True)
            weakref.finalize(self, self._pool.close)
        return self._pool

    def job(self, rec: dict[str, Any]) -> dict[str, Any] | None:
        """The sandbox job running the row's reference against its tests (None: no reference)."""
        ref = (rec.get("meta") or {}).get("reference")
        if not ref or not rec.get("tests"):
            return None
        self._n += 1
        return {**json.loads(rec["tests"]), **ref, "id": self._n,
                "timeout_s": self.spec.timeout_s, "memory_mb": self.spec.memory_mb}

    def check(self, rec: dict[str, Any]) -> str | None:
        job = self.job(rec)
        if job is None:
            return None if self.spec.keep_without else "reference:none"
        [verdict] = self._get_pool().run([job])
        return None if verdict["verdict"] == "passed" else f"reference:{verdict['verdict']}"


# --------------------------------------------------------------------------- dedup


_PRIME = np.uint64((1 << 61) - 1)
_MASK32 = np.uint64(0xFFFFFFFF)


class MinHasher:
    """MinHash signatures of token shingles.

    Shingles are hashed to 32 bits (blake2b); permutation ``i`` is
    ``((a_i * h + b_i) mod (2^61 - 1)) & (2^32 - 1)`` with ``a_i < 2^31`` so the
    product never overflows uint64.  Fixed seed: signatures are stable across runs.
    """

    def __init__(self, num_perm: int, shingle: int, seed: int = 1):
        rng = np.random.default_rng(seed)
        self.a = rng.integers(1, 1 << 31, size=num_perm, dtype=np.uint64)
        self.b = rng.integers(0, 1 << 32, size=num_perm, dtype=np.uint64)
        self.shingle = shingle

    def shingles(self, text: str) -> set[str]:
        t = tokens(text)
        k = self.shingle
        if len(t) <= k:
            return {" ".join(t)}
        return {" ".join(t[i:i + k]) for i in range(len(t) - k + 1)}

    def signature(self, text: str) -> np.ndarray:
        hs = np.fromiter((_h64(s) & 0xFFFFFFFF for s in self.shingles(text)), dtype=np.uint64)
        v = (hs[:, None] * self.a[None, :] + self.b[None, :]) % _PRIME
        return (v & _MASK32).min(axis=0)


def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) with bands*rows <= num_perm whose S-curve midpoint is nearest the threshold."""
    best = (1, num_perm)
    err = float("inf")
    for r in range(1, num_perm + 1):
        b = num_perm // r
        mid = (1 / b) ** (1 / r)
        if abs(mid - threshold) < err:
            best, err = (b, r), abs(mid - threshold)
    return best


class Dedup:
    """Exact (normalised) and MinHash near-duplicate removal; see :class:`DedupFilter`.

    Within a source the first row in processing order wins.  Across sources, the
    ``prompts`` stage calls :meth:`remember` with every prompt kept by the sources
    before this one in the recipe, so a row that repeats one of those is dropped as
    ``duplicate_normalized:<that source>`` / ``near_duplicate:<that source>``: the
    seed's instruction sets share prompts (UltraFeedback and HelpSteer2 draw on the
    same pools), and the earlier source in the recipe keeps them.
    """

    def __init__(self, spec: DedupFilter):
        self.normalize = spec.normalize
        self.threshold = spec.near_threshold
        #: normalised-text key -> the earlier source it came from (None: this source)
        self.seen: dict[bytes, str | None] = {}
        if self.threshold is not None:
            self.mh = MinHasher(spec.num_perm, spec.shingle)
            self.bands, self.rows = lsh_params(self.threshold, spec.num_perm)
            self.buckets: list[dict[bytes, list[int]]] = [{} for _ in range(self.bands)]
            self.sigs: list[np.ndarray] = []
            self.origins: list[str | None] = []

    def remember(self, rec: dict[str, Any], origin: str) -> None:
        """Register a prompt another source kept, without judging it."""
        self._find(user_text(rec), origin)

    def check(self, rec: dict[str, Any]) -> str | None:
        return self._find(user_text(rec), None)

    def _find(self, text: str, origin: str | None) -> str | None:
        def reason(kind: str, match: str | None) -> str:
            return kind if match is None else f"{kind}:{match}"

        if self.normalize:
            key = hashlib.blake2b(normalize(text).encode(), digest_size=16).digest()
            if key in self.seen:
                return reason("duplicate_normalized", self.seen[key])
            self.seen[key] = origin
        if self.threshold is None:
            return None
        sig = self.mh.signature(text)
        keys = [sig[i * self.rows:(i + 1) * self.rows].tobytes() for i in range(self.bands)]
        cands: set[int] = set()
        for band, k in zip(self.buckets, keys, strict=True):
            cands.update(band.get(k, ()))
        for c in sorted(cands):
            if float(np.mean(self.sigs[c] == sig)) >= self.threshold:
                return reason("near_duplicate", self.origins[c])
        idx = len(self.sigs)
        self.sigs.append(sig)
        self.origins.append(origin)
        for band, k in zip(self.buckets, keys, strict=True):
            band.setdefault(k, []).append(idx)
        return None


# --------------------------------------------------------------------------- decontamination

DEFAULT_BENCH_FIELDS = ("prompt", "question", "problem", "instruction", "input", "content",
                        "text", "turns")


def _bench_texts(path: Path, fields: Iterable[str]) -> Iterable[str]:
    fields = list(fields)

    def from_row(row: Any) -> Iterable[str]:
        if isinstance(row, str):
            yield row
            return
        if not isinstance(row, dict):
            return
        for f in fields:
            v = row.get(f)
            if isinstance(v, str):
                yield v
            elif isinstance(v, list):  # e.g. MT-Bench "turns"
                yield from (x for x in v if isinstance(x, str))

    if path.suffix == ".txt":
        yield from (ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip())
    elif path.suffix == ".jsonl":
        with open(path, encoding="utf-8") as fh:
            for ln in fh:
                if ln.strip():
                    yield from from_row(json.loads(ln))
    elif path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        for row in data if isinstance(data, list) else [data]:
            yield from from_row(row)
    elif path.suffix == ".parquet":
        import polars as pl

        for row in pl.read_parquet(path).iter_rows(named=True):
            yield from from_row(row)
    else:
        raise ValueError(f"{path}: benchmark files must be .jsonl, .json, .parquet or .txt")


def ngrams(text: str, n: int) -> set[int]:
    t = tokens(text)
    if not t:
        return set()
    if len(t) < n:
        return {_h64("\x00".join(t))}
    return {_h64("\x00".join(t[i:i + n])) for i in range(len(t) - n + 1)}


class Decontaminate:
    def __init__(self, spec: DecontaminateFilter, base: Path):
        self.n = spec.ngram
        self.index: dict[int, str] = {}
        self.short: dict[int, str] = {}
        fields = spec.fields or DEFAULT_BENCH_FIELDS
        for f in spec.files:
            p = (base / f) if not Path(f).is_absolute() else Path(f)
            if not p.exists():
                raise FileNotFoundError(f"filters.decontaminate.files: {p}: no such file")
            for text in _bench_texts(p, fields):
                t = tokens(text)
                target = self.short if len(t) < self.n else self.index
                for g in ngrams(text, self.n):
                    target.setdefault(g, p.name)

    def check(self, rec: dict[str, Any]) -> str | None:
        text = user_text(rec)
        grams = ngrams(text, self.n)
        for g in grams:
            if g in self.index:
                return f"contaminated:{self.index[g]}"
        if self.short:
            # a short benchmark prompt contained verbatim in (or equal to) ours
            t = tokens(text)
            for k in range(1, min(self.n, len(t) + 1)):
                for i in range(len(t) - k + 1):
                    h = _h64("\x00".join(t[i:i + k]))
                    if h in self.short:
                        return f"contaminated:{self.short[h]}"
        return None


def build_filters(specs: list[Any], base: Path) -> list[tuple[str, Filter]]:
    """Instantiate recipe filter specs (in order) as ``(type, filter)`` pairs."""
    out: list[tuple[str, Filter]] = []
    for s in specs:
        if isinstance(s, DomainFilter):
            out.append(("domain", Domain(s)))
        elif isinstance(s, LanguageFilter):
            out.append(("language", Language(s)))
        elif isinstance(s, HasTestsFilter):
            out.append(("has_tests", HasTests(s)))
        elif isinstance(s, DedupFilter):
            out.append(("dedup", Dedup(s)))
        elif isinstance(s, DecontaminateFilter):
            out.append(("decontaminate", Decontaminate(s, base)))
        elif isinstance(s, ReferencePassesFilter):
            out.append(("reference_passes", ReferencePasses(s)))
        else:  # pragma: no cover - the recipe schema admits only the types above
            raise TypeError(f"unknown filter {s!r}")
    return out
