"""Issue 19: shard reads by file and offset, per-shard prompt lookups, slim selection,
and the HTTP client's pools."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import httpx
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from polars.testing import assert_frame_equal

from fusedata.backends import Request, get_sampler, openai_http
from fusedata.engine import (
    DONE,
    ROW_GROUP_ROWS,
    Dataset,
    Engine,
    RowLookup,
    Stage,
    atomic_write_parquet,
)
from fusedata.recipe import ModelSpec
from fusedata.select import SelectStage, select_tables

from .test_select_props import tables


def _files(tmp: Path, sizes: list[int]) -> tuple[Dataset, pl.DataFrame]:
    frames, files, start = [], [], 0
    for k, n in enumerate(sizes):
        df = pl.DataFrame({"i": pl.int_range(start, start + n, eager=True, dtype=pl.Int64),
                           "s": [f"row {j}" for j in range(start, start + n)]},
                          schema={"i": pl.Int64, "s": pl.String})
        f = tmp / f"part-{k}.parquet"
        atomic_write_parquet(df, f)
        frames.append(df)
        files.append(f)
        start += n
    return Dataset(tuple(files), "k", rows=tuple(sizes)), pl.concat(frames)


def test_read_range_matches_a_slice_of_the_whole(tmp_path):
    ds, whole = _files(tmp_path, [5, 0, 700, 1, 300])
    assert ds.num_rows() == whole.height == 1006
    for start, n in [(0, 5), (3, 4), (4, 2), (5, 64), (690, 64), (1000, 64), (1005, 1),
                     (1006, 64), (2000, 3), (0, 2000), (704, 0)]:
        assert_frame_equal(ds.read_range(start, n), whole.slice(start, n))
    assert ds.read_range(10, 3, ["s"]).to_series().to_list() == ["row 10", "row 11", "row 12"]
    # without the recorded index the footers give the same counts
    assert Dataset(ds.files, "k").file_rows() == ds.rows


def test_a_shard_read_touches_only_its_own_files(tmp_path):
    """Shard i is found by file and offset: the other files are never opened (so reading
    the last shard costs what reading the first does)."""
    ds, whole = _files(tmp_path, [100, 100, 100, 100])
    for f in ds.files[:2] + ds.files[3:]:
        f.unlink()  # only part-2 is left
    assert_frame_equal(ds.read_range(210, 50), whole.slice(210, 50))


def test_engine_writes_small_row_groups_and_an_index(tmp_path):
    import pyarrow.parquet as pq

    class Copy(Stage):
        name = "copy"
        shard_size = 300

        def fingerprint(self):
            return 1

        def run(self, records, shard_index, n_shards):
            return records

    src, whole = _files(tmp_path, [1000])
    md = pq.read_metadata(src.files[0])
    assert md.num_row_groups == -(-1000 // ROW_GROUP_ROWS)
    eng = Engine(tmp_path / "work", progress=False)
    res = eng.map(Copy(), src, "x")
    meta = json.loads((res.folder / DONE).read_text())
    assert meta["rows"] == [300, 300, 300, 100]
    assert res.dataset.rows == (300, 300, 300, 100)
    assert_frame_equal(res.dataset.read(), whole)
    # a cached re-run reads the index back
    again = Engine(tmp_path / "work", progress=False).map(Copy(), src, "x")
    assert again.cached and again.dataset.rows == (300, 300, 300, 100)
    assert_frame_equal(again.dataset.read_range(550, 100), whole.slice(550, 100))


def test_row_lookup_returns_the_rows_of_the_wanted_keys(tmp_path):
    ds, whole = _files(tmp_path, [400, 400, 400])
    look = RowLookup(ds, "s")
    keys = pl.Series(["row 3", "row 3", "row 5", "row 1199", "row 401", "absent", None])
    got = look.fetch(keys, ["s", "i"]).sort("i")
    want = whole.filter(pl.col("s").is_in(keys.implode())).select("s", "i").sort("i")
    assert_frame_equal(got, want)
    assert look.fetch(pl.Series([], dtype=pl.String), ["i"]).height == 0
    # the position map is never shipped to another worker
    import pickle

    assert pickle.loads(pickle.dumps(look))._pos is None


SLIM = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


@SLIM
@given(tables())
def test_select_stage_on_a_slim_frame_equals_selection_on_the_full_frame(data):
    """The stage reads texts only for the selected rows; its tables are exactly those
    of select_tables over every response with its text (as before issue 19)."""
    resp, meta, cfg = data
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        inputs, frames = {}, []
        models = sorted(resp["model"].unique().to_list()) if resp.height else []
        for k, m in enumerate(models):
            part = resp.filter(pl.col("model") == m)
            if k == 1:  # a model whose records carry no text at all
                part = part.drop("response")
            half = part.height // 2
            files = []
            for j, chunk in enumerate((part.slice(0, half), part.slice(half))):
                f = tmp / f"{m}-{j}.parquet"
                atomic_write_parquet(chunk, f)
                files.append(f)
            inputs[f"responses:{m}"] = Dataset(tuple(files), m)
            frames.append(part)
        if not inputs:
            return
        pf = tmp / "prompts.parquet"
        atomic_write_parquet(meta, pf)
        inputs["prompts"] = Dataset((pf,), "p")
        got = SelectStage(cfg).reduce(inputs)
        want = select_tables(pl.concat(frames, how="diagonal_relaxed"), meta, cfg)
        for t in want:
            assert_frame_equal(got[t], want[t], check_dtypes=True)


def test_slim_frame_without_a_fetcher_is_an_error():
    resp = pl.DataFrame({"prompt_id": ["p"], "category": ["instruction"], "source": ["s"],
                         "model": ["a"], "response_id": ["r"], "score": [1.0],
                         "empty": [False], "h": pl.Series([1], dtype=pl.UInt64)})
    from fusedata.recipe import Selection

    with pytest.raises(ValueError, match="fetch_texts"):
        select_tables(resp, None, Selection(seed=0, split={"instruction": {"sft": 1.0}}))


def _spec(conc: int) -> ModelSpec:
    return ModelSpec.model_validate({
        "name": "m", "backend": "openai", "path": "m",
        "http": {"base_urls": ["http://a.test/v1", "http://b.test/v1"], "concurrency": conc},
        "sampling": {"max_tokens": 4, "seed": 1}, "samples": {"default": 1}})


def test_http_pools_are_bounded_per_host(monkeypatch):
    """Each server gets pools of at most POOL_CONNECTIONS connections, enough for the
    whole concurrency; every request is answered and the pools are closed."""
    made: list[httpx.AsyncClient] = []
    real = httpx.AsyncClient

    def handler(req: httpx.Request) -> httpx.Response:
        body = json.loads(req.content)
        return httpx.Response(200, json={"choices": [
            {"index": 0, "finish_reason": "stop",
             "message": {"content": f"{req.url.host} {body['seed']}"}}]})

    def client(**kw):
        kw["transport"] = httpx.MockTransport(handler)
        c = real(**kw)
        made.append((c, kw["limits"]))
        return c

    monkeypatch.setattr(httpx, "AsyncClient", client)
    s = get_sampler(_spec(20))
    s.load()
    out = s.generate([Request([{"role": "user", "content": str(i)}], 1, 0, key=f"p{i}")
                      for i in range(50)])
    assert len(out) == 50 and all(g[0].finish_reason == "stop" for g in out)
    per = openai_http.POOL_CONNECTIONS
    assert len(made) == 2 * -(-20 // per)  # 2 servers, ceil(20 / per) pools each
    assert all(lim.max_connections == per for _, lim in made)
    assert all(c.is_closed for c, _ in made)


def test_httpx_request_lines_only_when_verbose():
    lg = logging.getLogger("httpx")
    old, fd = lg.level, logging.getLogger("fusedata").level
    try:
        lg.setLevel(logging.NOTSET)
        logging.getLogger("fusedata").setLevel(logging.INFO)
        openai_http.quiet_httpx()
        assert lg.level == logging.WARNING
        lg.setLevel(logging.NOTSET)
        logging.getLogger("fusedata").setLevel(logging.DEBUG)
        openai_http.quiet_httpx()
        assert lg.level == logging.NOTSET  # --verbose keeps them
        lg.setLevel(logging.INFO)  # set by the user: left alone
        logging.getLogger("fusedata").setLevel(logging.INFO)
        openai_http.quiet_httpx()
        assert lg.level == logging.INFO
    finally:
        lg.setLevel(old)
        logging.getLogger("fusedata").setLevel(fd)
