"""The OpenAI-compatible HTTP backend against a real ``transformers serve`` on 127.0.0.1.

One server (a tiny random-weight policy) is started per module; the fault
tests kill it with SIGKILL mid-build and start it again on the same port.
Retries, API keys and ``n`` handling are also checked against an in-process
``httpx.MockTransport`` where a scripted server is clearer than a real one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import polars as pl
import pytest

from fusedata.backends import Request, get_sampler
from fusedata.backends.openai_http import ServerUnavailable
from fusedata.build import build
from fusedata.recipe import ModelSpec, load_recipe

from .conftest import demo_recipe_dict, write_recipe

SERVE = shutil.which("transformers", path=os.path.dirname(sys.executable)) or shutil.which(
    "transformers")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``transformers serve MODEL`` as a subprocess we can kill and restart."""

    def __init__(self, model: Path, log: Path):
        self.model, self.log, self.port = model, log, _free_port()
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 120) -> None:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        self.proc = subprocess.Popen(
            [SERVE, "serve", str(self.model), "--host", "127.0.0.1", "--port", str(self.port),
             "--device", "cpu", "--log-level", "warning"],
            stdout=open(self.log, "ab"), stderr=subprocess.STDOUT, env=env)
        self.starts += 1
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"transformers serve exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("transformers serve did not come up")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tiny_models, tmp_path_factory):
    if SERVE is None:
        pytest.skip("transformers serve is not installed (pip install 'transformers[serving]')")
    # transformers serve samples only when the model's generation_config says do_sample
    # (true for real instruct models; the tiny stand-in is saved without it)
    folder = tmp_path_factory.mktemp("serve")
    model = folder / "policy-b-sampling"
    shutil.copytree(tiny_models["policy-b"], model)
    gc = json.loads((model / "generation_config.json").read_text())
    (model / "generation_config.json").write_text(json.dumps({**gc, "do_sample": True}))
    srv = Server(model, folder / "serve.log")
    srv.start()
    yield srv
    srv.kill()


def _spec(model: str, urls: list[str], **http) -> ModelSpec:
    return ModelSpec.model_validate({
        "name": "served", "backend": "openai", "path": model,
        "sampling": {"temperature": 0.8, "top_p": 0.95, "max_tokens": 16, "seed": 5},
        "http": {"base_urls": urls, "concurrency": 8, "backoff_s": 0.05, "max_backoff_s": 0.2,
                 "sampling_extensions": False, **http}})


def _req(text: str, n: int) -> Request:
    return Request(messages=[{"role": "user", "content": text}], n=n, seed=5, key=text)


# --------------------------------------------------------------------------- real server
def test_real_server_n_samples_and_failover(server, tiny_models):
    dead = f"http://127.0.0.1:{_free_port()}/v1"  # nothing listens: connection refused
    s = get_sampler(_spec(str(server.model), [dead, server.url]))
    s.load()
    reqs = [_req(f"question {i}", 3) for i in range(6)] + [_req("none", 0)]
    out = s.generate(reqs)
    assert [len(g) for g in out] == [3] * 6 + [0]
    for gens in out[:6]:
        for g in gens:
            assert g.finish_reason in ("stop", "length"), g.error
            assert g.prompt_tokens > 0 and g.completion_tokens is not None
    # transformers serve ignores `n`: the backend asked again, one seed per sample
    assert len({g.text for gens in out[:6] for g in gens}) > 6
    assert s.stats["retries"] >= 1  # the dead URL was tried, then avoided
    # reproducible when requests are serial: transformers serve seeds torch's global
    # generator per request, so concurrent requests interleave (vLLM seeds per request)
    serial = get_sampler(_spec(str(server.model), [server.url], concurrency=1))
    serial.load()
    once, twice = (serial.generate([_req("question 2", 2)])[0] for _ in range(2))
    assert [g.text for g in once] == [g.text for g in twice]


