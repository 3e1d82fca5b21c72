"""The ``prompts`` stage: load each prompt source into prompt records.

A source is a Hub dataset id or a local jsonl/json/parquet file (or a folder of
them).  Field mapping turns a row into ``messages`` (see :class:`FieldMap`).
Rows that cannot become a prompt (missing field, empty text, conversation
that does not end with a user turn, exact duplicate) are *not* silently lost:
they go to the source's ``dropped`` table with a reason, and the counts are
logged.

Loaders for specific dataset families (UltraFeedback, OpenMathInstruct-2,
leetcode, ...; :mod:`fusedata.sources`) register in :data:`LOADERS`; the
``generic`` one only applies the field map.  After the loader, the recipe's
``filters`` (code/math exclusion, language, has-tests, normalised + MinHash
dedup, n-gram decontamination; :mod:`fusedata.sources.filters`) run in order,
and every removed row is recorded in ``dropped`` with the filter's reason.
``limit`` is a target count of *kept* prompts; with ``seed`` the rows are
visited in a seeded random order (streamed and shuffled for Hub datasets).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl

from .engine import Dataset, Engine, ReduceStage
from .recipe import PromptSource
from .records import PROMPT_SCHEMA, prompt_id

log = logging.getLogger("fusedata")

ROLE_ALIASES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                "model": "assistant", "bot": "assistant", "system": "system"}

DROP_SCHEMA = {"source": pl.String, "row_index": pl.Int64, "reason": pl.String}


class DropRow(Exception):
    """Raised by a loader for a row that cannot become a prompt; the message is the reason."""


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


def read_rows(src: PromptSource, base: Path) -> Iterator[dict[str, Any]]:
    """Yield raw rows of a source; Hub datasets are streamed (never fully downloaded first)."""
    if _is_local(src, base):
        yield from _read_local(base / src.path, src.format)
        return
    if src.format in ("jsonl", "json", "parquet"):
        raise FileNotFoundError(f"prompts[{src.name}].path: {src.path}: no such file")
    import datasets  # lazy: only Hub sources need it

    ds = datasets.load_dataset(src.path, src.subset, split=src.split, revision=src.revision,
                               streaming=True)
    yield from ds


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


# --------------------------------------------------------------------------- mapping rows


def _norm_messages(raw: Any) -> list[dict[str, str]]:
    if isinstance(raw, str):
        raw = json.loads(raw)
    if not isinstance(raw, list) or not raw:
        raise DropRow("messages_not_a_list")
    out = []
    for m in raw:
        if not isinstance(m, dict):
            raise DropRow("message_not_a_mapping")
        role = m.get("role", m.get("from"))
        content = m.get("content", m.get("value"))
        role = ROLE_ALIASES.get(str(role).lower()) if role is not None else None
        if role is None or not isinstance(content, str):
            raise DropRow("message_without_role_or_content")
        out.append({"role": role, "content": content})
    return out


def generic_loader(row: dict[str, Any], src: PromptSource) -> dict[str, Any]:
    """Map one raw row through ``src.fields``.  Raises :class:`DropRow` with a reason."""
    f = src.fields
    if f is None:
        raise ValueError(f"prompts[{src.name}]: the generic loader needs 'fields'")
    if f.messages is not None:
        if f.messages not in row or row[f.messages] is None:
            raise DropRow(f"missing_field:{f.messages}")
        messages = _norm_messages(row[f.messages])
        # We generate the next assistant turn: a trailing assistant turn is the
        # dataset's own answer, not part of the prompt.
        while messages and messages[-1]["role"] == "assistant":
            messages.pop()
    else:
        text = row.get(f.prompt)
        if text is None:
            raise DropRow(f"missing_field:{f.prompt}")
        if not isinstance(text, str):
            raise DropRow(f"not_text:{f.prompt}")
        messages = [{"role": "user", "content": text}]
        if f.system and row.get(f.system):
            messages.insert(0, {"role": "system", "content": str(row[f.system])})
    if not messages or messages[-1]["role"] != "user":
        raise DropRow("no_final_user_turn")
    if not messages[-1]["content"].strip():
        raise DropRow("empty_prompt")

    def opt(name: str | None) -> str | None:
        if name is None:
            return None
        v = row.get(name)
        if v is None:
            return None
        return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)

    out = {"messages": messages, "gold": opt(f.gold), "tests": opt(f.tests),
           "existing_response": opt(f.response)}
    if f.gold and out["gold"] is None:
        raise DropRow(f"missing_field:{f.gold}")
    return out


Loader = Callable[[dict[str, Any], PromptSource], dict[str, Any]]
#: dataset-family loaders by name (recipe ``prompts[i].loader``)
LOADERS: dict[str, Loader] = {"generic": generic_loader}


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
        from .sources.filters import build_filters

        src = self.src
        if src.loader not in LOADERS:
            raise ValueError(f"prompts[{src.name}].loader: unknown loader {src.loader!r}; "
                             f"known: {', '.join(sorted(LOADERS))}")
        loader = LOADERS[src.loader]
        filters = build_filters(src.filters, self.base)
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
        drops = pl.DataFrame(dropped, schema=DROP_SCHEMA)
        return {"prompts": df.sort("row_index"), "dropped": drops.sort("row_index")}

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

    Prompts duplicated *across* sources keep their first occurrence (recipe order).
    """
    out: dict[str, Dataset] = {}
    for src in sources:
        tables = engine.reduce(PromptsStage(src, base), {}, label=src.name)
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
        return {"prompts": first.drop("_i"), "dropped": dropped.cast(DROP_SCHEMA)}

    def summarize_tables(self, tables: dict[str, pl.DataFrame]) -> str:
        n = tables["dropped"].height
        return f"{n} duplicates across sources dropped" if n else ""


def merge_prompts(engine: Engine, per_source: dict[str, Dataset]) -> Dataset:
    inputs = {f"{i}:{name}": ds for i, (name, ds) in enumerate(per_source.items())}
    return engine.reduce(MergePrompts(), inputs)["prompts"]


# Dataset-family loaders register themselves in LOADERS on import (kept last: they
# import DropRow and LOADERS from this module).
from . import sources as _sources  # noqa: E402, F401
