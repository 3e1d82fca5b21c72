"""The vLLM backend against the fake ``vllm`` in tests/fake_vllm (vLLM is not installable in CI)."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from fusedata.backends import Request, get_sampler
from fusedata.recipe import ModelSpec

FAKE = Path(__file__).parent / "fake_vllm"


def _drop_vllm_modules() -> None:
    for name in [m for m in sys.modules if m == "vllm" or m.startswith("vllm.")]:
        del sys.modules[name]


@pytest.fixture
def fake_vllm(monkeypatch):
    """Put the fake first on sys.path; returns the imported fake module."""
    _drop_vllm_modules()
    monkeypatch.syspath_prepend(str(FAKE))
    mod = importlib.import_module("vllm")
    assert mod.__version__.endswith("+fake")
    mod.LLM.LOG.clear()
    yield mod
    _drop_vllm_modules()


def _spec(path, **kw) -> ModelSpec:
    d = {"name": "big", "backend": "vllm", "path": str(path),
         "sampling": {"temperature": 0.7, "top_p": 0.8, "repetition_penalty": 1.05,
                      "max_tokens": 12, "seed": 3},
         "vllm": {"tensor_parallel_size": 4, "gpu_memory_utilization": 0.85,
                  "max_model_len": 256, "enable_prefix_caching": True}}
    d.update(kw)
    return ModelSpec.model_validate(d)


def _req(text: str, n: int, key: str | None = None) -> Request:
    return Request(messages=[{"role": "user", "content": text}], n=n, seed=3, key=key or text)


def test_whole_shard_in_one_call_with_n_per_prompt(fake_vllm, tiny_models):
    s = get_sampler(_spec(tiny_models["policy-a"]))
    s.load()
    reqs = [_req("hello", 3), _req("solve 2x=4", 5), _req("skip me", 0), _req("code", 8)]
    out = s.generate(reqs)
    assert [len(g) for g in out] == [3, 5, 0, 8]
    log = fake_vllm.LLM.LOG
    init = [e for e in log if e[0] == "init"]
    assert len(init) == 1
    kw = init[0][1]
    assert kw["tensor_parallel_size"] == 4 and kw["gpu_memory_utilization"] == 0.85
    assert kw["max_model_len"] == 256 and kw["enable_prefix_caching"] is True
    assert kw["dtype"] == "auto" and kw["seed"] == 3
    assert [e for e in log if e[0] == "generate"] == [("generate", 3, [3, 5, 8])]
    for gens in out:
        for g in gens:
            assert g.finish_reason in ("stop", "length") and g.error is None
            assert g.prompt_tokens > 0 and 0 < g.completion_tokens <= 13
            if g.finish_reason == "length":
                assert g.completion_tokens == 12
    # the n samples of one prompt differ (one seed per prompt, one sample per index)
    assert len({g.text for g in out[3]}) > 1
    assert s.version == "vllm-0.0.0+fake"


def test_prompt_seed_is_independent_of_batch(fake_vllm, tiny_models):
    s = get_sampler(_spec(tiny_models["policy-a"]))
    s.load()
    alone = s.generate([_req("b", 2)])[0]
    mixed = s.generate([_req("a", 1), _req("b", 2), _req("c", 4)])[1]
    assert [g.text for g in alone] == [g.text for g in mixed]
    other_seed = get_sampler(_spec(tiny_models["policy-a"],
                                   sampling={"max_tokens": 12, "seed": 4}))
    other_seed.load()
    assert [g.text for g in other_seed.generate([_req("b", 2)])[0]] != [g.text for g in alone]


def test_too_long_prompt_is_an_error_row_not_a_failed_call(fake_vllm, tiny_models):
    s = get_sampler(_spec(tiny_models["policy-a"], vllm={"max_model_len": 40}))
    s.load()
    out = s.generate([_req("short", 2), _req("long " * 60, 2)])
    assert [g.finish_reason for g in out[0]] == ["stop", "stop"] or all(
        g.finish_reason in ("stop", "length") for g in out[0])
    assert [g.finish_reason for g in out[1]] == ["error", "error"]
    assert "prompt_too_long" in out[1][0].error and "max_model_len 40" in out[1][0].error


def test_close_releases_the_engine(fake_vllm, tiny_models):
    from vllm.distributed import parallel_state

    parallel_state.CALLS.clear()
    s = get_sampler(_spec(tiny_models["policy-a"]))
    s.load()
    engine = s.llm.llm_engine
    s.close()
    assert s.llm is None and not engine.alive
    assert ("shutdown",) in fake_vllm.LLM.LOG
    assert parallel_state.CALLS == ["destroy_model_parallel", "destroy_distributed_environment"]
    s.close()  # idempotent


def test_missing_vllm_names_the_extra(monkeypatch, tiny_models):
    _drop_vllm_modules()
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    s = get_sampler(_spec(tiny_models["policy-a"]))
    with pytest.raises(ImportError, match=r"fusedata\[vllm\]"):
        s.load()


def test_vllm_settings_are_strict():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="tensor_parallel"):
        ModelSpec.model_validate({"name": "m", "backend": "vllm", "path": "x",
                                  "vllm": {"tensor_parallel": 2}})
    with pytest.raises(ValidationError, match="backend is 'transformers'"):
        ModelSpec.model_validate({"name": "m", "path": "x", "vllm": {}})


# --------------------------------------------------------------------------- signatures
FAKE_SURFACE = [("LLM", "__init__"), ("LLM", "generate"), ("LLM", "chat"),
                ("LLM", "get_tokenizer"), ("SamplingParams", None),
                ("RequestOutput", "__init__"), ("CompletionOutput", None)]


def _params(obj) -> dict[str, inspect.Parameter]:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):  # msgspec structs in some versions
        return {f: inspect.Parameter(f, inspect.Parameter.KEYWORD_ONLY)
                for f in getattr(obj, "__struct_fields__", ())}
    return {k: p for k, p in sig.parameters.items() if k != "self"}


def _real_vllm_available() -> bool:
    code = "import vllm, sys; sys.exit(0 if not vllm.__version__.endswith('+fake') else 1)"
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


@pytest.mark.skipif(not _real_vllm_available(), reason="real vllm is not installed here")
def test_fake_matches_real_vllm_signatures():
    """Every parameter the fake accepts exists, under the same name, in the real vllm."""
    _drop_vllm_modules()
    real = importlib.import_module("vllm")
    real_fields: set[str] = set()
    try:
        from vllm.engine.arg_utils import EngineArgs

        real_fields = set(getattr(EngineArgs, "__dataclass_fields__", {}))
    except ImportError:
        pass
    fake_src = {}
    sys.path.insert(0, str(FAKE))
    try:
        _drop_vllm_modules()
        fake = importlib.import_module("vllm")
        for cls, meth in FAKE_SURFACE:
            fake_src[(cls, meth)] = _params(getattr(getattr(fake, cls), meth)
                                            if meth else getattr(fake, cls))
    finally:
        sys.path.remove(str(FAKE))
        _drop_vllm_modules()
    real = importlib.import_module("vllm")
    for (cls, meth), fparams in fake_src.items():
        robj = getattr(real, cls) if not meth else getattr(getattr(real, cls), meth)
        rparams = _params(robj)
        var_kw = any(p.kind is p.VAR_KEYWORD for p in rparams.values())
        for name, p in fparams.items():
            if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                continue
            ok = name in rparams or (var_kw and cls == "LLM" and name in real_fields)
            assert ok, f"fake vllm {cls}.{meth or ''}({name}) does not exist in vllm " \
                       f"{real.__version__}"
    # the engine settings the backend passes through **kwargs are real EngineArgs fields
    if real_fields:
        for f in ("max_model_len", "enable_prefix_caching"):
            assert f in real_fields
