"""Runner side: a pool of warm worker processes, job validation and the public entry points.

The runner itself never executes untrusted code.  It starts each worker as a fresh
interpreter with an *empty* environment (so tokens in our environment never reach the memory
the jobs are forked from), feeds it one job at a time and restarts it if it ever dies.
"""

from __future__ import annotations

import os
import queue
import random
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sandbox import _compare, _leetcode, _worker
from sandbox._procs import Proc
from sandbox._split import split_job

VERDICTS = ("passed", "failed", "timeout", "memory", "syntax_error", "static_error",
            "sandbox_error")
MAX_TIMEOUT_S = 600.0
DEFAULTS: dict[str, Any] = {
    "timeout_s": 10.0,  # wall clock per job; CPU limit is ceil(timeout)+1 s per process
    "memory_mb": 1024,  # RLIMIT_AS per process
    "nproc": 64,  # processes + threads of the job (RLIMIT_NPROC on its private uid)
    "file_mb": 64,  # RLIMIT_FSIZE
    "disk_mb": 128,  # size of the job's private tmpfs
    "output_cap": 1 << 20,  # bytes of stdout and of stderr kept; the rest is discarded
    "cgroup_mb": 2048,  # memory of all of a job's processes together (cgroup v1, if available)
}
_PKG_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); "
         "from sandbox._worker import main; main()")


class SandboxUnavailableError(RuntimeError):
    """Isolation was requested but this host cannot provide it."""


GUIDANCE = (
    "The sandbox needs Linux, root (or CAP_SYS_ADMIN + CAP_SETUID/SETGID) and permission to "
    "create mount, network, PID, IPC and UTS namespaces. In Docker run with --privileged or "
    "--cap-add SYS_ADMIN --security-opt seccomp=unconfined --security-opt apparmor=unconfined; "
    "on hosts with kernel.unprivileged_userns_clone=0 run as root. For trusted local debugging "
    "only, pass isolation=False / --no-isolation (runs code WITHOUT a sandbox)."
)


