"""Private Ray nodes for tests: a head, and worker nodes joining it, on 127.0.0.1.

Each node is one ``ray start --block`` process that this module started and owns:
``--block`` keeps it in the foreground and makes it shut its own Ray processes down
when terminated, so :meth:`Node.stop` stops exactly that node. Nothing here signals a
process by name, by ``-1`` or by a pid it did not start (the tree of a node is found
from the pid of its own ``ray start``), and ``ray stop`` (which stops every Ray
instance on the machine, also other users') is never run.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree(pid: int) -> list:
    """``pid`` and every process it started (the only processes tests may signal)."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


@dataclass
class Node:
    proc: subprocess.Popen
    temp: Path
    address: str  # the head's GCS address (the one the node serves or joined)

    def processes(self) -> list:
        return tree(self.proc.pid)

    def kill(self) -> list[int]:
        """SIGKILL every process of this node at once (a machine that died): no
        graceful shutdown, nothing told to the head. Returns the pids killed."""
        import psutil

        procs = self.processes()
        for p in procs:
            try:
                p.kill()
            except psutil.Error:
                pass
        self.proc.wait(timeout=30)
        return [p.pid for p in procs]

    def stop(self) -> None:
        """Graceful stop (``ray start --block`` shuts its processes down on SIGTERM),
        then SIGKILL for anything of this node still running after 60 s."""
        started = self.processes()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for p in started[1:]:  # anything of ours the graceful shutdown left behind
            try:
                p.kill()
            except Exception:  # noqa: BLE001 - already gone
                pass


def _own_ports(head: bool) -> list[str]:
    """Free ports for the services Ray would put on fixed defaults (dashboard 8265, its
    agent 52365): two nodes on one machine, or a user's own Ray instance, would
    otherwise collide with these tests' nodes.  (Ray's client server, default 10001,
    is not started: it needs ``ray[client]``, which is not installed.)"""
    ports = [f"--dashboard-agent-listen-port={free_port()}"]
    if head:
        ports.append(f"--dashboard-port={free_port()}")
    return ports


def _start(cmd: list[str], temp: Path, env: dict[str, str], ready, address: str) -> Node:
    temp.mkdir(parents=True, exist_ok=True)
    log_path = temp / "ray-start.log"
    with open(log_path, "wb") as log:  # the child holds its own copy of the handle
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    node = Node(proc, temp, address)
    deadline = time.time() + 180
    try:
        while not ready():
            assert proc.poll() is None, log_path.read_text(errors="replace")[-3000:]
            assert time.time() < deadline, f"ray node did not start in 180 s: {cmd}"
            time.sleep(0.2)
    except BaseException:
        node.stop()
        raise
    return node


def start_head(temp: Path, env: dict[str, str], num_cpus: int) -> Node:
    """``ray start --head`` on a free port with its own temp dir."""
    port = free_port()
    cmd = [RAY, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}",
           f"--num-cpus={num_cpus}", "--include-dashboard=false", f"--temp-dir={temp}",
           "--disable-usage-stats", "--object-store-memory=200000000", *_own_ports(head=True)]
    return _start(cmd, temp, env, lambda: (temp / "ray_current_cluster").exists(),
                  f"127.0.0.1:{port}")


def start_worker(head: Node, temp: Path, env: dict[str, str], num_cpus: int) -> Node:
    """A second node joining ``head`` (``ray start --address``) with its own temp dir.

    Ready once its raylet has registered: ``ray start`` prints "Ray runtime started"
    only after that."""
    cmd = [RAY, "start", "--block", f"--address={head.address}", "--node-ip-address=127.0.0.1",
           f"--num-cpus={num_cpus}", f"--temp-dir={temp}", "--disable-usage-stats",
           "--object-store-memory=200000000", *_own_ports(head=False)]
    log_path = temp / "ray-start.log"

    def ready() -> bool:
        return log_path.exists() and "Ray runtime started" in log_path.read_text(errors="replace")

    return _start(cmd, temp, env, ready, head.address)