def test_real_server_rejection_is_an_error_row(server, tiny_models):
    # transformers serve rejects fields it does not know (422): one prompt's problem,
    # kept as error rows, not retried and not fatal
    spec = ModelSpec.model_validate({
        "name": "served", "backend": "openai", "path": str(server.model),
        "sampling": {"repetition_penalty": 1.05, "max_tokens": 8},
        "http": {"base_urls": [server.url]}})
    s = get_sampler(spec)
    s.load()
    out = s.generate([_req("hi", 2)])
    assert [g.finish_reason for g in out[0]] == ["error", "error"]
    assert "422" in out[0][0].error and "repetition_penalty" in out[0][0].error
    assert s.stats["retries"] == 0


# --------------------------------------------------------------------------- scripted server
def _mock(monkeypatch, handler):
    real = httpx.AsyncClient

    def client(*a, **kw):
        kw["transport"] = httpx.MockTransport(handler)
        return real(*a, **kw)

    monkeypatch.setattr(httpx, "AsyncClient", client)


def _reply(n: int, text: str = "ok", reason: str = "stop") -> dict:
    return {"choices": [{"index": i, "message": {"role": "assistant", "content": f"{text}{i}"},
                         "finish_reason": reason} for i in range(n)],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3 * n}}


def test_retries_429_and_5xx_then_succeeds(monkeypatch):
    calls: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        calls.append(req.url.host)
        if len(calls) == 1:
            return httpx.Response(429, text="slow down")
        if len(calls) == 2:
            return httpx.Response(503, text="overloaded")
        if len(calls) == 3:
            raise httpx.ConnectError("refused")
        return httpx.Response(200, json=_reply(json.loads(req.content).get("n", 1)))

    _mock(monkeypatch, handler)
    s = get_sampler(_spec("m", ["http://a/v1", "http://b/v1"], n_per_request=4))
    s.load()
    out = s.generate([_req("x", 6)])
    assert [g.text for g in out[0]] == ["ok0", "ok1", "ok2", "ok3", "ok0", "ok1"]
    assert s.stats["retries"] == 3
    assert set(calls) == {"a", "b"}  # load-balanced / failed over across both servers
    # one usage total for 4 choices cannot be split: unknown, not invented
    assert out[0][0].completion_tokens is None and out[0][0].prompt_tokens == 7


def test_retries_exhausted_aborts_the_shard(monkeypatch):
    _mock(monkeypatch, lambda req: httpx.Response(500, text="down"))
    s = get_sampler(_spec("m", ["http://a/v1"], max_retries=2))
    s.load()
    with pytest.raises(ServerUnavailable, match="2 retries exhausted"):
        s.generate([_req("x", 1)])


def test_api_key_from_env_is_sent_and_never_recorded(monkeypatch):
    seen: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req.headers.get("authorization", ""))
        body = json.loads(req.content)
        assert "n" not in body or body["n"] == 2
        return httpx.Response(200, json=_reply(body.get("n", 1), reason="length"))

    _mock(monkeypatch, handler)
    spec = _spec("m", ["http://a/v1"], api_key_env="FUSEDATA_TEST_KEY")
    s = get_sampler(spec)
    with pytest.raises(RuntimeError, match="FUSEDATA_TEST_KEY") as e:
        s.load()
    monkeypatch.setenv("FUSEDATA_TEST_KEY", "sk-secret-123")
    s.load()
    out = s.generate([_req("x", 2)])
    assert seen == ["Bearer sk-secret-123"]
    assert all(g.finish_reason == "length" for g in out[0])
    assert "sk-secret" not in repr(out) and "sk-secret" not in str(e.value)
    assert "sk-secret" not in json.dumps(spec.model_dump(mode="json"))


def test_short_answers_are_topped_up_with_more_requests(monkeypatch):
    seeds: list[int] = []

    def handler(req: httpx.Request) -> httpx.Response:
        body = json.loads(req.content)
        seeds.append(body["seed"])
        return httpx.Response(200, json=_reply(1, text=f"s{body['seed']}-"))

    _mock(monkeypatch, handler)
    s = get_sampler(_spec("m", ["http://a/v1"]))
    s.load()
    out = s.generate([_req("x", 3)])
    assert len(out[0]) == 3 and len(set(seeds)) == 3
    assert [g.text for g in out[0]] == [f"s{x}-0" for x in seeds]


