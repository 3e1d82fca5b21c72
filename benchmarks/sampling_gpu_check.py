"""Continuous batching (``generate_batch``) vs padded ``generate`` on CUDA, same prompts.

Checks the paged path completes every request without falling back, then times both
on a tiny random-weight model.  Skips cleanly without CUDA.  Ends with ``ratio: X``
(continuous / padded tokens per second).
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device: skipped")
        return
    from fusedata.backends import Request, get_sampler
    from fusedata.recipe import ModelSpec
    from fusedata.tiny import build_policy

    warnings: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            warnings.append(record.getMessage())

    logging.getLogger("fusedata").addHandler(Catch(level=logging.WARNING))
    path = build_policy(Path(tempfile.mkdtemp()) / "p", seed=1)
    reqs = [Request([{"role": "user", "content": f"Tell me fact {i} about owls."}], n=4,
                    seed=0, key=f"p{i}") for i in range(256)]
    res = {}
    for cb in ("on", "off"):
        spec = ModelSpec.model_validate({
            "name": "m", "path": str(path), "device": "cuda", "batch_size": 256,
            "transformers": {"continuous_batching": cb},
            "sampling": {"temperature": 0.8, "top_p": 0.95, "max_tokens": 64, "seed": 1}})
        s = get_sampler(spec)
        s.load()
        s.generate(reqs[:8])  # warm-up
        t0 = time.perf_counter()
        out = s.generate(reqs)
        dt = time.perf_counter() - t0
        toks = sum(g.completion_tokens or 0 for gens in out for g in gens)
        assert all(len(g) == 4 and all(x.error is None for x in g) for g in out)
        res[cb] = toks / dt
        print(f"continuous_batching={cb}: {s.version}  {toks} tokens in {dt:.2f}s = "
              f"{toks / dt:,.0f} tok/s")
        s.close()
    print("fallback warnings:", warnings or "none")
    print(f"ratio: {res['on'] / res['off']:.2f}")


if __name__ == "__main__":
    main()
