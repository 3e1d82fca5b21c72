"""Executors decide *where* the shards of a map stage run; stages don't know.

:class:`Executor` is the one interface: ``map_shards(plan, on_done)`` runs every
pending shard of one stage (``plan``, a :class:`ShardWork` built by
:meth:`fusedata.engine.Engine.map`) and calls ``on_done(rows)`` as each one is
committed; ``close()`` frees what the executor holds.

* ``local`` (:class:`LocalExecutor`): one after another in this process.
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
input and the shard size, and nothing is seeded from a shard's index or the
worker that runs it (see :mod:`fusedata.engine`).

This module imports no other fusedata module, so the engine can depend on it
without a cycle; it sees stages through :class:`ShardWork`.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

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


class StageHooks(Protocol):
    """The part of a stage an executor calls (:class:`fusedata.engine.Stage`)."""

    name: str

    def setup(self) -> None: ...

    def teardown(self) -> None: ...


class ShardWork(Protocol):
    """The pending shards of one stage (:class:`fusedata.engine.ShardPlan`)."""

    @property
    def stage(self) -> StageHooks: ...

    @property
    def pending(self) -> tuple[int, ...]: ...

    @property
    def n_rows(self) -> int: ...

    @property
    def label(self) -> str: ...

    @property
    def folder(self) -> Path: ...

    def run_shard(self, i: int) -> int:
        """Compute and commit shard ``i`` (idempotent); returns its input rows."""
        ...

    def is_committed(self, i: int) -> bool: ...


class Executor(ABC):
    """Where the shards of a map stage run (see the module docstring)."""

    @abstractmethod
    def map_shards(self, plan: ShardWork, on_done: Callable[[int], object]) -> None:
        """Run every shard in ``plan.pending``; ``on_done(rows)`` after each commit.

        ``plan.stage.setup()`` must run (once per process that computes shards)
        before the first shard when ``plan.n_rows`` > 0, and ``teardown()`` after
        the last.  Returns when all pending shards are committed; raises the
        stage's error otherwise.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the executor holds (a cluster connection)."""


class LocalExecutor(Executor):
    """Runs pending shards one after another in this process (the default)."""

    def map_shards(self, plan: ShardWork, on_done: Callable[[int], object]) -> None:
        stage = plan.stage
        started = False
        try:
            for i in plan.pending:
                if not started and plan.n_rows:
                    stage.setup()
                    started = True
                on_done(plan.run_shard(i))
        finally:
            if started:
                stage.teardown()


class ShardWorker:
    """A Ray actor: one replica of a stage (its model loaded once), running shards on demand."""

    def __init__(self, plan: ShardWork):
        self.plan = plan
        self.ready = False

    def run(self, i: int) -> int:
        p = self.plan
        if not self.ready and p.n_rows:
            p.stage.setup()
            self.ready = True
        return p.run_shard(i)

    def pid(self) -> int:
        return os.getpid()

    def close(self) -> None:
        if self.ready:
            self.plan.stage.teardown()
            self.ready = False


class RayExecutor(Executor):
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

    def map_shards(self, plan: ShardWork, on_done: Callable[[int], object]) -> None:
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
        missing = [i for i in plan.pending if not plan.is_committed(i)]
        if missing:
            raise RuntimeError(f"{plan.label}: shards {missing[:5]} were not committed; "
                               "is the work dir on a filesystem all Ray nodes share?")

    def close(self) -> None:
        if self.owns_connection:
            self.ray.shutdown()


def get_executor(kind: str, address: str | None = None,
                 resources: dict[str, dict[str, float]] | None = None) -> Executor:
    """The executor a recipe's ``executor`` section asks for (``type``, ``address``, ``resources``)."""
    if kind == "local":
        return LocalExecutor()
    if kind == "ray":
        return RayExecutor(address, resources)
    raise ValueError(f"executor.type: unknown executor {kind!r}")
