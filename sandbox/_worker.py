"""Warm sandbox worker ("zygote"): one long-lived, pre-imported process per pool slot.

Why this shape: Python start-up (~18 ms) dwarfs a typical test program, so each worker
imports the harness, pyflakes and common stdlib modules once, confines *itself* once (new
mount + network namespace, read-only minimal root), and then forks per job (~1-2 ms).  Each
job child becomes PID 1 of a fresh PID namespace and gets fresh mount/IPC/UTS namespaces, a
private tmpfs ``/tmp`` and its own ``/proc``, so jobs never see each other, and killing that
PID 1 makes the kernel kill every process the job created: nothing survives a job.

Why setuid instead of a user namespace: the host runs as root and root ignores RLIMIT_NPROC.
Dropping to an unprivileged uid of the job's own (from the worker's range, unique per pool, in
a high range no real user owns) makes RLIMIT_NPROC bind (fork bombs stop), removes every
capability, makes the root-owned worker and runner un-signalable from the job and leaves no
per-uid kernel state (keyrings) to the next job.  A seccomp deny-list then closes kernel
surface no test needs.  No apt packages (bubblewrap) are needed.

The worker never judges: it returns what the job reported and the runner (``judge``), which
alone holds expected values, decides the verdict.

Protocol with the runner: 4-byte big-endian length + UTF-8 JSON frames on stdin/stdout.
"""

from __future__ import annotations

import fcntl
import gc
import json
import math
import os
import re
import resource
import secrets
import select
import shutil
import signal
import struct
import sys
import tempfile
import time
from typing import Any

from sandbox import _compare as _cmp  # issue 14: comparison modes
from sandbox import _harness
from sandbox import _linux as L
from sandbox._plain import decode, to_plain
from sandbox._procs import Proc

PRELOAD = (
    "collections", "heapq", "itertools", "functools", "math", "cmath", "re", "bisect",
    "typing", "string", "random", "dataclasses", "decimal", "fractions", "datetime",
    "statistics", "copy", "operator", "enum", "io", "array", "hashlib", "unittest",
    "traceback", "textwrap", "abc", "numbers", "queue", "struct", "time", "inspect",
    "contextlib", "pprint", "threading", "json", "collections.abc", "string",
)
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", "/etc")
DEVICES = ("null", "zero", "full", "random", "urandom")
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def read_frame(fd: int) -> Any | None:
    """Read one length-prefixed JSON frame; None on EOF."""
    head = _read_exact(fd, 4)
    if head is None:
        return None
    (n,) = struct.unpack(">I", head)
    body = _read_exact(fd, n)
    if body is None:
        return None
    return json.loads(body)


