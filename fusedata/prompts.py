"""The ``prompts`` stage: load each prompt source into prompt records.

A source is a Hub dataset id or a local jsonl/json/parquet file (or a folder of
them).  Field mapping turns a row into ``messages`` (see :class:`FieldMap`).
Rows that cannot become a prompt (missing field, empty text, conversation
that does not end with a user turn, exact duplicate) are *not* silently lost:
they go to the source's ``dropped`` table with a reason, and the counts are
logged.

Loaders for specific dataset families (UltraFeedback, OpenMathInstruct-2,
leetcode, ...; :mod:`fusedata.sources`) register in
:data:`fusedata.sources.base.LOADERS`; the ``generic`` one only applies the field
map.  After the loader, the recipe's ``filters`` (code/math exclusion, language,
has-tests, normalised + MinHash dedup, n-gram decontamination;
:mod:`fusedata.sources.filters`) run in order, and every removed row is recorded
in ``dropped`` with the filter's reason.  A ``dedup`` filter also removes rows
that repeat a prompt kept by an *earlier* source of the recipe (the seed's sets
overlap; see :func:`load_prompts`).  ``limit`` is a target count of *kept*
prompts; with ``seed`` the rows are visited in a seeded random order (streamed
and shuffled for Hub datasets).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from .engine import Dataset, Engine, ReduceStage
from .recipe import PromptSource
from .records import PROMPT_SCHEMA, prompt_id
from .sources import LOADERS, DropRow
from .sources.filters import Dedup, build_filters

log = logging.getLogger("fusedata")

#: the ``dropped`` table of the prompts stage: one row per source row that did not become a
#: prompt (not :data:`fusedata.select.DROP_SCHEMA`, selection's per-prompt drops)
PROMPT_DROP_SCHEMA = {"source": pl.String, "row_index": pl.Int64, "reason": pl.String}


# --------------------------------------------------------------------------- reading rows


def _local_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in (".jsonl", ".json", ".parquet"))
        if not files:
            raise FileNotFoundError(f"{path}: folder holds no .jsonl/.json/.parquet files")
        return files
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    return [path]


def _read_local(path: Path, fmt: str) -> Iterator[dict[str, Any]]:
    for f in _local_files(path):
        kind = fmt if fmt != "auto" else f.suffix.lstrip(".")
        if kind == "parquet":
            yield from pl.read_parquet(f).iter_rows(named=True)
        elif kind == "jsonl":
            with open(f, encoding="utf-8") as fh:
                for ln, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as e:
                        raise ValueError(f"{f}:{ln}: not valid JSON: {e.msg}") from None
        elif kind == "json":
            data = json.loads(f.read_text(encoding="utf-8"))
            if not isinstance(data, list):
                raise ValueError(f"{f}: a .json source must hold a list of rows")
            yield from data
        else:
            raise ValueError(f"{f}: unknown format {kind!r} (use jsonl, json or parquet)")


def _is_local(src: PromptSource, base: Path) -> bool:
    return src.format != "hf" and (base / src.path).exists()


def content_fingerprint(src: PromptSource, base: Path) -> str:
    """What identifies the source's content: file bytes for local data, id+revision for the Hub.

    A Hub dataset without a pinned ``revision`` may change upstream; pin it for
    reproducible caches.
    """
    if _is_local(src, base):
        h = hashlib.sha256()
        for f in _local_files(base / src.path):
            h.update(str(f.relative_to(base / src.path) if f != base / src.path else f.name).encode())
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
        return h.hexdigest()
    return f"hf:{src.path}:{src.subset}:{src.split}:{src.revision}"


# --------------------------------------------------------------------------- the stage


class PromptsStage(ReduceStage):
    """Load one source into ``prompts`` and ``dropped`` tables."""

    name = "prompts"
    version = "3"  # 3: coding loaders on the real row formats (issue 14)

    def __init__(self, src: PromptSource, base: Path):
        self.src = src
        self.base = base

    def fingerprint(self) -> Any:
        bench = {}
        for flt in self.src.filters:
            for f in getattr(flt, "files", None) or []:
                p = self.base / f
                bench[f] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
        return {"source": self.src.model_dump(mode="json"),
                "content": content_fingerprint(self.src, self.base), "benchmarks": bench}

    def _ordered_rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(row_index, row)`` in processing order.

        Without ``seed`` (or without ``limit``): file order.  With both, a seeded
        random order, so stopping at ``limit`` kept prompts yields a seeded sample of
        the rows that pass the loader and filters, and a stream never has to be
        read to its end.  Local rows: a permutation of all rows (``row_index`` is
        the row's position in the file(s)).  Hub rows: ``datasets``' streaming
        shuffle with a ``shuffle_buffer``-row buffer (``row_index`` is the position
        in that shuffled stream).
        """
        src = self.src
        sampled = src.seed is not None and src.limit is not None
        if _is_local(src, self.base):
            rows = _read_local(self.base / src.path, src.format)
            if not sampled:
                yield from enumerate(rows)
                return
            allrows = list(rows)
            order = list(range(len(allrows)))
            random.Random(src.seed).shuffle(order)
            for i in order:
                yield i, allrows[i]
            return
        if src.format in ("jsonl", "json", "parquet"):
            raise FileNotFoundError(f"prompts[{src.name}].path: {src.path}: no such file")
        import datasets  # lazy: only Hub sources need it

        ds = datasets.load_dataset(src.path, src.subset, split=src.split, revision=src.revision,
                                   streaming=True)
        if sampled:
            ds = ds.shuffle(seed=src.seed, buffer_size=src.shuffle_buffer)
        yield from enumerate(ds)

    def reduce(self, inputs: dict[str, Dataset]) -> dict[str, pl.DataFrame]:
        """Load, map and filter the source.

        ``inputs``: the ``prompts`` tables of the sources before this one in the
        recipe (keys ``"<index>:<name>"``, see :func:`load_prompts`); the source's
        ``dedup`` filters remember them first, so a row repeating an earlier source's
        prompt is dropped here, before it counts towards ``limit``.
        """
        src = self.src
        if src.loader not in LOADERS:
            raise ValueError(f"prompts[{src.name}].loader: unknown loader {src.loader!r}; "
                             f"known: {', '.join(sorted(LOADERS))}")
        loader = LOADERS[src.loader]
        filters = build_filters(src.filters, self.base)
        self._remember_earlier_sources(inputs, [f for _, f in filters if isinstance(f, Dedup)])
        kept: list[dict[str, Any]] = []
        dropped: list[dict[str, Any]] = []
        seen: set[str] = set()
        visited = 0
        for i, row in self._ordered_rows():
            if src.limit is not None and len(kept) >= src.limit:
                break
            visited += 1
            try:
                rec = loader(row, src)
            except DropRow as e:
                dropped.append({"source": src.name, "row_index": i, "reason": str(e)})
                continue
            pid = prompt_id(rec["messages"])
            if pid in seen:
                dropped.append({"source": src.name, "row_index": i, "reason": "duplicate"})
                continue
            seen.add(pid)
            reason = None
            for _, flt in filters:
                reason = flt.check(rec)
                if reason is not None:
                    break
            if reason is not None:
                dropped.append({"source": src.name, "row_index": i, "reason": reason})
                continue
            rec.pop("meta", None)
            kept.append({"prompt_id": pid, "source": src.name, "source_dataset": src.path,
                         "category": rec.pop("category", None) or src.category, "row_index": i,
                         **rec})
        if src.limit is not None and len(kept) >= src.limit:
            log.info("prompts[%s]: target of %d prompts reached after %d rows", src.name,
                     src.limit, visited)
        elif src.limit is not None:
            log.warning("prompts[%s]: only %d prompts pass (target %d); source exhausted",
                        src.name, len(kept), src.limit)
        df = pl.DataFrame(kept, schema=PROMPT_SCHEMA) if kept else pl.DataFrame(
            schema=PROMPT_SCHEMA)
        drops = pl.DataFrame(dropped, schema=PROMPT_DROP_SCHEMA)
        return {"prompts": df.sort("row_index"), "dropped": drops.sort("row_index")}

    @staticmethod
    def _remember_earlier_sources(inputs: dict[str, Dataset], dedups: list[Dedup]) -> None:
        if not dedups:
            return
        for key in sorted(inputs, key=lambda k: int(k.split(":", 1)[0])):
            table = inputs[key].read()
            for name, messages in zip(table["source"], table["messages"], strict=True):
                rec = {"messages": messages}
                for d in dedups:
                    d.remember(rec, name)

    def summarize_tables(self, tables: dict[str, pl.DataFrame]) -> str:
        """Per-source coverage, printed with the stage's log line: rows read, kept, and
        dropped by reason (how much of a coding set yields runnable tests, issue 14)."""
        d, kept = tables["dropped"], tables["prompts"].height
        head = f"read {kept + d.height}, kept {kept}, dropped {d.height}"
        if d.height == 0:
            return head
        counts = d.group_by("reason").len().sort(["len", "reason"], descending=[True, False])
        return head + " (" + ", ".join(f"{r} {n}" for r, n in counts.iter_rows()) + ")"