# --------------------------------------------------------------------------- builds
MATH = [("What is 2 + 3?", "2 + 3 = 5, so the answer is \\boxed{5}.", "5"),
        ("What is 7 * 6?", "7 * 6 = 42. The answer is \\boxed{42}.", "42"),
        ("Compute 10 - 4.", "10 - 4 = 7, so \\boxed{7}.", "6"),
        ("What is 9 / 3?", None, "3")]


def _math_source(tmp_path: Path) -> dict:
    f = tmp_path / "omi.jsonl"
    with open(f, "w") as fh:
        for q, sol, ans in MATH:
            fh.write(json.dumps({"problem": q, "generated_solution": sol,
                                 "expected_answer": ans}) + "\n")
    return {"name": "omi", "path": str(f), "category": "math",
            "fields": {"prompt": "problem", "response": "generated_solution",
                       "gold": "expected_answer"}}


def _responses(res, model: str) -> pl.DataFrame:
    folders = [r.folder for n, r in res.stages if n == f"verify[{model}]"]
    assert folders, f"no verify stage for {model}"
    return pl.read_parquet(sorted(folders[0].glob("shard-*.parquet")))


def test_recipe_mixing_all_four_backends_builds(server, tiny_models, tmp_path, monkeypatch):
    from .test_backend_vllm import FAKE, _drop_vllm_modules

    _drop_vllm_modules()
    monkeypatch.syspath_prepend(str(FAKE))
    d = demo_recipe_dict(tiny_models, tmp_path / "out")
    d["prompts"] = [d["prompts"][0], _math_source(tmp_path)]  # keep it small: 2 sources
    sampling = {"temperature": 0.8, "top_p": 0.95, "max_tokens": 8, "seed": 7}
    d["models"] = [
        {"name": "hf", "path": str(tiny_models["policy-a"]), "sampling": sampling,
         "samples": {"default": 2, "math": 2}, "batch_size": 32},
        {"name": "served", "backend": "openai", "path": str(server.model), "sampling": sampling,
         "samples": {"default": 2, "math": 0},
         "http": {"base_urls": [server.url], "concurrency": 8, "sampling_extensions": False}},
        {"name": "big", "backend": "vllm", "path": str(tiny_models["policy-b"]),
         "sampling": sampling, "samples": {"default": 2, "math": 3},
         "vllm": {"max_model_len": 512}},
        {"name": "llama-405b", "backend": "import", "sources": ["omi"],
         "import": {"generator": "Llama-3.1-405B-Instruct (OpenMathInstruct-2)"}},
    ]
    rec = write_recipe(tmp_path / "mixed.yaml", d)
    try:
        res = build(load_recipe(rec), rec, progress=False)
    finally:
        _drop_vllm_modules()
    assert res.files["sft"] and res.files["dpo"]
    counts = {n: r.rows_out for n, r in res.stages if n.startswith("sample[")}
    n_inst = counts["sample[served]"] // 2
    assert counts == {"sample[hf]": 2 * n_inst + 2 * 4, "sample[served]": 2 * n_inst,
                      "sample[big]": 2 * n_inst + 3 * 4, "sample[llama-405b]": 4}
    for model, prefix in (("hf", "transformers:"), ("served", "openai:openai-http"),
                          ("big", "vllm:vllm-0.0.0+fake"),
                          ("llama-405b", "import:import:Llama-3.1-405B")):
        df = _responses(res, model)
        assert df["sampler"].str.starts_with(prefix).all(), (model, df["sampler"][0])
        assert (df["model"] == model).all() and df["response_id"].is_unique().all()
        ok = df.filter(pl.col("finish_reason") != "error")
        assert ok["score"].is_not_null().all()  # scored like any sampled response
    imp = _responses(res, "llama-405b").sort("response")
    # the existing solutions, verbatim, attributed to the named model, scored and verified
    assert sorted(imp.filter(pl.col("finish_reason") == "stop")["response"].to_list()) == \
        sorted(s for _, s, _ in MATH if s)
    missing = imp.filter(pl.col("finish_reason") == "error")
    assert missing.height == 1 and "no response" in missing["error"][0]
    assert imp["verdict"].is_not_null().all()  # went through the verify stage
    assert not any(isinstance(v, str) and "sk-" in v for v in imp["sampler"])


