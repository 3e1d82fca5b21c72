"""The OpenAI-compatible HTTP backend (``backend: openai``).

For models served elsewhere: ``vllm serve``, SGLang, TGI, ``transformers
serve`` or a hosted API.  ``path`` is the model name sent in each request; the
``http:`` settings say where and how (see :class:`~fusedata.recipe.HTTPOptions`).

How a shard is sent:

* every prompt becomes ``POST {base_url}/chat/completions`` with ``n`` samples
  (at most ``n_per_request`` per request).  Servers that ignore ``n`` (they
  answer with fewer choices) get follow-up requests for the missing samples,
  each with its own seed, so every prompt ends with exactly its ``n`` samples;
* at most ``concurrency`` requests are in flight (one asyncio loop), spread
  over all ``base_urls``: each request goes to the server with the fewest
  requests in flight, skipping servers that just failed.  Each server has its
  own connection pools, of at most :data:`POOL_CONNECTIONS` connections each
  (bounded per host): httpcore's bookkeeping per request grows with the
  connections of its pool (1.15 ms of client CPU per request at concurrency 8,
  6.7 ms at 64, 8 ms at 128), so many small pools keep it at the small-pool cost
  (``benchmarks/http_client.py``, concurrency 128 against a canned server on
  127.0.0.1: 2.5 -> 0.7 ms of client CPU, 374 -> 1,368 requests/s);
* 429, 5xx, timeouts and connection errors are retried on the next healthy
  server; a failing server cools down with exponential backoff
  (``backoff_s * 2**(consecutive failures - 1)``, capped at ``max_backoff_s``,
  with jitter), and when all servers are cooling down requests wait.  When the retries run out the shard is
  aborted with an exception: the shards already written stay, and a re-run
  resumes with the missing ones (so a dead cluster never produces holes or
  duplicates).  Other errors (400: e.g. a prompt too long for the server)
  concern one prompt and become ``finish_reason: error`` rows with the reason.

The API key is read from the environment variable named by ``api_key_env``;
it is sent as a bearer token and never logged or written to records.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..recipe import ModelSpec
from .base import Generation, Request, Sampler, request_seed

log = logging.getLogger("fusedata")

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
#: connections per httpx pool (see the module docstring: small pools cost less CPU)
POOL_CONNECTIONS = 4


def import_httpx() -> Any:
    try:
        import httpx
    except ImportError:
        raise ImportError("backend 'openai' needs httpx: pip install 'fusedata[http]'") from None
    return httpx


class ServerUnavailable(RuntimeError):
    """Retries exhausted on transient errors: the shard is aborted (a re-run resumes)."""


class RequestRejected(Exception):
    """The server refused this one request (4xx other than 429): recorded as an error row."""


@dataclass
class _Server:
    url: str
    in_flight: int = 0
    fails: int = 0  # consecutive failures: sets the cool-down
    down_until: float = 0.0
    order: int = 0
    #: this server's connection pools and the requests in flight on each
    pools: list[Any] = field(default_factory=list)
    pool_load: list[int] = field(default_factory=list)

    def pool(self) -> int:
        """The least busy of this server's pools (a request's connection comes from it)."""
        return min(range(len(self.pools)), key=self.pool_load.__getitem__)


def quiet_httpx() -> None:
    """httpx logs one INFO line per request (96k lines in a 32k-prompt build): keep them
    for ``--verbose`` (DEBUG) runs only.  A level set on the ``httpx`` logger by the
    user is left alone."""
    lg = logging.getLogger("httpx")
    if lg.level == logging.NOTSET and not log.isEnabledFor(logging.DEBUG):
        lg.setLevel(logging.WARNING)


class OpenAISampler(Sampler):
    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        assert spec.http is not None
        self.opts = spec.http
        self.version = "openai-http"
        self._headers: dict[str, str] = {}
        self._ssl: Any = None
        self.stats = {"requests": 0, "retries": 0}

    def load(self) -> None:
        httpx = import_httpx()

        self.version = f"openai-http/httpx-{httpx.__version__}"
        quiet_httpx()
        # one TLS context for every pool of every call: httpx builds one per client
        # otherwise, loading the CA bundle each time (~70 ms, x pools x shards)
        self._ssl = httpx.create_ssl_context()
        self._headers = {"Content-Type": "application/json"}
        env = self.opts.api_key_env
        if env:
            key = os.environ.get(env)
            if not key:
                raise RuntimeError(f"model {self.spec.name!r}: http.api_key_env names "
                                   f"environment variable {env!r}, which is not set")
            self._headers["Authorization"] = f"Bearer {key}"

    def close(self) -> None:
        self._headers = {}
        self._ssl = None

    # ------------------------------------------------------------------ public
    def generate(self, requests: list[Request]) -> list[list[Generation]]:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._generate_all(requests))
        # called from inside an event loop (a notebook): run ours in a thread
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["v"] = asyncio.run(self._generate_all(requests))
            except BaseException as e:  # re-raised in the caller's thread
                box["e"] = e

        t = threading.Thread(target=target)
        t.start()
        t.join()
        if "e" in box:
            raise box["e"]
        return box["v"]

    # ------------------------------------------------------------------ internals
    def _body(self, r: Request, n: int, seed: int) -> dict[str, Any]:
        sp = self.spec.sampling
        body: dict[str, Any] = {"model": self.spec.path, "messages": r.messages,
                                "max_tokens": sp.max_tokens, "temperature": sp.temperature,
                                "top_p": sp.top_p, "seed": seed}
        if n != 1:
            body["n"] = n
        if self.opts.sampling_extensions:
            if sp.top_k:
                body["top_k"] = sp.top_k
            if sp.repetition_penalty != 1.0:
                body["repetition_penalty"] = sp.repetition_penalty
        body.update(self.opts.extra_body)
        return body

    async def _generate_all(self, requests: list[Request]) -> list[list[Generation]]:
        httpx = import_httpx()

        servers = [_Server(u.rstrip("/"), order=i) for i, u in enumerate(self.opts.base_urls)]
        conc = self.opts.concurrency
        sem = asyncio.Semaphore(conc)
        # every server may get all `conc` requests (the others down): pools for that many,
        # POOL_CONNECTIONS connections each; a pool opens connections only when used
        n_pools = -(-conc // POOL_CONNECTIONS)
        per = min(conc, POOL_CONNECTIONS)
        limits = httpx.Limits(max_connections=per, max_keepalive_connections=per)
        for s in servers:
            s.pools = [httpx.AsyncClient(timeout=self.opts.timeout_s, limits=limits,
                                         headers=self._headers, verify=self._ssl or True)
                       for _ in range(n_pools)]
            s.pool_load = [0] * n_pools
        try:
            tasks = [asyncio.create_task(self._one(servers, sem, r)) for r in requests]
            try:
                return list(await asyncio.gather(*tasks))
            except BaseException:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
        finally:
            for s in servers:
                for c in s.pools:
                    await c.aclose()

    async def _one(self, servers: list[_Server], sem: asyncio.Semaphore,
                   r: Request) -> list[Generation]:
        if r.n == 0:
            return []
        gens: list[Generation] = []
        per = self.opts.n_per_request or r.n
        base = request_seed(self.spec.sampling.seed, r.key, r.seed)
        calls = 0
        while len(gens) < r.n:
            want = min(per, r.n - len(gens))
            seed = (base + len(gens)) & 0x7FFFFFFF  # sample k's seed: stable across runs
            try:
                async with sem:
                    reply = await self._post(servers, self._body(r, want, seed))
            except RequestRejected as e:
                return gens + [Generation("", "error", error=str(e))] * (r.n - len(gens))
            got = self._parse(reply)
            if not got:
                return gens + [Generation("", "error", error="server returned no choices")] * (
                    r.n - len(gens))
            gens.extend(got[:want])
            calls += 1
            if calls > 4 * r.n:  # a server that keeps answering with nothing useful
                raise ServerUnavailable(f"model {self.spec.name!r}: no progress on prompt {r.key}")
        return gens

    def _parse(self, reply: dict[str, Any]) -> list[Generation]:
        choices = sorted(reply.get("choices") or [], key=lambda c: c.get("index", 0))
        usage = reply.get("usage") or {}
        p_tok = int(usage.get("prompt_tokens") or 0)
        c_tok = usage.get("completion_tokens")
        out = []
        for c in choices:
            text = (c.get("message") or {}).get("content") or ""
            reason = c.get("finish_reason")
            # one usage total for several choices cannot be split honestly: None
            toks = int(c_tok) if c_tok is not None and len(choices) == 1 else None
            if reason in ("stop", "length", "eos", "eos_token"):
                out.append(Generation(text, "length" if reason == "length" else "stop",
                                      p_tok, toks))
            else:
                out.append(Generation(text, "error", p_tok, toks,
                                      error=f"finish_reason={reason!r}"))
        return out

    def _pick(self, servers: list[_Server]) -> _Server | None:
        """The healthy server with the fewest requests in flight (None: all cooling down)."""
        now = time.monotonic()
        up = [s for s in servers if s.down_until <= now]
        if not up:
            return None
        return min(up, key=lambda s: (s.fails, s.in_flight, s.order))

    async def _post(self, servers: list[_Server], body: dict[str, Any]
                    ) -> dict[str, Any]:
        httpx = import_httpx()

        o = self.opts
        last = ""
        for attempt in range(o.max_retries + 1):
            s = self._pick(servers)
            if s is None:  # every server failed recently: wait for the first to cool down
                wait = min(x.down_until for x in servers) - time.monotonic()
                await asyncio.sleep(max(0.0, wait))
                s = self._pick(servers) or min(servers, key=lambda x: x.down_until)
            s.in_flight += 1
            k = s.pool()
            s.pool_load[k] += 1
            self.stats["requests"] += 1
            try:
                resp = await s.pools[k].post(f"{s.url}/chat/completions", json=body)
                if resp.status_code == 200:
                    reply = resp.json()
                    s.fails = 0
                    return reply
                detail = resp.text[:300]
                if resp.status_code not in RETRY_STATUS:
                    raise RequestRejected(f"http {resp.status_code} from {s.url}: {detail}")
                last = f"http {resp.status_code} from {s.url}: {detail}"
            except (httpx.TimeoutException, httpx.TransportError, ValueError) as e:
                # ValueError: a truncated/garbled JSON body from a dying server
                last = f"{type(e).__name__} from {s.url}: {e}"
            finally:
                s.in_flight -= 1
                s.pool_load[k] -= 1
            if attempt == o.max_retries:
                break
            # exponential backoff per server (its consecutive failures), with jitter
            # that affects timing only, never the results
            s.fails += 1
            delay = min(o.max_backoff_s, o.backoff_s * 2 ** (s.fails - 1))
            delay *= 0.5 + random.random() / 2
            s.down_until = max(s.down_until, time.monotonic() + delay)
            self.stats["retries"] += 1
            log.warning("model %s: %s; retry %d/%d (server cools down %.1fs)", self.spec.name,
                        last, attempt + 1, o.max_retries, delay)
        raise ServerUnavailable(f"model {self.spec.name!r}: {o.max_retries} retries exhausted "
                                f"({last}); finished shards are kept, re-run to resume")
