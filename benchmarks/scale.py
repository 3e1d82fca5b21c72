"""Does the toolkit's own cost per response stay flat as the build grows?  (issue 19)

Builds a synthetic recipe twice, at N and at 4N prompts, from scratch: instruction
prompts -> sample (``backend: openai`` against a canned OpenAI-compatible server on
127.0.0.1 that answers instantly, ``n`` choices per request) -> score (the tiny
random-weight RM of :mod:`fusedata.tiny`) -> verify -> select -> export.  Model
time is small (the RM is tiny, the server canned), so the time per response is the
toolkit's overhead.  Prints for each size the wall time, the per-stage times (from
the stages' ``_DONE.json``), the peak RSS of the build process, the number of files
in the work folder, the time to read the first and the last shard of the score
stage's input, and a last line ``ratio: X`` = the overhead per response at 4N / at N, where the
overhead is the stages' seconds less the time inside the reward model (loading it,
tokenizing, forward passes: ``RewardScorer.load`` and ``.score``, timed in the child).

``--select-only`` instead fabricates a verified-response table (``--rows`` rows,
``--text-kb`` KB texts, 11 responses per prompt over 2 models) and runs only the
select stage in a child process, printing its peak RSS.

    python benchmarks/scale.py [--prompts 8000] [--samples 11] [--factor 4]
    python benchmarks/scale.py --select-only [--rows 1000000] [--text-kb 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey").split()


def peak_rss() -> int:
    """This process's peak RSS in bytes (``VmHWM``: unlike ``ru_maxrss`` it starts afresh
    at exec, so a child does not inherit the parent's peak)."""
    with open("/proc/self/status") as f:
        return int(next(ln.split()[1] for ln in f if ln.startswith("VmHWM:"))) * 1024


# ------------------------------------------------------------------ canned server
async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Minimal HTTP/1.1 keep-alive handler for ``POST .../chat/completions``."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = json.loads(await reader.readexactly(length)) if length else {}
            n, seed = int(body.get("n", 1)), int(body.get("seed", 0))
            choices = []
            for k in range(n):
                s = seed + k * 7919
                text = " ".join(WORDS[(s >> j) % len(WORDS)] for j in range(28))
                choices.append({"index": k, "finish_reason": "stop",
                                "message": {"role": "assistant", "content": text}})
            out = json.dumps({"choices": choices, "usage": {"prompt_tokens": 12,
                                                            "completion_tokens": 40 * n}}).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: " + str(len(out)).encode() + b"\r\n\r\n" + out)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def serve(port: int) -> None:
    async def main() -> None:
        srv = await asyncio.start_server(_handle, "127.0.0.1", port, backlog=1024)
        async with srv:
            await srv.serve_forever()

    asyncio.run(main())


def start_server() -> tuple[subprocess.Popen, int]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("canned server did not start")


# ------------------------------------------------------------------ full build
def write_case(folder: Path, n: int, samples: int, port: int, rm: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "prompts.jsonl", "w") as f:
        for i in range(n):
            words = " ".join(WORDS[(i * 31 + j) % len(WORDS)] for j in range(12))
            f.write(json.dumps({"instruction": f"Question {i}: explain {words}."}) + "\n")
    recipe = {
        "name": f"scale-{n}", "seed": 0, "output_dir": str(folder / "out"),
        "prompts": [{"name": "inst", "path": str(folder / "prompts.jsonl"),
                     "fields": {"prompt": "instruction"}, "category": "instruction"}],
        "models": [{"name": "canned", "backend": "openai", "path": "canned",
                    "http": {"base_urls": [f"http://127.0.0.1:{port}/v1"], "concurrency": 32},
                    "sampling": {"temperature": 0.8, "top_p": 0.95, "max_tokens": 64,
                                 "seed": 1},
                    "samples": {"default": samples}}],
        "reward_model": {"path": str(rm), "max_length": 128, "batch_tokens": 16384},
        "selection": {"seed": 0},
    }
    import yaml

    p = folder / "recipe.yaml"
    p.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return p


