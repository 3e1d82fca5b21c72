"""A build killed with SIGKILL mid-sampling resumes to exactly the uninterrupted result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

from .conftest import demo_recipe_dict, write_recipe

TOPICS = ["rivers", "chess", "bread", "volcanoes", "jazz", "bees", "maps", "glass", "tides",
          "owls", "clocks", "salt"]


def _recipe(tmp: Path, models, out: Path) -> Path:
    data = tmp / "many.jsonl"
    with open(data, "w") as f:
        for i in range(96):
            f.write(json.dumps({"q": f"Tell me fact {i} about {TOPICS[i % len(TOPICS)]}."}) + "\n")
    d = demo_recipe_dict(models, out)
    d["prompts"] = [{"name": "many", "path": str(data), "fields": {"prompt": "q"},
                     "category": "instruction"}]
    d["executor"] = {"shard_size": 2}
    return write_recipe(tmp / f"{out.name}.yaml", d)


def _run(recipe: Path, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "fusedata.cli", "build", str(recipe),
                             "--no-progress"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, **kw)


def _final(out: Path) -> dict[str, pl.DataFrame]:
    res = {}
    for t in ("sft", "dpo"):
        res[t] = pl.read_parquet(sorted((out / "data" / t).glob("*.parquet")))
    samples = sorted((out / ".work" / "sample").glob("*/shard-*.parquet"))
    res["samples"] = pl.read_parquet(samples).sort("response_id")
    return res


def test_sigkill_mid_sampling_then_resume_is_identical(tiny_models, tmp_path):
    # uninterrupted reference
    ref_out = tmp_path / "ref"
    p = _run(_recipe(tmp_path, tiny_models, ref_out))
    assert p.wait(timeout=300) == 0, p.stderr.read().decode()[-2000:]

    out = tmp_path / "killed"
    rec = _recipe(tmp_path, tiny_models, out)
    p = _run(rec)
    sample_dir = out / ".work" / "sample"
    deadline = time.time() + 240
    killed_at = None
    while time.time() < deadline and p.poll() is None:
        shards = list(sample_dir.glob("policy-a-*/shard-*.parquet"))
        if len(shards) >= 5:
            p.send_signal(signal.SIGKILL)
            killed_at = len(shards)
            break
        time.sleep(0.01)
    p.wait(timeout=30)
    assert killed_at is not None, "build finished before it could be killed"
    assert p.returncode == -signal.SIGKILL
    done = list(sample_dir.glob("policy-a-*/_DONE.json"))
    assert not done, "sampling of policy-a must have been interrupted"
    assert not (out / "data" / "sft").exists()

    p = _run(rec)
    err = p.communicate(timeout=300)[1].decode()
    assert p.returncode == 0, err[-2000:]
    assert "resuming" in err

    got, ref = _final(out), _final(ref_out)
    assert got["samples"]["response_id"].is_unique().all()
    assert got["samples"].height == ref["samples"].height == 96 * 3 * 2
    assert got["samples"].equals(ref["samples"])
    assert got["sft"].equals(ref["sft"]) and got["dpo"].equals(ref["dpo"])
