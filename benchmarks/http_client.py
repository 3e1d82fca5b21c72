"""Requests/s and client CPU per request of the ``openai`` backend (issue 19).

Starts the canned OpenAI-compatible server of ``benchmarks/scale.py`` on
127.0.0.1 (``--servers`` processes, one port each), sends ``--requests``
one-sample requests through :class:`fusedata.backends.openai_http.OpenAISampler`
at ``--concurrency``, and prints requests/s and the client's CPU time per
request.  Bounded: at most ``--requests`` requests, local addresses only.

    python benchmarks/http_client.py [--requests 20000] [--concurrency 128] [--servers 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import start_server  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=128)
    ap.add_argument("--servers", type=int, default=1)
    args = ap.parse_args()

    from fusedata.backends import Request, get_sampler
    from fusedata.recipe import ModelSpec

    procs = [start_server() for _ in range(args.servers)]
    try:
        spec = ModelSpec.model_validate({
            "name": "canned", "backend": "openai", "path": "canned",
            "http": {"base_urls": [f"http://127.0.0.1:{port}/v1" for _, port in procs],
                     "concurrency": args.concurrency},
            "sampling": {"max_tokens": 16, "seed": 1}, "samples": {"default": 1}})
        sampler = get_sampler(spec)
        sampler.load()
        reqs = [Request(messages=[{"role": "user", "content": f"q{i}"}], n=1, seed=0, key=f"p{i}")
                for i in range(args.requests)]
        sampler.generate(reqs[:200])  # warm-up: connections, imports
        c0, t0 = time.process_time(), time.perf_counter()
        out = sampler.generate(reqs)
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        assert len(out) == len(reqs) and all(len(g) == 1 and g[0].finish_reason == "stop"
                                             for g in out)
    finally:
        for p, _ in procs:
            p.terminate()
            p.wait()
    print(f"{args.requests} requests, concurrency {args.concurrency}, {args.servers} server(s): "
          f"{args.requests / wall:.0f} requests/s, client CPU {cpu / args.requests * 1e3:.2f} "
          f"ms/request")


if __name__ == "__main__":
    main()
