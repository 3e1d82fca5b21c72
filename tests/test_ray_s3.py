"""A two-node Ray cluster whose only shared storage is S3 (issue 21's acceptance).

The cluster: ``ray start --head`` and a second ``ray start --address`` with its own
temp dir, 1 CPU each, both on 127.0.0.1 (see :mod:`tests.raycluster`); the store: a
real S3 server (SeaweedFS, :mod:`tests.s3server`). The demo recipe with ``work_dir``
and ``output_dir`` on ``s3://`` must give the records of a local build on local disk,
also when the worker node dies mid-stage (every process of it SIGKILLed at once, as a
machine that is lost), and a re-run must finish with no duplicate and no loss.

What the nodes share besides S3: this machine's disk, which holds the tiny models the
recipe names by path (on a real cluster each node reads a model from its own disk or
Hugging Face cache) and the installed package. Stage inputs and outputs, the score
cache and the exported files go through S3 only: the local output folder is never
created.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import pytest

from fusedata.engine import Stage, marker_name
from fusedata.storage import _fs

from . import raycluster
from .conftest import demo_recipe_dict, write_recipe
from .test_storage import s3  # noqa: F401 - the S3 server fixture

ray = pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "fusedata-test"
#: a token in the private HOME before the cluster starts (so token auth is on, as on a
#: cluster whose head once ran a local build); the driver gets it through the environment
TOKEN = "0ddba11c0ffee0ddba11c0ffee000021"


@pytest.fixture(scope="module")
def env(s3, tmp_path_factory):  # noqa: F811 - the imported fixture
    """The environment of every Ray node and driver here: a private HOME (never the
    user's ~/.ray), the S3 credentials and endpoint the usual AWS way, and this
    checkout on PYTHONPATH (nodes import the same fusedata as the tests)."""
    home = tmp_path_factory.mktemp("home")
    (home / ".ray").mkdir()
    (home / ".ray" / "auth_token").write_text(TOKEN)
    e = {k: v for k, v in os.environ.items()
         if not k.startswith("RAY_") and k != "PYTHONPATH"}
    e.update(HOME=str(home), RAY_USAGE_STATS_ENABLED="0",
             PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH"))
                                        if p))
    assert e["AWS_ENDPOINT_URL"] == s3.endpoint  # set by the s3 fixture
    yield e
    assert sorted(f.name for f in (home / ".ray").iterdir()) == ["auth_token"]
    assert (home / ".ray" / "auth_token").read_text() == TOKEN


@pytest.fixture(scope="module")
def head(env, tmp_path_factory):
    node = raycluster.start_head(tmp_path_factory.mktemp("head"), env, num_cpus=1)
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def worker(head, env):
    """A fresh second node for each test (a test may kill it).

    It joins a cluster with token auth on: ``ray start --address`` asks for a token only
    when told to (``RAY_AUTH_MODE=token``; the token from ~/.ray/auth_token here, or
    ``RAY_AUTH_TOKEN``), else the head refuses it with ``InvalidAuthToken``."""
    # its own temp dir, short: Ray's socket paths under it must fit in 107 bytes
    temp = Path(tempfile.mkdtemp(prefix="fd-ray-"))
    try:
        node = raycluster.start_worker(head, temp, {**env, "RAY_AUTH_MODE": "token"},
                                       num_cpus=1)
        try:
            yield node
        finally:
            node.stop()
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _cli(recipe: Path, env: dict[str, str], **extra_env: str) -> subprocess.Popen:
    # one torch thread, as in a Ray actor with num_cpus 1: the comparison is exact.
    # TMPDIR beside the recipe (pytest's folder): a driver these tests SIGKILL cannot
    # remove the local copy of OUT it was working in, and it must not stay in /tmp.
    tmp = recipe.parent / "driver-tmp"
    tmp.mkdir(exist_ok=True)
    e = {**env, "RAY_AUTH_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1",
         "TMPDIR": str(tmp), **extra_env}
    return subprocess.Popen([sys.executable, "-m", "fusedata.cli", "build", str(recipe),
                             "--no-progress"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=e)


def _recipe(tmp: Path, models, name: str, executor: dict, remote: bool) -> Path:
    if remote:
        d = demo_recipe_dict(models, f"s3://{BUCKET}/{name}/out",  # type: ignore[arg-type]
                             work_dir=f"s3://{BUCKET}/{name}/work")
    else:
        d = demo_recipe_dict(models, tmp / name)
    d["executor"] = {"shard_size": 4, **executor}
    return write_recipe(tmp / f"{name}.yaml", d)


def _read(files: list, get) -> pl.DataFrame:
    assert files
    return pl.concat([pl.read_parquet(get(f)) for f in sorted(files)], how="vertical_relaxed")


def _local_records(out: Path) -> dict[str, pl.DataFrame]:
    res = {t: _read(list(out.glob(f"data/{t}/*.parquet")), lambda f: f) for t in ("sft", "dpo")}
    for st in ("sample", "score", "verify"):
        res[st] = _read(list((out / ".work" / st).glob("*/shard-*.parquet")), lambda f: f)
    return res


def _s3_records(name: str) -> dict[str, pl.DataFrame]:
    fs = _fs("s3")
    fs.invalidate_cache()

    def get(key: str) -> io.BytesIO:
        return io.BytesIO(fs.cat_file(key))

    res = {t: _read(fs.glob(f"{BUCKET}/{name}/out/data/{t}/*.parquet"), get)
           for t in ("sft", "dpo")}
    for st in ("sample", "score", "verify"):
        res[st] = _read(fs.glob(f"{BUCKET}/{name}/work/{st}/*/shard-*.parquet"), get)
    return res


def _assert_same(got: dict, want: dict) -> None:
    assert got["sample"]["response_id"].is_unique().all()  # no duplicate
    for k in want:
        key = "response_id" if k in ("sample", "score", "verify") else want[k].columns[0]
        x, y = got[k].sort(key), want[k].sort(key)
        assert x.height == y.height, k  # no loss
        assert x.equals(y), k


@pytest.fixture(scope="module")
def local_ref(env, tiny_models, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("local")
    p = _cli(_recipe(tmp, tiny_models, "local", {"type": "local"}, remote=False), env)
    err = p.communicate(timeout=600)[1].decode()
    assert p.returncode == 0, err[-3000:]
    return _local_records(tmp / "local")


def _committed(name: str, model: str = "policy-a") -> int:
    fs = _fs("s3")
    fs.invalidate_cache()
    return len(fs.glob(f"{BUCKET}/{name}/work/sample/{model}-*/_COMMITTED.*"))


def _running_a_shard(node: raycluster.Node) -> bool:
    """Whether an actor of ``node`` is inside ``ShardWorker.run`` right now: Ray titles
    a worker process ``ray::ShardWorker.run`` while it runs that method (and
    ``ray::ShardWorker`` / ``ray::ShardWorker.ready`` otherwise)."""
    import psutil

    for proc in node.processes():
        try:
            if "ShardWorker.run" in " ".join(proc.cmdline()):
                return True
        except psutil.Error:
            continue
    return False


def _kill_when_busy(p: subprocess.Popen, node: raycluster.Node, name: str) -> list[int]:
    """SIGKILL every process of ``node`` while its actor runs a shard of the sample
    stage, once at least one shard is committed on S3 (so the kill lands mid-stage and
    mid-shard)."""
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None:
        if _committed(name) >= 1 and _running_a_shard(node):
            return node.kill()
        time.sleep(0.05)
    raise AssertionError("the build ended or timed out before the worker node ran an actor: "
                         + (p.stderr.read().decode()[-3000:] if p.poll() is not None else ""))


def test_two_nodes_on_s3_lose_a_node_mid_stage(head, worker, env, tiny_models, tmp_path,
                                               local_ref):
    """The build outlives its worker node: the shard that node was running goes to the
    head's actor; the records equal the local build's; a re-run is all cached."""
    rec = _recipe(tmp_path, tiny_models, "lost-node",
                  {"type": "ray", "address": head.address}, remote=True)
    p = _cli(rec, env)
    killed = _kill_when_busy(p, worker, "lost-node")
    err = p.communicate(timeout=600)[1].decode()
    assert len(killed) >= 3  # `ray start`, the raylet, the actor and the node's agents
    assert p.returncode == 0, err[-4000:]
    assert "died" in err and "goes back in the queue for the next free actor" in err, err[-4000:]
    assert TOKEN not in err
    assert not (tmp_path / "lost-node").exists()  # nothing but S3 holds the build
    _assert_same(_s3_records("lost-node"), local_ref)

    again = _cli(rec, env)
    err = again.communicate(timeout=600)[1].decode()
    assert again.returncode == 0, err[-3000:]
    for stage in ("sample[policy-a]", "sample[policy-b]", "score", "verify"):
        assert any(stage in line and "cached" in line for line in err.splitlines()), stage
    _assert_same(_s3_records("lost-node"), local_ref)


def test_two_nodes_on_s3_driver_and_node_killed_then_rerun(head, worker, env, tiny_models,
                                                          tmp_path, local_ref):
    """The worker node and the driver die together mid-stage: shards committed before
    stay (their markers prove them), a re-run on what is left of the cluster finishes
    the build, with no duplicate and no loss."""
    rec = _recipe(tmp_path, tiny_models, "lost-driver",
                  {"type": "ray", "address": head.address}, remote=True)
    p = _cli(rec, env)
    _kill_when_busy(p, worker, "lost-driver")
    p.send_signal(signal.SIGKILL)
    p.communicate(timeout=60)
    assert p.returncode == -signal.SIGKILL, "the build finished before it could be killed"
    fs = _fs("s3")
    fs.invalidate_cache()
    assert not fs.glob(f"{BUCKET}/lost-driver/out/data/**")  # nothing exported yet
    before = _committed("lost-driver")
    assert before >= 1

    again = _cli(rec, env)
    err = again.communicate(timeout=600)[1].decode()
    assert again.returncode == 0, err[-3000:]
    assert "resuming" in err
    _assert_same(_s3_records("lost-driver"), local_ref)


class Crash(Stage):
    """Doubles ``x``; the process running shard 1 dies (as in a native crash or an OOM kill)."""

    name = "crash"
    shard_size = 2

    def fingerprint(self) -> dict:
        return {}

    def run(self, records: pl.DataFrame, shard_index: int, n_shards: int) -> pl.DataFrame:
        if shard_index == 1:
            os._exit(1)
        return records.with_columns((pl.col("x") * 2).alias("y"))


_CRASH = """
import sys
from pathlib import Path
import polars as pl
from fusedata.engine import Dataset, Engine, atomic_write_parquet
from fusedata.executors import RayExecutor
from fusedata.storage import location
from tests.test_ray_s3 import Crash
src = Path(sys.argv[3]) / "in.parquet"
atomic_write_parquet(pl.DataFrame({"x": list(range(8))}), src)
ex = RayExecutor(sys.argv[1])
ex.reprobe_s = 0.5
try:
    Engine(work=location(sys.argv[2]), progress=False, executor=ex).map(
        Crash(), Dataset((src,), "in-8"), "t")
finally:
    ex.close()
"""


def test_a_shard_that_kills_every_actor_fails_the_stage(head, env, tmp_path):
    """Ray restarts the actor each time; after ``max_shard_attempts`` deaths on the same
    shard the stage fails, naming the shard, instead of looping forever; the shards
    that could be computed are committed on S3 and stay."""
    url = f"s3://{BUCKET}/crash"
    p = subprocess.Popen([sys.executable, "-c", _CRASH, head.address, url, str(tmp_path)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         # the script imports ray (through this module) before fusedata
                         # could turn token mode on from RAY_AUTH_TOKEN: set it here
                         env={**env, "RAY_AUTH_TOKEN": TOKEN, "RAY_AUTH_MODE": "token"})
    err = p.communicate(timeout=300)[1].decode()
    assert p.returncode != 0
    assert "crash[t]: shard 1 lost its Ray actor 4 times" in err, err[-3000:]
    fs = _fs("s3")
    fs.invalidate_cache()
    done = sorted(k.rsplit("/", 1)[-1] for k in fs.glob(f"{BUCKET}/crash/crash/*/_COMMITTED.*"))
    assert done == [marker_name(i) for i in (0, 2, 3)]
