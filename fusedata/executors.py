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
  Workers read their shard inputs from, and commit finished shards straight into,
  the same content-addressed store: a filesystem every node sees or an object
  store URL (``s3://...``, see :mod:`fusedata.storage`), so:

  - a worker that dies (its process, or its whole node) is restarted by Ray where
    there is room, and its in-flight shard goes to the next free actor; a shard
    already committed is never recomputed (idempotent commit);
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
import sys
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
        self.loaded = False

    def ready(self) -> int:
        """Load the stage (once per actor process); the driver hands out shards only
        to actors that answered this, so an actor Ray cannot place never holds one."""
        if not self.loaded and self.plan.n_rows:
            self.plan.stage.setup()
            self.loaded = True
        return os.getpid()

    def run(self, i: int) -> int:
        self.ready()
        return self.plan.run_shard(i)

    def close(self) -> None:
        if self.loaded:
            self.plan.stage.teardown()
            self.loaded = False


class RayExecutor(Executor):
    """Runs map-stage shards on a Ray cluster (see the module docstring)."""

    #: a shard whose actor died this many times (its process or its node) fails the stage:
    #: a shard that kills every process that runs it must not loop forever
    max_shard_attempts: int = 4
    #: seconds between two "is this actor back?" calls to an actor Ray is restarting
    reprobe_s: float = 2.0
    #: seconds of waiting without news after which the driver says what it waits for
    quiet_s: float = 60.0

    def __init__(self, address: str | None = None,
                 resources: dict[str, dict[str, float]] | None = None):
        mode_before = os.environ.get("RAY_AUTH_MODE")
        late = "ray" in sys.modules  # Ray read its config at import: too late to set the mode
        enable_ray_token_auth_from_env()
        late = late and os.environ.get("RAY_AUTH_MODE") != mode_before
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
                why = ray_auth_help(address, refused)
                if late:
                    why += (" Ray was imported before fusedata set RAY_AUTH_MODE=token, so "
                            "Ray did not see it: set RAY_AUTH_MODE=token in the environment "
                            "before starting Python.")
                raise RuntimeError(f"executor 'ray': {why} "
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
        """Hand shards to actors as they become free; survive actors and nodes dying.

        Actors are created with ``max_restarts=-1`` (Ray restarts one whose process or
        node died, wherever there is room) and ``max_task_retries=0``: a shard whose
        actor died comes back to this loop at once as a ``RayActorError`` (Ray would
        otherwise queue the retry on that same actor, which may never be placed again:
        after a node is lost, the remaining nodes' CPUs are held by the other actors of
        the stage, and the build would hang).  Such a shard goes back to the end of
        the queue for the next free actor (one that kills every actor fails the stage
        only after the other shards are done); it may have been committed before the death,
        and then ``run_shard`` skips it (the commit is idempotent).  An actor gets
        shards only once it answered :meth:`ShardWorker.ready`, so one waiting for
        resources holds none; the stage ends when every shard is committed, whatever
        such actors are doing.
        """
        import collections
        import time

        ray = self.ray
        res, replicas = self.stage_resources(plan.stage.name)
        actor_cls = ray.remote(ShardWorker).options(
            num_cpus=res.get("num_cpus", 1), num_gpus=res.get("num_gpus", 0),
            max_restarts=-1, max_task_retries=0,
        )
        todo = collections.deque(plan.pending)
        n_actors = min(replicas, len(todo))
        log.info("%s: %d shards on %d Ray actor(s) %s", plan.label, len(todo), n_actors, res)
        self.actors = [actor_cls.remote(plan) for _ in range(n_actors)]
        probing: dict[Any, int] = {a.ready.remote(): k for k, a in enumerate(self.actors)}
        reprobe: dict[int, float] = {}  # actor -> when to ask again whether it is back
        idle: list[int] = []
        in_flight: dict[Any, tuple[int, int]] = {}  # ref -> (shard, actor)
        deaths: collections.Counter[int] = collections.Counter()
        quiet_since = time.monotonic()
        try:
            while todo or in_flight:
                now = time.monotonic()
                for k in [k for k, t in reprobe.items() if t <= now]:
                    del reprobe[k]
                    probing[self.actors[k].ready.remote()] = k
                while idle and todo:
                    k = idle.pop(0)
                    i = todo.popleft()
                    in_flight[self.actors[k].run.remote(i)] = (i, k)
                timeout = max(0.05, min([self.quiet_s, *(t - now for t in reprobe.values())]))
                waiting = [*in_flight, *probing]
                if waiting:
                    done, _ = ray.wait(waiting, num_returns=1, timeout=timeout)
                else:  # every actor is between two probes
                    time.sleep(timeout)
                    done = []
                if not done:
                    if time.monotonic() - quiet_since > self.quiet_s:
                        log.warning("%s: %d shard(s) left, %d running; waiting for Ray to "
                                    "place or restart %d actor(s) (each needs %s)",
                                    plan.label, len(todo), len(in_flight),
                                    len(probing) + len(reprobe), res)
                        quiet_since = time.monotonic()
                    continue
                quiet_since = time.monotonic()
                ref = done[0]
                if ref in probing:
                    k = probing.pop(ref)
                    try:
                        ray.get(ref)
                        idle.append(k)
                    except ray.exceptions.RayActorError:
                        reprobe[k] = time.monotonic() + self.reprobe_s
                    continue
                i, k = in_flight.pop(ref)
                try:
                    rows = ray.get(ref)  # raises the stage's own error, with its traceback
                except ray.exceptions.RayActorError as e:
                    deaths[i] += 1
                    if deaths[i] >= self.max_shard_attempts:
                        raise RuntimeError(
                            f"{plan.label}: shard {i} lost its Ray actor {deaths[i]} times "
                            "(the process or its node died each time: out of memory? a "
                            f"crash in native code?); last error: {type(e).__name__}: "
                            f"{str(e)[:500]}") from e
                    log.warning("%s: the Ray actor running shard %d died (%s); the shard "
                                "goes back in the queue for the next free actor", plan.label, i,
                                type(e).__name__)
                    todo.append(i)  # last: a shard that kills its actor holds no other back
                    reprobe[k] = time.monotonic() + self.reprobe_s
                    continue
                on_done(rows)
                idle.append(k)
        finally:
            self._stop_actors(idle)
        missing = [i for i in plan.pending if not plan.is_committed(i)]
        if missing:
            raise RuntimeError(f"{plan.label}: shards {missing[:5]} were not committed; "
                               "is the work dir on a filesystem all Ray nodes share?")

    def _stop_actors(self, ready: list[int]) -> None:
        """Let the actors known to be up free their stage (``teardown``), then kill all.

        Only those: one Ray is still placing or restarting would hold the call forever."""
        ray = self.ray
        closing = [self.actors[k].close.remote() for k in ready]
        if closing:
            try:
                ray.wait(closing, num_returns=len(closing), timeout=60)
            except Exception:  # noqa: BLE001 - best effort: the actors are killed next
                pass
        for a in self.actors:
            try:
                ray.kill(a)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.actors = []

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