def load_prompts(engine: Engine, sources: list[PromptSource], base: Path
                 ) -> dict[str, Dataset]:
    """Run the prompts stage for every source; returns source name -> prompts dataset.

    Duplicates *across* sources keep their first occurrence in recipe order, at two
    levels.  A source with a ``dedup`` filter receives the kept prompts of every source
    before it as inputs and drops rows that repeat one of them, exactly after
    normalisation or as a MinHash near duplicate with that filter's settings
    (reasons ``duplicate_normalized:<earlier source>``, ``near_duplicate:<earlier
    source>`` in its ``dropped`` table), so its ``limit`` counts only new prompts.
    Its cache key then includes the earlier sources' outputs.  Any identical prompt
    left (sources without a ``dedup`` filter) is removed by :class:`MergePrompts`.
    """
    out: dict[str, Dataset] = {}
    for src in sources:
        has_dedup = any(f.type == "dedup" for f in src.filters)
        earlier = {f"{i}:{name}": ds for i, (name, ds) in enumerate(out.items())} \
            if has_dedup else {}
        tables = engine.reduce(PromptsStage(src, base), earlier, label=src.name)
        out[src.name] = tables["prompts"]
    return out


class MergePrompts(ReduceStage):
    """Concatenate all sources in recipe order; a prompt seen in an earlier source wins."""

    name = "prompts_merged"

    def fingerprint(self) -> Any:
        return {}

    def reduce(self, inputs: dict[str, Dataset]) -> dict[str, pl.DataFrame]:
        order = sorted(inputs, key=lambda k: int(k.split(":", 1)[0]))
        frames = [inputs[k].read() for k in order]
        allp = pl.concat(frames, how="vertical") if frames else pl.DataFrame(schema=PROMPT_SCHEMA)
        first = allp.with_row_index("_i").filter(
            pl.col("_i") == pl.col("_i").min().over("prompt_id"))
        dup = allp.with_row_index("_i").join(first.select("_i"), on="_i", how="anti")
        dropped = dup.select("source", "row_index", reason=pl.lit("duplicate_across_sources"))
        return {"prompts": first.drop("_i"), "dropped": dropped.cast(PROMPT_DROP_SCHEMA)}

    def summarize_tables(self, tables: dict[str, pl.DataFrame]) -> str:
        n = tables["dropped"].height
        return f"{n} duplicates across sources dropped" if n else ""


def merge_prompts(engine: Engine, per_source: dict[str, Dataset]) -> Dataset:
    inputs = {f"{i}:{name}": ds for i, (name, ds) in enumerate(per_source.items())}
    return engine.reduce(MergePrompts(), inputs)["prompts"]

