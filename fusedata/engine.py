"""The stage engine: content-addressed, sharded, resumable.

Every stage output lives in ``WORK/<stage>/<label>-<key>/`` where ``key`` is a
hash of the stage's name and version, the part of the recipe that affects it,
and the keys of its inputs (a Merkle chain).  So:

* a finished stage is found again by recomputing its key: a re-run does no work;
* changing one model's sampling parameters changes only that model's sample key
  (and the keys downstream of it): other models stay cached;
* inside a stage, records are cut into fixed shards (the stage's
  ``shard_size`` rows, in input order; the recipe sets it per stage through
  ``executor.shard_size``).  A shard is written to a temp file and renamed only
  when complete, so after a SIGKILL at any point the folder holds whole shards
  only; the re-run computes just the missing ones.  On an object store (``work``
  an fsspec URL, :mod:`fusedata.storage`) there is no rename: the shard is PUT
  whole under its final name, then a completion marker, and only the marker
  counts (:func:`is_committed`).
* shard boundaries depend on the input and the shard size alone, and a resumed
  stage keeps the shard size it started with (recorded in ``_SHARDING.json``).
  No stage seeds anything from a shard's index: randomness comes from the
  recipe seed and the prompt ids (see :mod:`fusedata.backends`), so a resumed
  run, or one spread over Ray workers, gives the records of an uninterrupted one.

A map stage's ``run(records, shard_index, n_shards)`` gets one shard as a
polars DataFrame and returns the output records.  *Executors*
(:mod:`fusedata.executors`) decide where the shards run: in this process or on
Ray actors.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import io
import json
import logging
import os
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import polars as pl

from .executors import Executor, LocalExecutor
from .remote_parquet import ALL_ROWS, read_remote, scan_remote
from .storage import PathLike, RemotePath

log = logging.getLogger("fusedata")

DONE = "_DONE.json"
#: rows per Parquet row group of every file the engine writes.  A reader of rows
#: ``[a, b)`` decodes only the row groups that hold them, so reading a shard costs the
#: same wherever it lies in the file (one row group per table made the last 64-row
#: slice of a 32k-prompt table decode all 32k rows).  Small enough for the smallest
#: shard (sample: 64 prompts), large enough that the per-group overhead stays small.
ROW_GROUP_ROWS = 256
#: the shard size a stage folder was started with (a resume keeps it)
SHARDING = "_SHARDING.json"


def stable_hash(obj: Any, n: int = 16) -> str:
    """Hash of a JSON-able object, independent of dict order (the cache key primitive)."""
    blob = json.dumps(obj, sort_keys=True, default=str, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:n]


def atomic_write_parquet(df: pl.DataFrame, path: PathLike, **options: Any) -> None:
    """Write ``df`` so that ``path`` either does not exist or holds the complete file.

    ``options`` go to :meth:`polars.DataFrame.write_parquet` (export uses them to write
    plain Arrow types for the Hub).  On an object store (a :class:`RemotePath`) the
    file is built in memory and sent in one PUT, which is all-or-nothing."""
    opts = {"compression": "zstd", "statistics": True, "row_group_size": ROW_GROUP_ROWS,
            **options}
    if isinstance(path, RemotePath):
        buf = io.BytesIO()
        df.write_parquet(buf, **opts)
        path.write_bytes(buf.getvalue())
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    df.write_parquet(tmp, **opts)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_text(text: str, path: PathLike) -> None:
    if isinstance(path, RemotePath):
        path.write_text(text)  # one PUT: all or nothing
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _clean_temps(folder: PathLike) -> None:
    if isinstance(folder, RemotePath):
        return  # nothing is staged under a temp name on an object store
    for p in folder.glob(".*.tmp-*"):
        p.unlink(missing_ok=True)


@dataclass(frozen=True)
class Dataset:
    """A finished set of Parquet files plus the key that names its content.

    ``rows`` is the index written with the stage's output (``_DONE.json``): the
    row count of each file, so row ``k`` of the dataset is found by file and
    offset without opening the other files.  When absent (a dataset built by
    hand, or by an older version) it is read from the files' footers once.
    """

    files: tuple[PathLike, ...]
    key: str
    schema: dict[str, pl.DataType] | None = None
    rows: tuple[int, ...] | None = None

    def scan(self) -> pl.LazyFrame:
        if not self.files:
            return pl.LazyFrame(schema=self.schema or {})
        if isinstance(self.files[0], RemotePath):
            return pl.concat([_scan(f) for f in self.files], how="vertical_relaxed")
        return pl.scan_parquet(list(self.files))

    def read(self) -> pl.DataFrame:
        return self.scan().collect()

    def read_columns(self, columns: list[str]) -> pl.DataFrame:
        """All rows, ``columns`` only.  On an object store this fetches just those
        columns' chunks (:func:`fusedata.remote_parquet.read_remote`), not the whole files as :meth:`scan`
        does (a key index of a prompts table needs the ids, not the texts)."""
        if self.files and isinstance(self.files[0], RemotePath):
            parts = [read_remote(f, 0, ALL_ROWS, columns) for f in self.files]
            return parts[0] if len(parts) == 1 else pl.concat(parts, how="vertical_relaxed")
        return self.scan().select(columns).collect()

    def file_rows(self) -> tuple[int, ...]:
        """Rows per file (the index; footers only when it was not recorded)."""
        if self.rows is not None and len(self.rows) == len(self.files):
            return self.rows
        return tuple(file_rows(f) for f in self.files)

    def num_rows(self) -> int:
        if not self.files:
            return 0
        return sum(self.file_rows())

    def read_range(self, start: int, length: int, columns: list[str] | None = None
                   ) -> pl.DataFrame:
        """Rows ``[start, start + length)``, reading only the files and row groups
        that hold them (so the cost does not grow with ``start``)."""
        if not self.files:
            df = self.read()
            return df.select(columns) if columns is not None else df
        counts = self.file_rows()
        ends = list(_cumsum(counts))
        stop = start + length
        parts = []
        k = bisect.bisect_right(ends, start)
        while k < len(self.files) and (ends[k] - counts[k]) < stop:
            base = ends[k] - counts[k]
            lo, hi = max(start, base) - base, min(stop, ends[k]) - base
            if hi > lo:
                parts.append(_read_rows(self.files[k], lo, hi, columns))
            k += 1
        if not parts:
            return _read_rows(self.files[0], 0, 0, columns)
        return parts[0] if len(parts) == 1 else pl.concat(parts, how="vertical_relaxed")

def _scan(f: PathLike) -> pl.LazyFrame:
    """One Parquet file, lazily (a remote one: :func:`fusedata.remote_parquet.scan_remote`)."""
    if isinstance(f, RemotePath):
        return scan_remote(f)
    return pl.scan_parquet(f)


def _read_rows(f: PathLike, lo: int, hi: int, columns: list[str] | None) -> pl.DataFrame:
    """Rows ``[lo, hi)`` of one Parquet file (``columns`` only, in that order)."""
    if isinstance(f, RemotePath):
        return read_remote(f, lo, hi, columns)
    lf = pl.scan_parquet(f)
    if columns is not None:
        lf = lf.select(columns)
    return lf.slice(lo, max(0, hi - lo)).collect()


def _cumsum(xs: Iterable[int]) -> Iterable[int]:
    t = 0
    for x in xs:
        t += x
        yield t


def file_rows(path: PathLike) -> int:
    """Row count of one Parquet file, from its footer (no data is read).

    Memoized per (path, size, mtime): a dataset without a recorded index (built by
    hand, or by an older version) would otherwise read every footer on every shard."""
    if isinstance(path, RemotePath):
        import pyarrow.parquet as pq

        with path.open() as f:
            return int(pq.read_metadata(f).num_rows)
    st = os.stat(path)
    return _footer_rows(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=1 << 16)
def _footer_rows(path: str, size: int, mtime_ns: int) -> int:
    import pyarrow.parquet as pq

    return int(pq.read_metadata(path).num_rows)


class RowLookup:
    """Rows of a dataset by key (e.g. the prompts by ``prompt_id``), per shard.

    A per-shard ``scan().filter(key in shard_keys)`` decodes the whole table for
    every shard (score and verify spent 22.6 s and 5.0 s on it at 32k prompts).
    This keeps ``key -> row position`` (keys only: small) and reads just the row
    ranges holding the wanted keys; the responses of one shard come from
    neighbouring prompts, so that is a few row groups whatever the shard's index.
    Built on first use in the process that runs the shards (never pickled).
    """

    #: rows between two wanted positions below which one range read covers both
    GAP = ROW_GROUP_ROWS

    def __init__(self, dataset: Dataset, key: str):
        self.dataset = dataset
        self.key = key
        self._pos: pl.DataFrame | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_pos": None}

    def fetch(self, keys: pl.Series, columns: list[str]) -> pl.DataFrame:
        """The rows (``columns``, which include the key) whose key is in ``keys``."""
        cols = columns if self.key in columns else [self.key, *columns]
        if self._pos is None:
            self._pos = self.dataset.read_columns([self.key]).with_row_index("_pos")
        want = keys.unique().drop_nulls()
        pos = (want.to_frame(self.key).join(self._pos, on=self.key, how="inner")
               ["_pos"].sort().to_list())
        parts = []
        i = 0
        while i < len(pos):
            j = i
            while j + 1 < len(pos) and pos[j + 1] - pos[j] <= self.GAP:
                j += 1
            part = self.dataset.read_range(pos[i], pos[j] - pos[i] + 1, cols)
            parts.append(part.filter(pl.col(self.key).is_in(want.implode())))
            i = j + 1
        if not parts:
            return self.dataset.read_range(0, 0, cols)
        return pl.concat(parts, how="vertical_relaxed")


class Stage(ABC):
    """One step of the build.  Subclasses set ``name`` and implement :meth:`run`.

    ``fingerprint()`` must return everything in the config that changes the
    output (it is hashed into the cache key); ``version`` is bumped when the
    code's output changes for the same config.  ``setup()`` loads heavy things
    (models) and is called only when at least one shard is pending, so a cached
    re-run never loads a model.  ``run()`` must accept an empty frame.

    ``shard_size`` is the number of input rows per shard: the class default
    unless the constructor was given the recipe's value.  It is not part of the
    cache key: it changes how work is cut, not what a record becomes.
    """

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    shard_size: int = 64
    #: the output columns :meth:`summarize` reads (None: all).  The summary runs over
    #: the whole output, so a stage whose records carry texts names its few columns
    #: rather than have every response's text loaded at once.
    summary_columns: ClassVar[tuple[str, ...] | None] = None

    @abstractmethod
    def fingerprint(self) -> Any: ...

    def setup(self) -> None:  # noqa: B027 - optional hook
        """Load models or start worker pools (only when there is work)."""

    def teardown(self) -> None:  # noqa: B027 - optional hook
        """Free what setup() took (GPU memory, processes)."""

    @abstractmethod
    def run(self, records: pl.DataFrame, shard_index: int, n_shards: int) -> pl.DataFrame:
        """Output records of shard ``shard_index`` (of ``n_shards``) of this stage's input."""

    def summarize(self, out: pl.DataFrame) -> str:
        """A short human line about a finished shard set (drop reasons etc.)."""
        return ""