def run_child(cmd: list[str]) -> tuple[float, str]:
    """Wall seconds and output of a child process (it prints its own peak RSS)."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(
                              [p for p in (os.environ.get("PYTHONPATH"),) if p])})
    out = proc.stdout.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out[-3000:]}")
    return time.perf_counter() - t0, out


def shard_read_times(work: Path) -> dict[str, tuple[float, float]]:
    """Seconds to read the first and the last shard of the sample stage's input (the
    routed prompts: one table, 64-row shards) and of the score stage's input (the
    sample shards' files, 256-row shards)."""
    from fusedata.engine import Dataset

    def load(folder: Path, files: list[str], rows: list[int] | None) -> Dataset:
        paths = tuple(folder / f for f in files)
        if rows is None or not hasattr(Dataset, "read_range"):  # no index before issue 19
            return Dataset(paths, "x")
        return Dataset(paths, "x", rows=tuple(rows))

    out = {}
    for stage, size, glob in (("sample", 64, "route/*/_DONE.json"),
                              ("score", 256, "sample/*/_DONE.json")):
        done = sorted(work.glob(glob))
        if not done:
            continue
        meta = json.loads(done[0].read_text())
        if "files" in meta:
            ds = load(done[0].parent, meta["files"], meta.get("rows"))
        else:  # a reduce stage: one file per table
            rows = (meta.get("rows_out") or {}).get("prompts")
            ds = load(done[0].parent, ["prompts.parquet"], [rows] if rows is not None else None)
        last = max(0, (ds.num_rows() - 1) // size)
        times = []
        for i in (0, last):
            t0 = time.perf_counter()
            for _ in range(5):
                if hasattr(ds, "read_range"):
                    ds.read_range(i * size, size)
                else:  # main before issue 19
                    ds.scan().slice(i * size, size).collect()
            times.append((time.perf_counter() - t0) / 5)
        out[stage] = (times[0], times[1])
    return out


#: the build, in a child process: its peak RSS, and the seconds spent inside the reward
#: model (loading, tokenizing, forward passes: model time, not the toolkit's overhead)
CHILD = """
import sys, time
import fusedata.score as sc
from fusedata.cli import main
spent = [0.0]
def timed(real):
    def f(*a, **k):
        t0 = time.perf_counter()
        try:
            return real(*a, **k)
        finally:
            spent[0] += time.perf_counter() - t0
    return f
sc.RewardScorer.score = timed(sc.RewardScorer.score)
sc.RewardScorer.load = timed(sc.RewardScorer.load)
sys.argv = ["fusedata", "build", sys.argv[1], "--no-progress"]
rc = 0
try:
    main()
except SystemExit as e:
    rc = e.code or 0
print("PEAK_RSS", int(next(ln.split()[1] for ln in open("/proc/self/status")
                          if ln.startswith("VmHWM:"))) * 1024)
print("MODEL_S", spent[0])
sys.exit(rc)
"""


def one_size(base: Path, n: int, samples: int, port: int, rm: Path) -> dict:
    case = base / f"n{n}"
    recipe = write_case(case, n, samples, port, rm)
    wall, log = run_child([sys.executable, "-c", CHILD, str(recipe)])
    rss = int(next(ln.split()[1] for ln in log.splitlines() if ln.startswith("PEAK_RSS")))
    model_s = float(next(ln.split()[1] for ln in log.splitlines() if ln.startswith("MODEL_S")))
    work = next(case.rglob("score")).parent
    stages: dict[str, float] = {}
    for d in work.glob("*/*/_DONE.json"):
        stages[d.parent.parent.name] = (stages.get(d.parent.parent.name, 0.0)
                                        + float(json.loads(d.read_text()).get("seconds", 0)))
    files = sum(1 for p in case.rglob("*") if p.is_file())
    return {"prompts": n, "responses": n * samples, "wall_s": wall, "peak_rss": rss,
            "model_s": model_s,
            "files": files, "stages": stages, "shard_read": shard_read_times(work)}


def full(args: argparse.Namespace) -> None:
    from fusedata.tiny import build_reward_model

    base = Path(tempfile.mkdtemp(prefix="fusedata-scale-"))
    proc, port = start_server()
    try:
        rm = build_reward_model(base / "rm")
        res = [one_size(base, n, args.samples, port, rm)
               for n in (args.prompts, args.prompts * args.factor)]
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(base, ignore_errors=True)
    for r in res:
        st = ", ".join(f"{k} {v:.1f}s" for k, v in sorted(r["stages"].items()))
        sr = r["shard_read"]
        print(f"{r['prompts']} prompts, {r['responses']} responses: {r['wall_s']:.1f}s "
              f"({r['wall_s'] / r['responses'] * 1e3:.3f} ms/response), "
              f"peak RSS {r['peak_rss'] / 2**20:.0f} MiB, {r['files']} files; {st}; "
              f"RM time {r['model_s']:.1f}s"
              + "".join(f"; {k} input shard read first {v[0] * 1e3:.1f} ms, last "
                        f"{v[1] * 1e3:.1f} ms" for k, v in sr.items()))
    a, b = (r["wall_s"] / r["responses"] for r in res)
    print(f"wall-time ratio (start-up and model time included): {b / a:.3f}")
    # the ratio the issue asks for: the toolkit's overhead per response = the stages'
    # seconds (no python start-up) less the reward model's own time
    a, b = ((sum(r["stages"].values()) - r["model_s"]) / r["responses"] for r in res)
    print(f"overhead per response: {a * 1e3:.3f} ms at {res[0]['prompts']} prompts, "
          f"{b * 1e3:.3f} ms at {res[1]['prompts']}")
    print(f"ratio: {b / a:.3f}")


# ------------------------------------------------------------------ select only
def fabricate(path: Path, rows: int, text_kb: int) -> None:
    """A verify-stage response table: 2 models, 11 responses per prompt, KB texts."""
    import polars as pl

    per = 11
    n_prompts = -(-rows // per)
    chunk = 50_000
    filler = "lorem ipsum dolor sit amet " * (text_kb * 1024 // 27 + 1)
    import pyarrow.parquet as pq

    writer = None
    for start in range(0, rows, chunk):
        i = pl.int_range(start, min(rows, start + chunk), eager=True)
        pid = i // per
        df = pl.DataFrame({"i": i, "pid": pid}).select(
            prompt_id=pl.format("p{}", pl.col("pid")),
            category=pl.lit("instruction"), source=pl.lit("inst"),
            model=pl.when(pl.col("i") % per < 6).then(pl.lit("m-a")).otherwise(pl.lit("m-b")),
            role=pl.lit("source"), response_id=pl.format("r{}", pl.col("i")),
            response=pl.format("{} {}", pl.col("i"), pl.lit(filler)).str.slice(0, text_kb * 1024),
            # a narrow spread, so that most prompts have a pair inside the default margin window
            score=0.5 + ((pl.col("i") * 2654435761) % 100).cast(pl.Float64) / 2000.0,
            truncated=pl.lit(False), finish_reason=pl.lit("stop"),
            error=pl.lit(None, pl.String), verdict=pl.lit(None, pl.String))
        t = df.to_arrow()
        if writer is None:
            writer = pq.ParquetWriter(path, t.schema, compression="zstd")
        writer.write_table(t, row_group_size=4096)
    assert writer is not None
    writer.close()
    prompts = pl.DataFrame({"prompt_id": [f"p{k}" for k in range(n_prompts)]}).with_columns(
        category=pl.lit("instruction"), source=pl.lit("inst"))
    prompts.write_parquet(path.with_name("prompts.parquet"))


def select_child(folder: str) -> None:
    """Run the select stage on the fabricated table (in a fresh process: RSS is its own)."""
    from fusedata.engine import Dataset, Engine
    from fusedata.recipe.schema import Selection
    from fusedata.select import SelectStage

    f = Path(folder)
    t0 = time.perf_counter()
    eng = Engine(f / "work", progress=False)
    out = eng.reduce(SelectStage(Selection(seed=0)),
                     {"responses:all": Dataset((f / "responses.parquet",), "r"),
                      "prompts": Dataset((f / "prompts.parquet",), "p")})
    rows = {k: v.num_rows() for k, v in out.items()}
    print("SELECT", json.dumps({"seconds": time.perf_counter() - t0, "rows": rows,
                                "peak_rss": peak_rss()}))


def select_only(args: argparse.Namespace) -> None:
    base = Path(tempfile.mkdtemp(prefix="fusedata-select-"))
    try:
        t0 = time.perf_counter()
        fabricate(base / "responses.parquet", args.rows, args.text_kb)
        print(f"fabricated {args.rows} responses x {args.text_kb} KB in "
              f"{time.perf_counter() - t0:.0f}s "
              f"({(base / 'responses.parquet').stat().st_size / 2**20:.0f} MiB on disk)")
        _, out = run_child([sys.executable, __file__, "--select-child", str(base)])
        res = json.loads(next(ln for ln in out.splitlines() if ln.startswith("SELECT"))[7:])
        print(f"select: {res['seconds']:.1f}s, rows {res['rows']}, "
              f"peak RSS {res['peak_rss'] / 2**30:.2f} GiB")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=8000)
    ap.add_argument("--samples", type=int, default=11)
    ap.add_argument("--factor", type=int, default=4)
    ap.add_argument("--select-only", action="store_true")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--text-kb", type=int, default=8)
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--select-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve)
    elif args.select_child:
        select_child(args.select_child)
    elif args.select_only:
        select_only(args)
    else:
        full(args)


if __name__ == "__main__":
    main()
