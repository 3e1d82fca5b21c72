"""`executor: ray` on a local Ray cluster: same records as local, survives worker/driver kills."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from . import raycluster
from .conftest import demo_recipe_dict, write_recipe

ray = pytest.importorskip("ray")

_HEAD: dict[str, subprocess.Popen] = {}  # address -> the `ray start --block` we own


#: a token that the private HOME holds before any test runs (invented, like a user's)
TOKEN = "f00dfeedf00dfeedf00dfeedf00dfeed"
_ENV: dict[str, str] = {}  # the environment every Ray process of these tests gets


def _snapshot(d: Path) -> dict[str, tuple[bytes, int]]:
    return {str(f.relative_to(d)): (f.read_bytes(), f.stat().st_mtime_ns)
            for f in sorted(d.rglob("*")) if f.is_file()}


@pytest.fixture(scope="module", autouse=True)
def ray_home(tmp_path_factory):
    """A private ``HOME`` whose ``~/.ray/auth_token`` exists before anything starts.

    That is the state one ``fusedata build --executor ray`` without ``--address``
    leaves behind (Ray 2.5x writes the token then), and it makes ``ray start --head``
    turn token authentication on. These tests run every Ray process with this HOME,
    never the user's, and check at the end that ``~/.ray`` is as they found it.
    """
    home = tmp_path_factory.mktemp("home")
    (home / ".ray").mkdir()
    (home / ".ray" / "auth_token").write_text(TOKEN)
    before = _snapshot(home / ".ray")
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS")}
    _ENV.clear()
    _ENV.update(env, HOME=str(home), RAY_USAGE_STATS_ENABLED="0")
    yield home
    assert _snapshot(home / ".ray") == before, "the Ray tests changed ~/.ray"


_tree = raycluster.tree


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A private ``ray start --head --block`` on 127.0.0.1 with 2 CPUs, owned by this fixture.

    ``--block`` keeps the starting process alive and makes it shut its own Ray processes
    down when terminated, so teardown stops exactly this cluster: never ``ray stop`` (it
    stops every Ray instance on the machine, also other users'), never a match on names.
    """
    node = raycluster.start_head(tmp_path_factory.mktemp("ray"), dict(_ENV), num_cpus=2)
    _HEAD[node.address] = node.proc
    try:
        yield node.address
    finally:
        node.stop()


def _recipe(tmp: Path, models, name: str, executor: dict) -> Path:
    d = demo_recipe_dict(models, tmp / name)
    d["executor"] = {"shard_size": 4, **executor}
    return write_recipe(tmp / f"{name}.yaml", d)


def _cli(recipe: Path, *extra: str, auth: dict[str, str] | None = None) -> subprocess.Popen:
    """``fusedata build`` in a child with the private HOME and ``auth`` (default: the
    token file through ``RAY_AUTH_TOKEN_PATH``)."""
    # One torch thread, as in a Ray actor with num_cpus 1: CPU matmuls of the small
    # score batches (shards of 4 responses) differ in the last bits between thread
    # counts, and the comparison below is exact.
    if auth is None:
        auth = {"RAY_AUTH_TOKEN_PATH": str(Path(_ENV["HOME"]) / ".ray" / "auth_token")}
    env = {**_ENV, **auth, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "fusedata.cli", "build", str(recipe),
                             "--no-progress", *extra], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env)


def _records(out: Path) -> dict[str, pl.DataFrame]:
    res = {t: pl.read_parquet(sorted(out.glob(f"{t}/*.parquet")) or
                              sorted(out.glob(f"data/{t}/*.parquet"))) for t in ("sft", "dpo")}
    for st in ("sample", "score", "verify"):
        res[st] = pl.read_parquet(sorted((out / ".work" / st).glob("*/shard-*.parquet")))
    return res


def _assert_same(a: dict, b: dict) -> None:
    for k in a:
        x = a[k].sort(a[k].columns[0]) if k in ("sft", "dpo") else a[k].sort("response_id")
        y = b[k].sort(b[k].columns[0]) if k in ("sft", "dpo") else b[k].sort("response_id")
        assert x.equals(y), k