def shard_name(i: int) -> str:
    return f"shard-{i:05d}.parquet"


def marker_name(i: int) -> str:
    """The completion marker of shard ``i`` on an object store (see :func:`is_committed`)."""
    return f"_COMMITTED.{shard_name(i)}.json"


def is_committed(folder: PathLike, i: int) -> bool:
    """Whether shard ``i`` of ``folder`` is finished.

    Locally a shard is renamed into place only when complete, so its name is the
    proof.  An object store has no rename: the shard is PUT under its final name
    (all-or-nothing) and then its marker; a shard without its marker may be from a
    worker killed between the two PUTs (or one still running), so only the marker
    counts and such a shard is simply computed again (the same bytes: no stage seeds
    from anything but the recipe and the records)."""
    if isinstance(folder, RemotePath):
        return (folder / marker_name(i)).exists()
    return (folder / shard_name(i)).exists()


def commit_shard(out: pl.DataFrame, folder: PathLike, i: int) -> None:
    """Write shard ``i``: atomically locally; on an object store, shard then marker."""
    atomic_write_parquet(out, folder / shard_name(i))
    if isinstance(folder, RemotePath):
        atomic_write_text(json.dumps({"rows": out.height}), folder / marker_name(i))


@dataclass(frozen=True)
class ShardPlan:
    """The pending shards of one stage: what an executor runs (picklable, for Ray).

    Satisfies :class:`fusedata.executors.ShardWork`.
    """

    stage: Stage
    inputs: Dataset
    pending: tuple[int, ...]
    size: int
    n_shards: int
    n_rows: int
    folder: PathLike
    label: str

    def is_committed(self, i: int) -> bool:
        return is_committed(self.folder, i)

    def run_shard(self, i: int) -> int:
        """Compute shard ``i`` and commit it atomically; returns its input rows.

        Idempotent: a shard already committed (by this or any other worker, e.g.
        before a crash and retry) is not recomputed.  The caller must have run
        ``stage.setup()`` in this process if the stage has input rows.
        """
        if is_committed(self.folder, i):
            return 0
        shard = self.inputs.read_range(i * self.size, self.size)
        out = self.stage.run(shard, i, self.n_shards)
        commit_shard(out, self.folder, i)
        return shard.height


