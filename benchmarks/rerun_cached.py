"""Re-running a finished recipe must do no model work: time it against the first run.

Builds a demo-sized recipe from scratch (tiny random-weight models built
offline), then runs the same command again; both through the real CLI in
subprocesses, so interpreter and import start-up are counted on both sides.
Asserts the outputs are byte-identical and prints ``ratio: rerun/first``
(the acceptance target is < 0.05).

    python benchmarks/rerun_cached.py [--prompts 64]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def digest(out: Path) -> dict[str, str]:
    """Content of every published file (data sets, drops, card, report), not the cache."""
    files = [p for p in sorted(out.rglob("*")) if p.is_file() and ".work" not in p.parts]
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=256)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from fusedata.tiny import ensure_demo_models

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        models = ensure_demo_models(tmp / "models")
        data = tmp / "prompts.jsonl"
        data.write_text("".join(json.dumps({"q": f"Question number {i}: explain topic {i}."})
                                + "\n" for i in range(args.prompts)))
        recipe = {
            "name": "bench", "output_dir": str(tmp / "out"),
            "prompts": [{"name": "p", "path": str(data), "fields": {"prompt": "q"},
                         "category": "instruction"}],
            "models": [{"name": n, "path": str(models[n]), "samples": {"default": 5},
                        "sampling": {"max_tokens": 48, "seed": i}}
                       for i, n in enumerate(("policy-a", "policy-b"))],
            "reward_model": {"path": str(models["reward"]), "max_length": 512},
            "executor": {"shard_size": 16},
        }
        rp = tmp / "bench.yaml"
        rp.write_text(yaml.safe_dump(recipe))
        cmd = [sys.executable, "-m", "fusedata.cli", "build", str(rp), "--no-progress"]

        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        first = time.perf_counter() - t0
        d1 = digest(tmp / "out")
        t0 = time.perf_counter()
        rerun = subprocess.run(cmd, check=True, capture_output=True, text=True)
        second = time.perf_counter() - t0
        d2 = digest(tmp / "out")
        assert d1 == d2 and d1, "re-run changed the outputs"
        assert "cached" in rerun.stderr and " -> " in rerun.stderr
        print(f"first run: {first:.2f}s  re-run: {second:.2f}s  "
              f"({100 * second / first:.1f}% of the first run)")
        print(f"ratio: {second / first:.3f}")


if __name__ == "__main__":
    main()