def validate_job(job: Any) -> str | None:
    """Return a description of what is wrong with ``job``, or None when it is well formed."""
    if not isinstance(job, dict):
        return f"job must be a JSON object, got {type(job).__name__}"
    if "__malformed__" in job:  # set by the CLI for lines that are not JSON
        return str(job["__malformed__"])
    if "id" not in job:
        return "missing 'id'"
    if not isinstance(job["id"], (str, int)) or isinstance(job["id"], bool):
        return "'id' must be a string or integer"
    if not isinstance(job.get("code"), str):
        return "missing or non-string 'code'"
    formats = [k for k in ("test", "cases", "stdin_cases") if k in job]
    if len(formats) != 1:
        return "exactly one of 'test', 'cases', 'stdin_cases' is required" + (
            f" (got {formats})" if formats else "")
    fmt = formats[0]
    if fmt == "test" and not (isinstance(job["test"], str) and job["test"].strip()):
        return "'test' must be a non-empty string (a job without tests cannot pass them)"
    if fmt in ("cases", "stdin_cases"):
        cases = job[fmt]
        if not isinstance(cases, list) or not cases:
            return f"'{fmt}' must be a non-empty list"
        for i, c in enumerate(cases):
            if not isinstance(c, dict) or "input" not in c or "output" not in c:
                return f"'{fmt}'[{i}] must be an object with 'input' and 'output'"
            if fmt == "stdin_cases" and not (isinstance(c["input"], str)
                                             and isinstance(c["output"], str)):
                return f"'stdin_cases'[{i}] input/output must be strings"
    if fmt == "cases" and not isinstance(job.get("entry_point"), str):
        return "'cases' requires a string 'entry_point' (function or Class.method)"
    if "entry_point" in job and not (isinstance(job["entry_point"], str)
                                     and job["entry_point"].strip()):
        return "'entry_point' must be a non-empty string"
    # issue 14 hook: LeetCode job fields (sandbox/_leetcode.py, sandbox/_compare.py)
    if "env" in job and job["env"] != "leetcode":
        return "'env' must be \"leetcode\""
    for key, check in (("call", _leetcode.validate_call), ("compare", _compare.validate)):
        if key in job and (err := check(job[key])):
            return err
    if "prelude" in job and not isinstance(job["prelude"], str):
        return "'prelude' must be a string"
    if "timeout_s" in job:
        t = job["timeout_s"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t <= MAX_TIMEOUT_S:
            return f"'timeout_s' must be a number in (0, {MAX_TIMEOUT_S:g}]"
    if "memory_mb" in job:
        m = job["memory_mb"]
        if isinstance(m, bool) or not isinstance(m, int) or not 64 <= m <= 65536:
            return "'memory_mb' must be an integer in [64, 65536]"
    return None


def error_verdict(job_id: Any, detail: str) -> dict[str, Any]:
    """A ``sandbox_error`` verdict (malformed job, crashed worker...)."""
    return {"id": job_id, "verdict": "sandbox_error", "detail": detail}


def _memory_cgroup_parent() -> str | None:
    """Our own cgroup-v1 memory directory if we may create children in it, else None.

    RLIMIT_AS bounds each process; a memory cgroup per worker also bounds the *sum* over a
    job's processes. Optional: hosts without a writable v1 memory controller skip it.
    """
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _hid, ctrls, path = line.rstrip("\n").split(":", 2)
                if "memory" in ctrls.split(","):
                    base = "/sys/fs/cgroup/memory" + path.rstrip("/")
                    if (os.path.exists(base + "/memory.limit_in_bytes")
                            and os.access(base, os.W_OK)):
                        return base
    except (OSError, ValueError):
        pass
    return None


CGROUP_PREFIX = "fusedata-sandbox-"


def _rmdir_cgroup(path: str) -> bool:
    """Remove a worker cgroup and its job cgroup (children first); True when gone."""
    for _ in range(20):
        try:
            for sub in ("/job", ""):
                try:
                    os.rmdir(path + sub)
                except FileNotFoundError:
                    pass
            return True
        except OSError:  # zombies still charged; they go within milliseconds
            time.sleep(0.05)
    return False


def sweep_stale_cgroups() -> list[str]:
    """Remove cgroups left by runners that died without cleaning up (SIGKILL, crash): ours
    are named after the runner's pid, so one whose runner is gone and which holds no task
    is stale.  Returns the removed paths."""
    parent = _memory_cgroup_parent()
    removed: list[str] = []
    if not parent:
        return removed
    try:
        names = os.listdir(parent)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(CGROUP_PREFIX):
            continue
        try:
            pid = int(name[len(CGROUP_PREFIX):].split("-")[0])
        except ValueError:
            continue
        if pid == os.getpid() or os.path.exists(f"/proc/{pid}"):
            continue
        path = f"{parent}/{name}"
        try:
            os.rmdir(path + "/job")
        except OSError:
            pass
        try:
            os.rmdir(path)
            removed.append(path)
        except OSError:
            pass  # still has tasks (or not ours to remove): leave it
    return removed


class _Worker:
    """Handle to one worker process; restartable."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        stage = tempfile.mkdtemp(prefix="fusedata-sandbox-root-") if self.cfg["isolation"] \
            else ""
        self.scratch = "" if self.cfg["isolation"] else tempfile.mkdtemp(
            prefix="fusedata-sandbox-scratch-")
        cfg = dict(self.cfg, stage=stage, cgroup=self._cgroup(), scratch=self.scratch)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
               "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _BOOT, _PKG_PARENT],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True,
            cwd="/")
        self.handle = Proc.open(self.proc.pid)  # not reaped before kill(): safe to open
        try:
            _worker.write_frame(self.proc.stdin.fileno(), cfg)  # type: ignore[union-attr]
            hello = self._read(60.0)
        finally:
            if stage:
                try:
                    os.rmdir(stage)
                except OSError:
                    pass
        if not hello or not hello.get("ready"):
            err = (hello or {}).get("error", f"worker exited ({self.proc.poll()})")
            self.kill()
            if self.cfg["isolation"]:
                raise SandboxUnavailableError(f"sandbox isolation failed: {err}. {GUIDANCE}")
            raise RuntimeError(f"sandbox worker failed to start: {err}")

    def _cgroup(self) -> str:
        """``<parent>/fusedata-sandbox-<runner pid>-<uid>`` for the worker and ``.../job``
        (limited) below it for its jobs; see ``_worker._join_cgroup``."""
        parent = _memory_cgroup_parent() if self.cfg["isolation"] else None
        if not parent:
            return ""
        path = f"{parent}/{CGROUP_PREFIX}{os.getpid()}-{self.cfg['uid']}"
        try:
            os.makedirs(path + "/job", exist_ok=True)
            self.cgroup_path = path
            with open(path + "/job/memory.limit_in_bytes", "w") as f:
                f.write(str(self.cfg["cgroup_mb"] << 20))
        except OSError:
            self._remove_cgroup()
            return ""
        return path

    def _remove_cgroup(self) -> None:
        path = getattr(self, "cgroup_path", "")
        if path:
            _rmdir_cgroup(path)
        self.cgroup_path = ""

    def _read(self, timeout: float) -> Any | None:
        assert self.proc and self.proc.stdout
        fd = self.proc.stdout.fileno()
        poller = select.poll()  # not select.select: the runner may hold > 1024 fds
        poller.register(fd, select.POLLIN)
        if not poller.poll(max(0, int(timeout * 1000))):
            return None
        try:
            return _worker.read_frame(fd)
        except (OSError, ValueError):
            return None

    def run(self, job: dict[str, Any]) -> dict[str, Any]:
        """Run one job; on worker death or hang return a sandbox_error and restart."""
        assert self.proc and self.proc.stdin
        timeout = float(job.get("timeout_s", self.cfg["timeout_s"]))
        try:
            _worker.write_frame(self.proc.stdin.fileno(), job)
            verdict = self._read(timeout + 60.0)
        except OSError:
            verdict = None
        if verdict is None:
            code = self.proc.poll()
            self.kill()
            self.start()
            return error_verdict(job.get("id"), f"sandbox worker died or hung (exit {code}) "
                                 "while running this job")
        return verdict

    def kill(self) -> None:
        """SIGKILL the worker through its pidfd (never a reused pid), reap it and remove its
        cgroup and scratch folder."""
        if self.proc:
            self.handle.kill()
            self.proc.wait()
            self.handle.close()
            for f in (self.proc.stdin, self.proc.stdout):
                if f:
                    f.close()
        self._remove_cgroup()
        if getattr(self, "scratch", ""):
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = ""

    def close(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # type: ignore[union-attr]
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()


class SandboxPool:
    """A pool of warm, isolated workers.  Use as a context manager.

    ``limits`` overrides :data:`DEFAULTS` (timeout_s, memory_mb, nproc, file_mb, disk_mb,
    output_cap); per-job ``timeout_s``/``memory_mb`` override those again.
    """

    def __init__(self, workers: int | None = None, isolation: bool = True,
                 **limits: Any) -> None:
        if isolation:
            _preflight()
        unknown = set(limits) - set(DEFAULTS)
        if unknown:
            raise TypeError(f"unknown limits: {sorted(unknown)}")
        n = workers or len(os.sched_getaffinity(0))
        if isolation:
            sweep_stale_cgroups()
        # each worker owns a range of uids, one per job (see _worker.run_one)
        base_uid = random.randrange(1_000_000_000, 2_000_000_000 - (n << 16))
        project = _PKG_PARENT if not _PKG_PARENT.startswith(sys.prefix) else ""
        self.isolation = isolation
        self._workers: list[_Worker] = []
        cfgs = [dict(DEFAULTS, **limits, isolation=isolation,
                     uid=base_uid + i * _worker.UIDS_PER_WORKER,
                     project=project) for i in range(n)]
        # Start workers concurrently: each needs an interpreter start plus imports.
        errors: list[BaseException] = []
        lock = threading.Lock()

        def start(cfg: dict[str, Any]) -> None:
            try:
                w = _Worker(cfg)
            except BaseException as e:  # noqa: BLE001 - re-raised below
                with lock:
                    errors.append(e)
                return
            with lock:
                self._workers.append(w)

        threads = [threading.Thread(target=start, args=(c,)) for c in cfgs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            self.close()
            raise errors[0]

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for w in self._workers:
            w.close()
        self._workers = []

    def imap_unordered(self, jobs: Iterable[Any]) -> Iterator[tuple[int, dict[str, Any]]]:
        """Yield ``(input_index, verdict)`` as jobs finish; pulls ``jobs`` lazily."""
        it = iter(enumerate(jobs))
        lock = threading.Lock()
        out: queue.Queue[tuple[int, dict[str, Any]] | BaseException | None] = queue.Queue(
            maxsize=4 * max(1, len(self._workers)))
        stop = threading.Event()

        def feed(w: _Worker) -> None:
            try:
                while not stop.is_set():
                    with lock:
                        try:
                            idx, job = next(it)
                        except StopIteration:
                            return
                    problem = validate_job(job)
                    if problem:
                        jid = job.get("id") if isinstance(job, dict) else None
                        line = job.get("__line__") if isinstance(job, dict) else None
                        where = f" (line {line})" if line else ""
                        v = error_verdict(jid, f"malformed job{where}: {problem}")
                        if line and jid is None:
                            v["line"] = line  # lets the CLI resume past id-less lines
                    else:
                        sent, held = split_job(job)  # expected values stay here
                        v = _worker.judge(job, held, w.run(sent))
                        v["id"] = job["id"]
                    out.put((idx, v))
            except BaseException as e:  # noqa: BLE001 - surfaced in the consumer
                out.put(e)
            finally:
                out.put(None)

        threads = [threading.Thread(target=feed, args=(w,), daemon=True)
                   for w in self._workers]
        for t in threads:
            t.start()
        live = len(threads)
        try:
            while live:
                item = out.get()
                if item is None:
                    live -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            stop.set()
            while any(t.is_alive() for t in threads):
                try:
                    out.get(timeout=0.1)
                except queue.Empty:
                    pass

    def run(self, jobs: Iterable[Any],
            progress: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
        """Run all jobs; verdicts in input order."""
        results: dict[int, dict[str, Any]] = {}
        for idx, v in self.imap_unordered(jobs):
            results[idx] = v
            if progress is not None:
                progress(v)
        return [results[i] for i in range(len(results))]


def _preflight() -> None:
    if not sys.platform.startswith("linux"):
        raise SandboxUnavailableError(f"sandbox isolation needs Linux (got {sys.platform}). "
                                      + GUIDANCE)
    if os.geteuid() != 0:
        raise SandboxUnavailableError(
            "sandbox isolation currently needs to run as root: it drops each job to a "
            "private unprivileged uid so RLIMIT_NPROC and file permissions bind. " + GUIDANCE)
    if not hasattr(os, "pidfd_open"):
        raise SandboxUnavailableError("os.pidfd_open is missing (needs Linux >= 5.3). "
                                      + GUIDANCE)


def check_host() -> None:
    """Raise :class:`SandboxUnavailableError` with guidance unless full isolation works here.

    It starts one real isolated worker and runs a probe job, so a pass means the exact code
    path used for real jobs works on this host.
    """
    _preflight()
    with SandboxPool(workers=1, isolation=True) as pool:
        [v] = pool.run([{"id": "probe", "code": "import socket, os\n",
                         "test": "assert os.getuid() != 0\n"
                                 "s = socket.socket()\n"
                                 "try:\n    s.connect(('127.0.0.1', 9))\n"
                                 "    raise SystemExit('network reachable')\n"
                                 "except OSError:\n    pass\n",
                         "timeout_s": 10}])
    if v["verdict"] != "passed":
        raise SandboxUnavailableError(f"sandbox probe job did not pass: {v}. {GUIDANCE}")


def run_jobs(jobs: Iterable[Any], workers: int | None = None, isolation: bool = True,
             progress: Callable[[dict[str, Any]], None] | None = None,
             **limits: Any) -> list[dict[str, Any]]:
    """Run jobs in a fresh pool; return verdict dicts in input order (see package docs)."""
    with SandboxPool(workers=workers, isolation=isolation, **limits) as pool:
        return pool.run(jobs, progress=progress)