@pytest.fixture(scope="module")
def local_ref(tiny_models, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("local")
    p = _cli(_recipe(tmp, tiny_models, "local", {"type": "local"}))
    assert p.wait(timeout=300) == 0, p.stderr.read().decode()[-2000:]
    return _records(tmp / "local")


def test_ray_build_equals_local(cluster, tiny_models, tmp_path, local_ref):
    rec = _recipe(tmp_path, tiny_models, "ray", {"type": "local"})
    # the token as a value in the environment this time (RAY_AUTH_TOKEN)
    p = _cli(rec, "--executor", "ray", "--address", cluster, auth={"RAY_AUTH_TOKEN": TOKEN})
    err = p.communicate(timeout=300)[1].decode()
    assert p.returncode == 0, err[-3000:]
    assert "Ray actor" in err
    assert TOKEN not in err
    got = _records(tmp_path / "ray")
    assert got["sample"]["response_id"].is_unique().all()
    _assert_same(got, local_ref)


def test_ray_worker_killed_mid_stage(cluster, tiny_models, tmp_path, local_ref):
    import psutil

    rec = _recipe(tmp_path, tiny_models, "wk", {"type": "ray", "address": cluster})
    p = _cli(rec)
    sample = tmp_path / "wk" / ".work" / "sample"
    killed = None
    deadline = time.time() + 240
    while time.time() < deadline and p.poll() is None and killed is None:
        if list(sample.glob("policy-a-*/shard-*.parquet")):
            # only among the processes of our own cluster (see ``cluster``)
            for proc in _tree(_HEAD[cluster].pid):
                try:
                    title = " ".join(proc.cmdline())
                except psutil.Error:
                    continue
                if "ShardWorker" in title:
                    proc.kill()
                    killed = proc.pid
                    break
        time.sleep(0.02)
    err = p.communicate(timeout=300)[1].decode()
    assert killed is not None, "no Ray worker was found to kill"
    assert p.returncode == 0, err[-3000:]
    got = _records(tmp_path / "wk")
    assert got["sample"]["response_id"].is_unique().all()
    _assert_same(got, local_ref)


def test_ray_driver_killed_then_restarted(cluster, tiny_models, tmp_path, local_ref):
    rec = _recipe(tmp_path, tiny_models, "dk", {"type": "ray", "address": cluster})
    p = _cli(rec)
    sample = tmp_path / "dk" / ".work" / "sample"
    deadline = time.time() + 240
    while time.time() < deadline and p.poll() is None:
        if len(list(sample.glob("policy-a-*/shard-*.parquet"))) >= 2:
            p.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    p.wait(timeout=60)
    assert p.returncode == -signal.SIGKILL, "driver finished before it could be killed"
    p = _cli(rec)
    err = p.communicate(timeout=300)[1].decode()
    assert p.returncode == 0, err[-3000:]
    assert "resuming" in err
    _assert_same(_records(tmp_path / "dk"), local_ref)


def test_ray_cluster_needs_the_token(cluster, tiny_models, tmp_path, ray_home):
    """The token file exists but nothing asks for token auth: Ray connects without a
    token and the cluster refuses; the error names the file and the variables."""
    rec = _recipe(tmp_path, tiny_models, "noauth", {"type": "ray", "address": cluster})
    p = _cli(rec, auth={})
    err = p.communicate(timeout=300)[1].decode()
    assert p.returncode != 0
    msg = err[err.index("could not connect to the Ray cluster"):]
    assert "The cluster refused this process's token (InvalidAuthToken)" in msg
    assert cluster in msg and "RAY_AUTH_TOKEN=<token>" in msg and "RAY_AUTH_TOKEN_PATH" in msg
    assert f"{ray_home / '.ray' / 'auth_token'} (exists)" in msg
    assert TOKEN not in err
    assert not (tmp_path / "noauth" / ".work" / "sample").exists()


def test_ray_home_left_as_found(ray_home):
    """Runs after the cluster tests: every Ray process above used this HOME; its ~/.ray holds exactly the
    token written first, unchanged (the fixture checks again after the cluster stops)."""
    assert [f.name for f in (ray_home / ".ray").rglob("*")] == ["auth_token"]
    assert (ray_home / ".ray" / "auth_token").read_text() == TOKEN


def test_token_from_env_turns_token_mode_on(monkeypatch, tmp_path):
    """Unit check of the rule the cluster tests rely on (no Ray process started)."""
    from fusedata.executors import enable_ray_token_auth_from_env, ray_auth_help

    for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert not enable_ray_token_auth_from_env()  # no token given: Ray's default stays
    assert "RAY_AUTH_MODE" not in os.environ
    monkeypatch.setenv("RAY_AUTH_TOKEN", TOKEN)
    assert enable_ray_token_auth_from_env() and os.environ["RAY_AUTH_MODE"] == "token"
    msg = ray_auth_help("10.0.0.1:6379")
    assert TOKEN not in msg and "RAY_AUTH_TOKEN set" in msg
    assert f"{tmp_path / '.ray' / 'auth_token'} (missing)" in msg
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # an explicit mode is respected
    assert not enable_ray_token_auth_from_env() and os.environ["RAY_AUTH_MODE"] == "disabled"
    monkeypatch.delenv("RAY_AUTH_TOKEN")
    monkeypatch.delenv("RAY_AUTH_MODE")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "tok"))
    assert enable_ray_token_auth_from_env()
    assert f"{tmp_path / 'tok'} (missing)" in ray_auth_help(None)
