"""Shards: what a map stage is told, the shard size the recipe sets per stage, and resuming."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from fusedata.build import shard_size
from fusedata.engine import SHARDING, Dataset, Engine, Stage, atomic_write_parquet
from fusedata.executors import Executor, LocalExecutor, RayExecutor, ShardWork
from fusedata.recipe import Recipe

from .conftest import demo_recipe_dict


class Tag(Stage):
    """Adds the shard index and count it was called with to every row."""

    name = "tag"
    shard_size = 4

    def __init__(self, fail_at: int | None = None, shard_size: int | None = None):
        self.fail_at = fail_at
        if shard_size is not None:
            self.shard_size = shard_size

    def fingerprint(self) -> Any:
        return {}

    def run(self, records: pl.DataFrame, shard_index: int, n_shards: int) -> pl.DataFrame:
        if shard_index == self.fail_at:
            raise RuntimeError("killed")
        return records.with_columns(pl.lit(shard_index).alias("shard_index"),
                                    pl.lit(n_shards).alias("n_shards"))


def _input(tmp: Path, n: int) -> Dataset:
    path = tmp / "in.parquet"
    atomic_write_parquet(pl.DataFrame({"x": list(range(n))}), path)
    return Dataset((path,), f"in-{n}")


def test_run_gets_shard_index_and_count(tmp_path):
    res = Engine(work=tmp_path / "w", progress=False).map(Tag(), _input(tmp_path, 10), "t")
    out = res.dataset.read().sort("x")
    assert out["shard_index"].to_list() == [0] * 4 + [1] * 4 + [2] * 2
    assert set(out["n_shards"].to_list()) == {3}
    assert len(list(res.folder.glob("shard-*.parquet"))) == 3


def test_constructor_shard_size_overrides_class_default(tmp_path):
    res = Engine(work=tmp_path / "w", progress=False).map(Tag(shard_size=5),
                                                          _input(tmp_path, 10), "t")
    assert res.dataset.read()["n_shards"].unique().to_list() == [2]


def test_resume_keeps_the_interrupted_runs_shard_size(tmp_path, caplog):
    inp = _input(tmp_path, 10)
    eng = Engine(work=tmp_path / "w", progress=False)
    with pytest.raises(RuntimeError, match="killed"):
        eng.map(Tag(fail_at=2, shard_size=3), inp, "t")  # shards 0, 1 committed (rows 0-5)
    caplog.set_level("INFO", logger="fusedata")
    res = eng.map(Tag(shard_size=4), inp, "t")  # same key: the size is not part of it
    out = res.dataset.read()
    assert sorted(out["x"].to_list()) == list(range(10))  # no row twice, none missing
    assert set(out["n_shards"].to_list()) == {4}  # ceil(10 / 3): the old size
    assert "resuming with shard size 3" in caplog.text
    assert (res.folder / SHARDING).exists()


class Recording(Executor):
    """A custom executor through the one interface: runs shards in reverse order."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def map_shards(self, plan: ShardWork, on_done: Callable[[int], object]) -> None:
        plan.stage.setup()
        try:
            for i in reversed(plan.pending):
                self.seen.append(i)
                on_done(plan.run_shard(i))
        finally:
            plan.stage.teardown()


def test_any_executor_gives_the_local_result(tmp_path):
    inp = _input(tmp_path, 9)
    ref = Engine(work=tmp_path / "a", progress=False, executor=LocalExecutor()).map(
        Tag(), inp, "t").dataset.read().sort("x")
    ex = Recording()
    got = Engine(work=tmp_path / "b", progress=False, executor=ex).map(
        Tag(), inp, "t").dataset.read().sort("x")
    assert ex.seen == [2, 1, 0]
    assert got.equals(ref)
    assert issubclass(RayExecutor, Executor)


def _recipe(tmp_path: Path, tiny_models, size: Any) -> Recipe:
    d = demo_recipe_dict(tiny_models, tmp_path / "out")
    d["executor"] = {} if size is None else {"shard_size": size}
    return Recipe.model_validate(d)


def test_recipe_shard_size_per_stage(tmp_path, tiny_models):
    one = _recipe(tmp_path, tiny_models, 7)
    assert [shard_size(one, s) for s in ("sample", "score", "verify")] == [7, 7, 7]
    per = _recipe(tmp_path, tiny_models, {"score": 5})
    assert [shard_size(per, s) for s in ("sample", "score", "verify")] == [None, 5, None]
    assert shard_size(_recipe(tmp_path, tiny_models, None), "verify") is None
    with pytest.raises(ValueError, match="shard_size"):
        _recipe(tmp_path, tiny_models, {"select": 5})
    with pytest.raises(ValueError, match="shard_size"):
        _recipe(tmp_path, tiny_models, 0)


def test_build_cuts_each_stage_by_its_recipe_shard_size(tmp_path, tiny_models):
    from fusedata.build import build

    from .conftest import write_recipe

    d = demo_recipe_dict(tiny_models, tmp_path / "out")
    d["models"] = d["models"][:1]
    d["executor"] = {"shard_size": {"sample": 3, "score": 5}}
    path = write_recipe(tmp_path / "r.yaml", d)
    res = build(Recipe.model_validate(d), path, progress=False)
    work = res.out_dir / ".work"
    for stage, size in (("sample", 3), ("score", 5), ("verify", 512)):
        (folder,) = list((work / stage).iterdir())
        meta = json.loads((folder / "_DONE.json").read_text())
        n_in = meta["rows_in"]
        assert len(meta["files"]) == max(1, -(-n_in // size)), stage
        assert n_in > size or stage == "verify"