def _read_exact(fd: int, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def write_frame(fd: int, obj: Any) -> None:
    """Write one length-prefixed JSON frame."""
    body = json.dumps(obj).encode()
    data = memoryview(struct.pack(">I", len(body)) + body)
    while data:
        data = data[os.write(fd, data):]


# ---------------------------------------------------------------------------- isolation


def _bind_sources() -> list[str]:
    """Host paths the sandboxed interpreter needs: system dirs and the Python installation.

    Nothing else is mounted: not the project, not $HOME, not the host /tmp.
    """
    paths = [p for p in SYSTEM_DIRS if os.path.lexists(p)]
    for p in {sys.base_prefix, sys.prefix, sys.base_exec_prefix, sys.exec_prefix}:
        p = os.path.realpath(p)
        if not any(p == s or p.startswith(s.rstrip("/") + "/") for s in paths):
            paths.append(p)
    return paths


def _make_root(root: str) -> None:
    """Populate a tmpfs at ``root`` with read-only binds of the allowed host paths."""
    flags_ro = L.MS_BIND | L.MS_REMOUNT | L.MS_RDONLY | L.MS_NOSUID | L.MS_NODEV
    for src in _bind_sources():
        dst = root + src
        if os.path.islink(src):
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            os.symlink(os.readlink(src), dst)
            continue
        os.makedirs(dst, exist_ok=True)
        L.mount(src, dst, None, L.MS_BIND | L.MS_REC)
        L.mount(None, dst, None, flags_ro)
    os.makedirs(root + "/dev", exist_ok=True)
    for dev in DEVICES:
        dst = f"{root}/dev/{dev}"
        open(dst, "w").close()
        L.mount(f"/dev/{dev}", dst, None, L.MS_BIND)
        L.mount(None, dst, None, L.MS_BIND | L.MS_REMOUNT | L.MS_NOSUID | L.MS_NOEXEC)
    os.symlink("/tmp", root + "/dev/shm")
    os.symlink("/proc/self/fd", root + "/dev/fd")
    for i, name in enumerate(("stdin", "stdout", "stderr")):
        os.symlink(f"/proc/self/fd/{i}", f"{root}/dev/{name}")
    for d in ("/tmp", "/proc"):
        os.makedirs(root + d, exist_ok=True)


def isolate_worker(stage: str) -> int:
    """Confine the current process: new mount+net namespaces, pivot into a read-only root.

    Returns an fd for our own PID namespace, needed to reset ``pid_ns_for_children`` after
    each per-job ``unshare(CLONE_NEWPID)`` (a process may only create one pending PID ns).
    """
    pidns_fd = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    L.unshare(L.CLONE_NEWNS | L.CLONE_NEWNET)
    L.mount(None, "/", None, L.MS_REC | L.MS_PRIVATE)
    L.mount("tmpfs", stage, "tmpfs", L.MS_NOSUID | L.MS_NODEV, "size=4m,mode=0755")
    _make_root(stage)
    os.chdir(stage)
    L.pivot_root(".", ".")
    L.umount2(".", L.MNT_DETACH)
    os.chdir("/")
    L.mount(None, "/", None, L.MS_REMOUNT | L.MS_RDONLY | L.MS_NOSUID | L.MS_NODEV)
    return pidns_fd


_CG: dict[str, Any] = {}
_JOBS = [0]
_SECCOMP: list[L.SeccompFilter] = []
UIDS_PER_WORKER = 1 << 16


def _join_cgroup(cfg: dict[str, Any]) -> None:
    """Move the worker into its own (unlimited) memory cgroup and keep fds to the files of
    the *job* cgroup below it, because the cgroup filesystem is not visible after pivot_root.

    Why two levels: each job moves itself into ``<worker>/job``, which carries the limit, so
    an out-of-memory job (memfd or tmpfs pages count too: they are charged to the writer's
    cgroup) can only ever get its own processes OOM-killed, never the worker."""
    cg = cfg["cgroup"]
    with open(cg + "/cgroup.procs", "w") as f:
        f.write(str(os.getpid()))
    job = cg + "/job"
    _CG["oom"] = os.open(job + "/memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
    _CG["limit"] = os.open(job + "/memory.limit_in_bytes", os.O_WRONLY | os.O_CLOEXEC)
    _CG["procs"] = os.open(job + "/cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
    _CG["current"] = cfg["cgroup_mb"] << 20


def _oom_kills() -> int:
    """Cumulative OOM kills in the job cgroup (0 without a cgroup)."""
    if "oom" not in _CG:
        return 0
    for line in os.pread(_CG["oom"], 4096, 0).decode().splitlines():
        if line.startswith("oom_kill "):
            return int(line.split()[1])
    return 0


def _set_cgroup_limit(job: dict[str, Any], cfg: dict[str, Any]) -> None:
    """Raise the cgroup limit for jobs whose own memory_mb exceeds the pool default."""
    if "limit" not in _CG:
        return
    want = max(cfg["cgroup_mb"], int(job.get("memory_mb", cfg["memory_mb"])) + 256) << 20
    if want != _CG["current"]:
        try:
            os.pwrite(_CG["limit"], str(want).encode(), 0)
            _CG["current"] = want
        except OSError:
            pass


# ------------------------------------------------------------------------- job process


def _child(job: dict[str, Any], prep: dict[str, Any], cfg: dict[str, Any], nonce: str,
           fds: tuple[int, int, int], workdir: str | None, uid: int) -> None:
    """Runs in the forked job process: finish confinement, drop privileges, run harness."""
    try:
        if "procs" in _CG:
            os.write(_CG["procs"], b"0")  # into the limited job cgroup, away from the worker
        os.setsid()
        if cfg["isolation"]:
            # A virtualenv that lives under /tmp (e.g. a CI clone) disappears under the
            # job's private /tmp below: point sys.executable at the real interpreter
            # (inside the bound base installation) so jobs can still start Python.
            real_exe = os.path.realpath(sys.executable)
            L.unshare(L.CLONE_NEWNS | L.CLONE_NEWIPC | L.CLONE_NEWUTS)
            # Never rely on the worker having made "/" private: without this a mount below
            # could propagate to the host.
            L.mount(None, "/", None, L.MS_REC | L.MS_PRIVATE)
            L.mount("tmpfs", "/tmp", "tmpfs", L.MS_NOSUID | L.MS_NODEV,
                    f"size={cfg['disk_mb']}m,nr_inodes=4096,mode=0700,uid={uid},gid={uid}")
            if not os.path.exists(sys.executable) and os.path.exists(real_exe):
                sys.executable = real_exe
            L.mount("proc", "/proc", "proc", L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC)
            workdir = "/tmp"
        null = os.open("/dev/null", os.O_RDONLY)
        out_w, err_w, res_w = fds
        os.dup2(null, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.dup2(res_w, 3)
        os.closerange(4, 1 << 16)
        timeout = float(job.get("timeout_s", cfg["timeout_s"]))
        mem = int(job.get("memory_mb", cfg["memory_mb"])) << 20
        cpu = math.ceil(timeout) + 1
        for res, val in (
            (resource.RLIMIT_AS, (mem, mem)),
            (resource.RLIMIT_CPU, (cpu, cpu + 1)),
            (resource.RLIMIT_NPROC, (cfg["nproc"], cfg["nproc"])),
            (resource.RLIMIT_FSIZE, (cfg["file_mb"] << 20, cfg["file_mb"] << 20)),
            (resource.RLIMIT_NOFILE, (1024, 1024)),
            (resource.RLIMIT_CORE, (0, 0)),
        ):
            resource.setrlimit(res, val)
        if cfg["isolation"]:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
        L.prctl(L.PR_SET_NO_NEW_PRIVS, 1)
        L.join_new_session_keyring()  # do not possess the worker's (root's) keyrings
        # If the worker dies the job must die too (set after setuid, which clears it).
        L.prctl(L.PR_SET_PDEATHSIG, signal.SIGKILL)
        if cfg["isolation"]:
            _SECCOMP[0].install()  # last: the calls above are on its deny-list
        os.chdir(workdir or "/")
        os.environ.clear()
        os.environ.update({"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir or "/tmp",
                           "LANG": "C.UTF-8", "TMPDIR": workdir or "/tmp"})
        sys.argv = ["solution"]
        signal.signal(signal.SIGINT, signal.default_int_handler)
    except BaseException as e:  # noqa: BLE001
        try:
            os.write(fds[2], (json.dumps({"nonce": nonce, "kind": "sandbox_error",
                                          "detail": f"job setup failed: {e}"}) + "\n").encode())
        finally:
            os._exit(71)
    _harness.run(job, prep, nonce, 3, cfg["output_cap"])


def _reap_pid(pid: int) -> tuple[int, float]:
    _, status, ru = os.wait4(pid, 0)
    return status, ru.ru_utime + ru.ru_stime


def _prepare(job: dict[str, Any]) -> dict[str, Any]:
    """Static preparation of the job (parse, undefined names) in the worker, before forking."""
    try:
        return _harness.prepare(job)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        # The static check normally turns these into syntax_error; anything left is the
        # compiler refusing pathological input.
        return {"final": {"kind": "syntax_error", "detail": f"{type(e).__name__}: {e}"}}


def _open_pipes() -> list[tuple[int, int]]:
    """stdout, stderr and report pipes of one job, enlarged so writers rarely block."""
    pipes = [os.pipe() for _ in range(3)]
    for r, _w in pipes:
        try:
            fcntl.fcntl(r, F_SETPIPE_SZ, 1 << 20)
        except OSError:
            pass
    return pipes


def _fork_job(job: dict[str, Any], prep: dict[str, Any], cfg: dict[str, Any], nonce: str,
              pipes: list[tuple[int, int]], workdir: str | None, uid: int,
              pidns_fd: int | None) -> Proc:
    """Fork the job process (PID 1 of a new PID namespace with isolation) and return a pidfd
    handle for it, opened before anything can reap it."""
    # Freeze the worker's objects out of the cyclic GC so collections in the child do not
    # touch (and copy-on-write) the whole inherited heap.
    gc.freeze()
    if cfg["isolation"]:
        L.unshare(L.CLONE_NEWPID)
    try:
        try:
            pid = os.fork()
        except OSError:
            for fd in (fd for pair in pipes for fd in pair):
                os.close(fd)
            raise
        if pid == 0:
            try:
                for r, _w in pipes:
                    os.close(r)
                _child(job, prep, cfg, nonce, (pipes[0][1], pipes[1][1], pipes[2][1]),
                       workdir, uid)
            finally:
                os._exit(72)
    finally:
        gc.unfreeze()
        if cfg["isolation"] and pidns_fd is not None:
            L.setns(pidns_fd, L.CLONE_NEWPID)
    for _r, w in pipes:
        os.close(w)
    return Proc.open(pid)


def _supervise(proc: Proc, pipes: list[tuple[int, int]], deadline: float,
               cfg: dict[str, Any]) -> tuple[bool, list[bytearray], list[int]]:
    """Read the job's pipes (keeping at most the caps) until it has exited and they are
    closed; SIGKILL it at ``deadline``.  Returns (timed out, kept bytes, total bytes)."""
    # reports: one record is at most MAX_RECORD; a test with many assertions writes many
    caps = [cfg["output_cap"], cfg["output_cap"], 4 * _harness.MAX_RECORD]
    bufs = [bytearray(), bytearray(), bytearray()]
    totals = [0, 0, 0]
    poller = select.poll()
    fd_index = {}
    for i, (r, _w) in enumerate(pipes):
        os.set_blocking(r, False)
        poller.register(r, select.POLLIN)
        fd_index[r] = i
    poller.register(proc.fd, select.POLLIN)
    timed_out = exited = False
    open_fds = set(fd_index)

    def drain(fd: int) -> None:
        # Bounded: a writer that never pauses must not keep us from checking the deadline.
        i = fd_index[fd]
        for _ in range(16):
            try:
                chunk = os.read(fd, 1 << 20)
            except BlockingIOError:
                return
            if not chunk:
                poller.unregister(fd)
                open_fds.discard(fd)
                return
            totals[i] += len(chunk)
            room = caps[i] - len(bufs[i])
            if room > 0:
                bufs[i] += chunk[:room]

    while open_fds or not exited:
        remaining = deadline - time.monotonic()
        if remaining <= 0 and not timed_out and not exited:
            timed_out = True
            _kill(proc, cfg)
        wait_ms = 50 if (timed_out or exited) else max(1, int(remaining * 1000) + 1)
        for fd, _ev in poller.poll(wait_ms):
            if fd == proc.fd:
                exited = True
                poller.unregister(proc.fd)
            else:
                drain(fd)
        if exited and not cfg["isolation"]:
            # Without a PID namespace, descendants may keep the pipes open: take what is
            # buffered and stop.
            _kill(proc, cfg)
            for fd in list(open_fds):
                drain(fd)
            for fd in list(open_fds):
                poller.unregister(fd)
                open_fds.discard(fd)
    return timed_out, bufs, totals


def run_one(job: dict[str, Any], cfg: dict[str, Any], pidns_fd: int | None) -> dict[str, Any]:
    """Fork one job, supervise it (wall clock, output caps), and turn its report into a
    verdict.  Never trusts anything from the job that lacks this job's nonce."""
    nonce = secrets.token_hex(16)
    timeout = float(job.get("timeout_s", cfg["timeout_s"]))
    prep = _prepare(job)
    pipes = _open_pipes()
    # Without isolation jobs get a folder under the runner's per-worker scratch folder,
    # which the runner removes even if this worker is killed mid-job.
    workdir = None if cfg["isolation"] else tempfile.mkdtemp(prefix="job-", dir=cfg["scratch"])
    # A uid per job (within this worker's range): nothing a job leaves in per-uid kernel
    # state can be found by the next one.
    _JOBS[0] += 1
    uid = cfg["uid"] + _JOBS[0] % UIDS_PER_WORKER
    _set_cgroup_limit(job, cfg)
    oom_before = _oom_kills()
    t0 = time.monotonic()
    proc = _fork_job(job, prep, cfg, nonce, pipes, workdir, uid, pidns_fd)
    timed_out, bufs, totals = _supervise(proc, pipes, t0 + timeout, cfg)
    elapsed = time.monotonic() - t0
    status, cpu = _reap_pid(proc.pid)
    proc.close()
    for r, _w in pipes:
        os.close(r)
    if workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    oom = _oom_kills() > oom_before
    v = _verdict(job, cfg, nonce, status, timed_out, elapsed, cpu, bufs, totals, timeout)
    if oom:
        v["_oom_mb"] = _CG["current"] >> 20  # judged with the rest in the runner
    return v


def _kill(proc: Proc, cfg: dict[str, Any]) -> None:
    """SIGKILL the job through its pidfd; with isolation the job is PID 1 of its namespace,
    so the kernel takes every descendant down with it.  Without isolation its process group
    is killed: the group id is the job's pid, which cannot be reused while the job is our
    unreaped child (we reap only after the last kill)."""
    if cfg["isolation"]:
        proc.kill()
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# ------------------------------------------------------------------------------ verdicts


def _records(raw: bytes, nonce: str) -> list[dict[str, Any]]:
    out = []
    for line in raw.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("nonce") == nonce:
            out.append(rec)
    return out


def _tail(b: bytes, n: int = 1000) -> str:
    s = b.decode("utf-8", "replace")
    return s if len(s) <= n else "..." + s[-n:]


def _verdict(job: dict[str, Any], cfg: dict[str, Any], nonce: str, status: int,
             timed_out: bool, elapsed: float, cpu: float, bufs: list[bytearray],
             totals: list[int], timeout: float) -> dict[str, Any]:
    """The verdict as far as the worker can tell.  Values the job reported (case results,
    assertion operands) are passed on in ``_records`` for :func:`judge`, which runs in the
    runner: only the runner holds the expected values."""
    recs = _records(bytes(bufs[2]), nonce)
    final = next((r for r in recs if r.get("kind") not in ("progress", "check")), None)
    at = next((r["at"] for r in reversed(recs) if r.get("kind") == "progress"), None)
    truncated = totals[0] > cfg["output_cap"] or totals[1] > cfg["output_cap"]
    v: dict[str, Any] = {"id": job.get("id"), "elapsed_s": round(elapsed, 4),
                         "cpu_s": round(cpu, 4), "output_truncated": truncated}
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    if final is None:
        stderr = bytes(bufs[1])
        if timed_out or sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= timeout):
            kind = "wall" if timed_out else "CPU"
            v.update(verdict="timeout",
                     detail=f"exceeded {timeout:g} s {kind} time" + (f" during {at}" if at
                                                                      else ""))
        elif b"MemoryError" in stderr[-4096:]:
            v.update(verdict="memory", detail="MemoryError" + (f" during {at}" if at else ""))
        else:
            how = f"killed by signal {sig}" if sig else f"exited with code "\
                  f"{os.WEXITSTATUS(status)}"
            v.update(verdict="failed", detail=f"{how} before the harness completed"
                     + (f" (during {at})" if at else ""), failed_test=at,
                     error_type="EarlyExit", message=how)
    else:
        kind = final.get("kind")
        if kind in ("results", "done"):
            v.update(verdict="pending", detail="")
        elif kind in ("failed", "memory", "syntax_error", "static_error", "sandbox_error"):
            v["verdict"] = kind
            v["detail"] = str(final.get("detail", ""))[:1000]
            for k in ("failed_test", "error_type", "message"):
                if k in final:
                    v[k] = final[k]
        else:
            v.update(verdict="failed", detail=f"unknown report {kind!r} from the job",
                     error_type="BadReport", message="")
    v["_records"] = recs
    v["_tails"] = [_tail(bytes(bufs[0])), _tail(bytes(bufs[1]))]
    if truncated:
        v["_truncated"] = f" [output truncated: {totals[0]}+{totals[1]} bytes, kept " \
                          f"{cfg['output_cap']} per stream]"
    return v


_STMT = re.compile(r"\bstatement (\d+)\b")


def judge(job: dict[str, Any], held: Any, v: dict[str, Any]) -> dict[str, Any]:
    """Runner side: finish a worker's verdict with the values only the runner holds.

    ``job`` is the original job (with expected outputs), ``held`` the
    :class:`sandbox._split.TestSplit` for ``test`` jobs (None otherwise).  A failing split
    assertion reported before anything else went wrong makes the job ``failed``; a ``done``
    job passes only when every required assertion was reported and held.
    """
    from sandbox._split import apply_check  # runner-only import

    recs = v.pop("_records", [])
    tails = v.pop("_tails", ["", ""])
    trunc = v.pop("_truncated", "")
    try:
        if held is not None:
            _judge_checks(v, recs, held, apply_check)
        elif v["verdict"] == "pending":
            final = next(r for r in recs if r.get("kind") == "results")
            v.update(_compare(job, _decode_results(final.get("results"), "stdin_cases" in job)))
    except Exception as e:  # noqa: BLE001 - whatever the job wrote, it cannot crash the runner
        v.update(verdict="failed", detail=f"malformed report from the job: {e}",
                 error_type="BadReport", message=str(e)[:300])
    if v["verdict"] == "pending":
        v.update(verdict="sandbox_error", detail="job finished without a judgeable report")
    oom_mb = v.pop("_oom_mb", None)
    if oom_mb and v["verdict"] in ("failed", "timeout", "sandbox_error"):
        v["verdict"] = "memory"
        v["detail"] = f"out of memory: the job's processes together exceeded the " \
                      f"{oom_mb} MiB cgroup limit ({v['detail']})"
    if held is not None:
        v["detail"] = _STMT.sub(lambda m: held.labels.get(m.group(0), m.group(0)), v["detail"])
        at = v.get("failed_test")
        if isinstance(at, str) and at in held.labels:
            v["failed_test"] = int(at.split()[1])
    if v["verdict"] != "passed":
        v["stdout"], v["stderr"] = tails
    v["detail"] += trunc
    return v


def _judge_checks(v: dict[str, Any], recs: list[dict[str, Any]], held: Any,
                  apply_check: Any) -> None:
    at = test = None
    seen: set[int] = set()
    for r in recs:
        kind = r.get("kind")
        if kind == "progress":
            at, test = r.get("at"), r.get("test")
        elif kind == "check":
            k = r.get("k")
            if type(k) is not int or not 0 <= k < len(held.checks):
                raise ValueError(f"unknown check {k!r}")
            chk = held.checks[k]
            ok, msg = apply_check(chk, decode(r.get("v")))
            seen.add(k)
            if not ok:
                where = at or "test code"
                if f"(line {chk.line}:" not in held.labels.get(at, ""):
                    where += f", line {chk.line} ({chk.src[:80]})"
                v.update(verdict="failed", failed_test=test, error_type="AssertionError",
                         message=msg[:300], detail=f"{where}: AssertionError: {msg}"[:1000])
                return
        elif kind != "done":
            return  # a failure record: the worker's verdict stands
    if v["verdict"] != "pending":
        return
    missing = [k for k, c in enumerate(held.checks) if c.required and k not in seen]
    if missing:
        c = held.checks[missing[0]]
        v.update(verdict="failed", failed_test=None, error_type="Incomplete", message="",
                 detail=f"assertion at line {c.line} ({c.src[:80]}) was never checked")
        return
    count = next((r.get("count") for r in recs if r.get("kind") == "done"), 0)
    v.update(verdict="passed", detail=f"all {count} tests passed", checks=len(seen))
    reasons = list(held.in_process) + [
        f"line {c.line}: assertion not reached unconditionally" for c in held.checks
        if not c.required] + [f"line {c.line}: a value computed in the job decides "
                              f"({c.op}{' held literal' if c.held else ''})"
                              for c in held.checks if not c.strong]
    v["judged"] = "in_process" if reasons else "outside"
    if reasons:
        v["in_process"] = reasons[:5]


def _decode_results(raw: Any, stdin_mode: bool) -> list[Any]:
    """Job-reported case results -> the plain JSON form :func:`_compare` expects."""
    out = []
    for r in decode(raw):
        if type(r) is not dict:
            raise ValueError("case result is not an object")
        if "value" in r and not stdin_mode:
            r = {"value": to_plain(r["value"])}
        out.append(r)
    return out


def values_equal(got: Any, want: Any) -> bool:
    """Strict JSON-value equality; floats compare with rel 1e-6 / abs 1e-9 tolerance."""
    if isinstance(want, bool) or isinstance(got, bool):
        return type(got) is type(want) and got == want
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        if isinstance(want, float) or isinstance(got, float):
            return math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9)
        return got == want
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(values_equal(g, w) for g, w in zip(got, want, strict=True))
    if isinstance(want, dict) and isinstance(got, dict):
        return got.keys() == want.keys() and all(values_equal(got[k], want[k]) for k in want)
    return type(got) is type(want) and got == want


def normalize_output(s: str) -> list[str]:
    """Judge-style output normalisation: trailing spaces per line and trailing blank lines
    are ignored, everything else must match."""
    lines = [ln.rstrip() for ln in s.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _short_json(x: Any, n: int = 200) -> str:
    s = json.dumps(x) if not isinstance(x, str) else repr(x)
    return s if len(s) <= n else s[:n] + "..."


def _case_matches(job: dict[str, Any], want: Any, got: Any) -> bool:
    """Compare one expected/got pair of the ``cases`` format (both plain JSON data), with the
    job's comparison mode (issue 14, ``sandbox/_compare.py``); runs in the runner, never in a
    job."""
    return _cmp.equal(got, want, job.get("compare"))


def _compare(job: dict[str, Any], results: list[Any]) -> dict[str, Any]:
    """Judge decoded case results against the original job's expected outputs (runner)."""
    stdin_mode = "stdin_cases" in job
    cases = job["stdin_cases"] if stdin_mode else job["cases"]
    label = "stdin case" if stdin_mode else "case"
    for i, case in enumerate(cases):
        if i >= len(results) or not isinstance(results[i], dict):
            return {"verdict": "failed", "detail": f"{label} {i}: no result reported",
                    "failed_test": i, "error_type": "Incomplete", "message": ""}
        r = results[i]
        if stdin_mode:
            if "signal" in r or r.get("exit") != 0:
                code = r.get("exit")
                how = f"killed by signal {r['signal']}" if "signal" in r else f"exit code {code}"
                verdict = "memory" if code == 99 else "failed"
                return {"verdict": verdict, "detail": f"{label} {i}: runtime error ({how})",
                        "failed_test": i, "error_type": "RuntimeError", "message": how}
            got, want = str(r.get("stdout", "")), str(case.get("output", ""))
            if normalize_output(got) != normalize_output(want):
                return {"verdict": "failed", "failed_test": i, "error_type": "WrongAnswer",
                        "message": f"expected {_short_json(want)}, got {_short_json(got)}",
                        "detail": f"{label} {i}: wrong output: expected {_short_json(want)}, "
                                  f"got {_short_json(got)}"}
        else:
            if "value" not in r:
                verdict = "memory" if r.get("memory") else "failed"
                et, msg = str(r.get("error_type")), str(r.get("message", ""))[:300]
                return {"verdict": verdict, "failed_test": i, "error_type": et, "message": msg,
                        "detail": f"{label} {i}: {et}" + (f": {msg}" if msg else "")}
            got, want = r["value"], case.get("output")
            if not _case_matches(job, want, got):
                return {"verdict": "failed", "failed_test": i, "error_type": "WrongAnswer",
                        "message": f"expected {_short_json(want)}, got {_short_json(got)}",
                        "detail": f"{label} {i}: expected {_short_json(want)}, "
                                  f"got {_short_json(got)}"}
    return {"verdict": "passed", "detail": f"all {len(cases)} {label}s passed"}


# ---------------------------------------------------------------------------------- main


def main() -> None:
    """Worker entry point: handshake (config), confine, then serve jobs until stdin EOF."""
    rfd, wfd = sys.stdin.fileno(), sys.stdout.fileno()
    # Keep protocol fds away from 0/1 so stray prints cannot corrupt frames.
    rfd, wfd = os.dup(rfd), os.dup(wfd)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    cfg = read_frame(rfd)
    if cfg is None:
        return
    for name in PRELOAD:
        __import__(name)
    pidns_fd = None
    try:
        if cfg.get("cgroup"):
            _join_cgroup(cfg)
        if cfg["isolation"]:
            pidns_fd = isolate_worker(cfg["stage"])
            _SECCOMP.append(L.SeccompFilter())
        if cfg["project"]:
            sys.path[:] = [p for p in sys.path if p and not p.startswith(cfg["project"])]
        _harness.snapshot_state()
    except Exception as e:  # noqa: BLE001 - reported to the runner, which raises loudly
        write_frame(wfd, {"ready": False, "error": f"{type(e).__name__}: {e}"})
        return
    write_frame(wfd, {"ready": True, "pid": os.getpid()})
    while True:
        job = read_frame(rfd)
        if job is None:
            return
        try:
            verdict = run_one(job, cfg, pidns_fd)
        except Exception as e:  # noqa: BLE001
            verdict = {"id": job.get("id"), "verdict": "sandbox_error",
                       "detail": f"worker error: {type(e).__name__}: {e}"}
        write_frame(wfd, verdict)


if __name__ == "__main__":
    main()