def _many(tmp_path: Path, n: int) -> dict:
    f = tmp_path / "many.jsonl"
    with open(f, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({"q": f"Tell me fact number {i}."}) + "\n")
    return {"name": "many", "path": str(f), "fields": {"prompt": "q"}, "category": "instruction"}


def _served_recipe(server: Server, tiny_models, tmp_path: Path, name: str, **http) -> Path:
    d = demo_recipe_dict(tiny_models, tmp_path / name)
    d["prompts"] = [_many(tmp_path, 12)]
    d["models"] = [{"name": "served", "backend": "openai", "path": str(server.model),
                    "sampling": {"max_tokens": 12, "seed": 3}, "samples": {"default": 2},
                    "http": {"base_urls": [server.url], "concurrency": 4,
                             "sampling_extensions": False, **http}}]
    d["executor"] = {"shard_size": 2}
    return write_recipe(tmp_path / f"{name}.yaml", d)


def _check_complete(out: Path, n_prompts: int, k: int) -> pl.DataFrame:
    files = sorted((out / ".work" / "sample").glob("served-*/shard-*.parquet"))
    df = pl.read_parquet(files)
    assert df.height == n_prompts * k
    assert df["response_id"].is_unique().all()
    per = df.group_by("prompt_id").agg(pl.col("sample_idx").sort())
    assert per.height == n_prompts
    assert all(v == list(range(k)) for v in per["sample_idx"].to_list())
    assert (df["finish_reason"] != "error").all(), df.filter(pl.col("error").is_not_null())
    return df


def _kill_when(server: Server, folder: Path, shards: int, restart: bool, box: dict) -> None:
    deadline = time.time() + 120
    while time.time() < deadline:
        done = list(folder.glob("served-*/shard-*.parquet"))
        if len(done) >= shards:
            box["killed_at"] = len(done)
            box["done_marker"] = bool(list(folder.glob("served-*/_DONE.json")))
            server.kill()
            if restart:
                time.sleep(0.5)
                server.start()
            return
        time.sleep(0.005)


def test_server_killed_mid_build_and_restarted_build_finishes(server, tiny_models, tmp_path):
    rec = _served_recipe(server, tiny_models, tmp_path, "retry", backoff_s=0.2,
                         max_backoff_s=1.0, max_retries=200)
    box: dict = {}
    t = threading.Thread(target=_kill_when,
                         args=(server, tmp_path / "retry" / ".work" / "sample", 2, True, box))
    t.start()
    build(load_recipe(rec), rec, progress=False, stages=("sample",))
    t.join()
    assert box.get("killed_at") is not None and not box["done_marker"], box
    _check_complete(tmp_path / "retry", 12, 2)


def test_retries_exhausted_then_rerun_resumes_without_duplicates(server, tiny_models, tmp_path,
                                                                 caplog):
    rec = _served_recipe(server, tiny_models, tmp_path, "resume", backoff_s=0.05,
                         max_backoff_s=0.1, max_retries=3)
    box: dict = {}
    t = threading.Thread(target=_kill_when,
                         args=(server, tmp_path / "resume" / ".work" / "sample", 2, False, box))
    t.start()
    with pytest.raises(ServerUnavailable, match="re-run to resume"):
        build(load_recipe(rec), rec, progress=False, stages=("sample",))
    t.join()
    assert box.get("killed_at") is not None and not box["done_marker"], box
    server.start()
    caplog.set_level("INFO", logger="fusedata")
    build(load_recipe(rec), rec, progress=False, stages=("sample",))
    assert "resuming" in caplog.text
    _check_complete(tmp_path / "resume", 12, 2)
