"""Executors decide *where* the shards of a stage run; stages don't know.

* ``local`` (:class:`fusedata.engine.LocalExecutor`): one after another in
  this process.
* ``ray`` (:class:`RayExecutor`, ``pip install 'fusedata[ray]'``): shards of a
  map stage go to a pool of Ray actors, each holding one replica of the
  stage's model (loaded once per actor) with the resources the recipe asks for
  (``executor.resources.<stage>: {num_gpus: 4, num_cpus: 8, replicas: 2}``).
  Workers commit finished shards straight into the same content-addressed
  store (a filesystem every node sees), so:

  - a worker that dies is restarted by Ray and its in-flight shard retried;
    a shard already committed is never recomputed (idempotent commit);
  - a driver that dies loses nothing committed: re-running the build skips
    finished shards, exactly like the local executor.

  Whole-table stages (prompts, select, export) stay on the driver: they are
  polars work measured in seconds.

The records are identical to a local run: shard boundaries depend only on the
input, and every shard is seeded from its own content.
"""

from __future__ import annotations

import logging
from typing import Any

from .engine import LocalExecutor, ShardPlan, run_shard
from .recipe import Executor

log = logging.getLogger("fusedata")

#: default actor resources per stage when the recipe gives none
DEFAULT_RESOURCES: dict[str, dict[str, float]] = {
    "sample": {"num_cpus": 1, "num_gpus": 0, "replicas": 2},
    "score": {"num_cpus": 1, "num_gpus": 0, "replicas": 2},
    "verify": {"num_cpus": 1, "num_gpus": 0, "replicas": 2},
}


def import_ray() -> Any:
    try:
        import ray
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError("executor 'ray' needs Ray: pip install 'fusedata[ray]'") from e
    return ray


class ShardWorker:
    """A Ray actor: one replica of a stage (its model loaded once), running shards on demand."""

    def __init__(self, plan: ShardPlan):
        self.plan = plan
        self.ready = False

    def run(self, i: int) -> int:
        p = self.plan
        if not self.ready and p.n_rows:
            p.stage.setup()
            self.ready = True
        return run_shard(p.stage, p.inputs, i, p.size, p.n_shards, p.folder)

    def pid(self) -> int:
        import os

        return os.getpid()

    def close(self) -> None:
        if self.ready:
            self.plan.stage.teardown()
            self.ready = False


class RayExecutor:
    """Runs map-stage shards on a Ray cluster (see the module docstring)."""

    def __init__(self, address: str | None = None,
                 resources: dict[str, dict[str, float]] | None = None):
        ray = import_ray()
        self.ray = ray
        self.resources = resources or {}
        self.owns_connection = False
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
            self.owns_connection = True
        #: live actors of the stage being run (tests kill one to check recovery)
        self.actors: list[Any] = []

    def stage_resources(self, stage: str) -> tuple[dict[str, float], int]:
        res = {**DEFAULT_RESOURCES.get(stage, {"num_cpus": 1, "replicas": 1}),
               **self.resources.get(stage, {})}
        replicas = int(res.pop("replicas", 1))
        return res, max(1, replicas)

    def map_shards(self, plan: ShardPlan, on_done: Any) -> None:
        ray = self.ray
        res, replicas = self.stage_resources(plan.stage.name)
        actor_cls = ray.remote(ShardWorker).options(
            num_cpus=res.get("num_cpus", 1), num_gpus=res.get("num_gpus", 0),
            max_restarts=-1, max_task_retries=-1,
        )
        todo = list(plan.pending)
        n_actors = min(replicas, len(todo))
        log.info("%s: %d shards on %d Ray actor(s) %s", plan.label, len(todo), n_actors, res)
        self.actors = [actor_cls.remote(plan) for _ in range(n_actors)]
        in_flight: dict[Any, tuple[int, Any]] = {}
        try:
            for a in self.actors:
                if todo:
                    i = todo.pop(0)
                    in_flight[a.run.remote(i)] = (i, a)
            while in_flight:
                done, _ = ray.wait(list(in_flight), num_returns=1)
                ref = done[0]
                i, actor = in_flight.pop(ref)
                on_done(ray.get(ref))  # raises the stage's own error, with its traceback
                if todo:
                    j = todo.pop(0)
                    in_flight[actor.run.remote(j)] = (j, actor)
        finally:
            for a in self.actors:
                try:
                    ray.get(a.close.remote(), timeout=60)
                except Exception:  # noqa: BLE001 - best effort: the actor is killed next
                    pass
                ray.kill(a)
            self.actors = []
        missing = [i for i in plan.pending if not (plan.folder / f"shard-{i:05d}.parquet").exists()]
        if missing:
            raise RuntimeError(f"{plan.label}: shards {missing[:5]} were not committed; "
                               "is the work dir on a filesystem all Ray nodes share?")

    def close(self) -> None:
        if self.owns_connection:
            self.ray.shutdown()


def get_executor(cfg: Executor) -> Any:
    if cfg.type == "local":
        return LocalExecutor()
    if cfg.type == "ray":
        return RayExecutor(cfg.address, cfg.resources)
    raise ValueError(f"executor.type: unknown executor {cfg.type!r}")
