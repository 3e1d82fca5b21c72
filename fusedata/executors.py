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


#: environment variables Ray reads for token authentication (Ray >= 2.52)
RAY_AUTH_ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


def ray_token_file() -> Path:
    """The token file Ray reads: ``$RAY_AUTH_TOKEN_PATH``, else ``~/.ray/auth_token``."""
    return Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")


def enable_ray_token_auth_from_env() -> bool:
    """Turn Ray's token mode on when this process was given a token; True if it is on.

    Ray enables token auth by itself only when it starts a cluster or finds a local
    one; connecting to an explicit ``--address`` never does, even with
    ``RAY_AUTH_TOKEN`` set, and then fails with ``InvalidAuthToken``. A token given
    through the environment (``RAY_AUTH_TOKEN`` or ``RAY_AUTH_TOKEN_PATH``) is a
    clear request for token auth, so it sets ``RAY_AUTH_MODE=token`` unless the
    user set a mode. Must run before Ray is imported: Ray reads its config then.
    The token itself never leaves the environment (not in the recipe, not logged).
    """
    if "RAY_AUTH_MODE" not in os.environ and (
            os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")):
        os.environ["RAY_AUTH_MODE"] = "token"
    return os.environ.get("RAY_AUTH_MODE", "").lower() == "token"


def ray_auth_help(address: str | None, refused: bool = False) -> str:
    """What to do when connecting to ``address`` fails, maybe for want of a token.

    ``refused``: Ray said the token was missing or wrong (an ``AuthenticationError``
    behind its ``ConnectionError``). Names the token file (whether it exists) and
    the variables, never a token.
    """
    f = ray_token_file()
    mode = os.environ.get("RAY_AUTH_MODE") or "unset"
    given = "set" if os.environ.get("RAY_AUTH_TOKEN") else "unset"
    why = ("The cluster refused this process's token (InvalidAuthToken): it"
           if refused else "If Ray's log above says 'InvalidAuthToken', the cluster")
    return (f"could not connect to the Ray cluster at {address or 'a local instance'}. "
            f"{why} uses token authentication (`ray start --head` turns it on when "
            "~/.ray/auth_token exists on the head node, e.g. written by an earlier local "
            "`fusedata build --executor ray` without --address): give this process the "
            "cluster's token through the environment, RAY_AUTH_TOKEN=<token> or "
            "RAY_AUTH_TOKEN_PATH=<file> (fusedata then sets RAY_AUTH_MODE=token), or "
            "start the cluster with RAY_AUTH_MODE=disabled. Here: RAY_AUTH_MODE="
            f"{mode}, RAY_AUTH_TOKEN {given}, token file {f} "
            f"({'exists' if f.is_file() else 'missing'}).")


def _auth_refused(e: BaseException | None, auth_error: type) -> bool:
    """Whether Ray's connection error comes from a refused token, anywhere in its chain."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, auth_error) or "InvalidAuthToken" in str(e):
            return True
        e = e.__cause__ or e.__context__
    return False


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
        enable_ray_token_auth_from_env()
        ray = import_ray()
        self.ray = ray
        self.resources = resources or {}
        self.owns_connection = False
        if not ray.is_initialized():
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
            except (ConnectionError, ray.exceptions.AuthenticationError) as e:
                # Ray's own message says only "Failed to connect" (the auth failure
                # is in its C++ log lines): say which token and variables matter.
                refused = _auth_refused(e, ray.exceptions.AuthenticationError)
                raise RuntimeError(f"executor 'ray': {ray_auth_help(address, refused)} "
                                   f"(Ray: {type(e).__name__}: {e})") from e
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