@dataclass
class StageResult:
    dataset: Dataset
    cached: bool
    rows_in: int
    rows_out: int
    seconds: float
    folder: PathLike
    note: str = ""


@dataclass
class Engine:
    """Runs stages against a work directory; see the module docstring."""

    work: PathLike
    progress: bool = True
    executor: Executor = field(default_factory=LocalExecutor)
    results: list[tuple[str, StageResult]] = field(default_factory=list)

    def stage_dir(self, stage: Stage, label: str, key: str) -> PathLike:
        return self.work / stage.name / f"{label}-{key}"

    def key_for(self, stage: Stage, input_keys: Iterable[str]) -> str:
        return stable_hash(
            {
                "stage": stage.name,
                "version": stage.version,
                "config": stage.fingerprint(),
                "inputs": list(input_keys),
            }
        )

    # ------------------------------------------------------------------ map
    def map(self, stage: Stage, inputs: Dataset, label: str) -> StageResult:
        """Run ``stage`` shard by shard over ``inputs``; resume where a previous run stopped."""
        key = self.key_for(stage, [inputs.key])
        folder = self.stage_dir(stage, label, key)
        done = folder / DONE
        tag = f"{stage.name}[{label}]"
        if done.exists():
            meta = json.loads(done.read_text())
            files = tuple(folder / f for f in meta["files"])
            rows = tuple(meta["rows"]) if "rows" in meta else None
            res = StageResult(
                Dataset(files, key, rows=rows), True, meta["rows_in"], meta["rows_out"], 0.0,
                folder,
                meta.get("note", ""),
            )
            log.info("%s: cached (%d -> %d records) %s", tag, res.rows_in, res.rows_out, folder)
            self.results.append((tag, res))
            return res

        folder.mkdir(parents=True, exist_ok=True)
        _clean_temps(folder)
        t0 = time.perf_counter()
        n = inputs.num_rows()
        size = _shard_size(folder, stage.shard_size, tag)
        n_shards = max(1, -(-n // size))
        names = [shard_name(i) for i in range(n_shards)]
        pending = [i for i in range(n_shards) if not is_committed(folder, i)]
        if len(pending) < n_shards:
            log.info("%s: resuming, %d of %d shards already done", tag, n_shards - len(pending),
                     n_shards)
        if pending:
            bar = _bar(total=sum(min(size, n - i * size) for i in pending) if n else 0,
                       desc=tag, enabled=self.progress)
            try:
                plan = ShardPlan(stage, inputs, tuple(pending), size, n_shards, n, folder, tag)
                self.executor.map_shards(plan, bar.update)
            finally:
                bar.close()
        files = tuple(folder / nm for nm in names)
        # the index: rows per output file, so the next stage finds its shard by file
        # and offset (footers are read once here, never again by readers)
        out_ds = Dataset(files, key, rows=tuple(file_rows(f) for f in files))
        rows_out = out_ds.num_rows()
        cols = stage.summary_columns
        note = (stage.summarize(out_ds.read_columns(list(cols)) if cols and rows_out
                                else out_ds.read()) if rows_out or n else "")
        meta = {"files": names, "rows": list(out_ds.rows or ()), "rows_in": n,
                "rows_out": rows_out, "note": note,
                "seconds": round(time.perf_counter() - t0, 3), "stage": stage.name,
                "label": label, "config": stage.fingerprint(), "input": inputs.key}
        atomic_write_text(json.dumps(meta, indent=1, default=str), done)
        res = StageResult(out_ds, False, n, rows_out, time.perf_counter() - t0, folder, note)
        log.info("%s: %d -> %d records in %.1fs%s", tag, n, rows_out, res.seconds,
                 f"; {note}" if note else "")
        self.results.append((tag, res))
        return res

    # --------------------------------------------------------------- reduce
    def reduce(self, stage: ReduceStage, inputs: dict[str, Dataset], label: str = "all"
               ) -> dict[str, Dataset]:
        """Run a whole-table stage (e.g. selection) that writes several named tables."""
        key = self.key_for(stage, [f"{k}={v.key}" for k, v in sorted(inputs.items())])
        folder = self.stage_dir(stage, label, key)
        done = folder / DONE
        tag = f"{stage.name}[{label}]"
        if done.exists():
            meta = json.loads(done.read_text())
            log.info("%s: cached %s", tag, folder)
            counts = meta.get("rows_out")
            out = {t: Dataset((folder / f"{t}.parquet",), stable_hash([key, t]),
                              rows=(counts[t],) if isinstance(counts, dict) else None)
                   for t in meta["tables"]}
            self.results.append((tag, StageResult(next(iter(out.values()), Dataset((), key)),
                                                  True, meta["rows_in"], meta["rows_out"], 0.0,
                                                  folder, meta.get("note", ""))))
            return out
        folder.mkdir(parents=True, exist_ok=True)
        _clean_temps(folder)
        t0 = time.perf_counter()
        tables = stage.reduce({k: v for k, v in inputs.items()})
        for t, df in tables.items():
            atomic_write_parquet(df, folder / f"{t}.parquet")
        rows_in = sum(v.num_rows() for v in inputs.values())
        rows_out = {t: df.height for t, df in tables.items()}
        note = stage.summarize_tables(tables)
        meta = {"tables": list(tables), "rows_in": rows_in, "rows_out": rows_out, "note": note,
                "seconds": round(time.perf_counter() - t0, 3), "config": stage.fingerprint()}
        atomic_write_text(json.dumps(meta, indent=1, default=str), done)
        log.info("%s: %d records -> %s in %.1fs%s", tag, rows_in,
                 ", ".join(f"{t} {n}" for t, n in rows_out.items()), time.perf_counter() - t0,
                 f"; {note}" if note else "")
        self.results.append((tag, StageResult(Dataset((), key), False, rows_in,
                                              sum(rows_out.values()), time.perf_counter() - t0,
                                              folder, note)))
        return {t: Dataset((folder / f"{t}.parquet",), stable_hash([key, t]),
                           rows=(rows_out[t],)) for t in tables}


class ReduceStage(ABC):
    """A stage that needs whole tables at once (selection, export)."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"

    @abstractmethod
    def fingerprint(self) -> Any: ...

    @abstractmethod
    def reduce(self, inputs: dict[str, Dataset]) -> dict[str, pl.DataFrame]: ...

    def summarize_tables(self, tables: dict[str, pl.DataFrame]) -> str:
        return ""


def _shard_size(folder: PathLike, wanted: int, tag: str) -> int:
    """The shard size of this stage folder: the one it was started with, if any.

    Shard ``i`` is rows ``[i * size, (i + 1) * size)``, so shards committed with
    one size cannot be completed with another; a resume after the recipe's
    ``shard_size`` changed keeps the old size (the key does not include it).
    """
    rec = folder / SHARDING
    if rec.exists():
        size = int(json.loads(rec.read_text())["shard_size"])
        if size != wanted:
            log.info("%s: resuming with shard size %d (the interrupted run's), not %d",
                     tag, size, wanted)
        return size
    atomic_write_text(json.dumps({"shard_size": wanted}), rec)
    return wanted


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(total: int, desc: str, enabled: bool):
    if not enabled or total == 0:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="rec", dynamic_ncols=True, leave=False)
