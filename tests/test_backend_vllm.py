"""The vLLM backend against the fake ``vllm`` in tests/fake_vllm (vLLM is not installable in CI).

The fake follows vLLM 0.33's behaviour where fusedata depends on it (see
tests/fake_vllm/README.md); ``benchmarks/vllm_contract.py`` checks its names
and signatures against the real wheel.  Each issue-22 point has tests here:
release order (1), sampling validation at recipe load and per prompt (2), what
seeds do and do not guarantee (3), the chat template source (4), and the fake
itself (5).
"""

from __future__ import annotations

import gc
import importlib
import logging
import sys
import textwrap
import types
from pathlib import Path

import pytest

from fusedata.backends import Request, get_sampler
from fusedata.recipe import ModelSpec, RecipeError, parse_recipe

FAKE = Path(__file__).parent / "fake_vllm"


def _drop_vllm_modules() -> None:
    for name in [m for m in sys.modules if m == "vllm" or m.startswith("vllm.")]:
        del sys.modules[name]


@pytest.fixture
def fake_vllm(monkeypatch):
    """Put the fake first on sys.path; returns the imported fake module."""
    _drop_vllm_modules()
    monkeypatch.syspath_prepend(str(FAKE))
    monkeypatch.delenv("VLLM_BATCH_INVARIANT", raising=False)
    mod = importlib.import_module("vllm")
    assert mod.__version__.endswith("+fake")
    importlib.import_module("vllm._record").clear()
    yield mod
    _drop_vllm_modules()


def _calls(kind: str | None = None) -> list:
    calls = importlib.import_module("vllm._record").CALLS
    return [c for c in calls if kind is None or c[0] == kind]


def _spec(path, **kw) -> ModelSpec:
    d = {"name": "big", "backend": "vllm", "path": str(path),
         "sampling": {"temperature": 0.7, "top_p": 0.8, "repetition_penalty": 1.05,
                      "max_tokens": 12, "seed": 3},
         "vllm": {"tensor_parallel_size": 4, "gpu_memory_utilization": 0.85,
                  "max_model_len": 256, "enable_prefix_caching": True}}
    d.update(kw)
    return ModelSpec.model_validate(d)


def _req(text: str, n: int, key: str | None = None, role: str = "user") -> Request:
    return Request(messages=[{"role": role, "content": text}], n=n, seed=3, key=key or text)


def test_whole_shard_in_one_call_with_n_per_prompt(fake_vllm, tiny_models):
    s = get_sampler(_spec(tiny_models["policy-a"]))
    s.load()
    reqs = [_req("hello", 3), _req("solve 2x=4", 5), _req("skip me", 0), _req("code", 8)]
    out = s.generate(reqs)
    assert [len(g) for g in out] == [3, 5, 0, 8]
    init = _calls("LLM")
    assert len(init) == 1
    kw = init[0][1]
    assert kw["tensor_parallel_size"] == 4 and kw["gpu_memory_utilization"] == 0.85
    assert kw["max_model_len"] == 256 and kw["enable_prefix_caching"] is True
    assert kw["dtype"] == "auto" and kw["seed"] == 3
    gen = _calls("generate")
    assert len(gen) == 1 and gen[0][1]["prompts"] == 3 and gen[0][1]["n"] == [3, 5, 8]
    for gens in out:
        for g in gens:
            assert g.finish_reason in ("stop", "length") and g.error is None
            assert g.prompt_tokens > 0 and 0 < g.completion_tokens <= 13
            if g.finish_reason == "length":
                assert g.completion_tokens == 12
    # the n samples of one prompt differ (one seed per prompt, one sample per index)
    assert len({g.text for g in out[3]}) > 1
    assert s.version == "vllm-0.0.0+fake"


# --------------------------------------------------------------------------- 3. seeds
def test_seed_is_per_prompt_but_samples_depend_on_the_batch(fake_vllm, tiny_models):
    """What we guarantee is the request: the same seed for a prompt in any shard or run.

    The samples are the same only for the same batch: vLLM (and the fake) are not
    batch invariant by default, so "b" alone and "b" among others may differ.
    """
    s = get_sampler(_spec(tiny_models["policy-a"]))
    s.load()
    alone = s.generate([_req("b", 2)])[0]
    mixed = s.generate([_req("a", 1), _req("b", 2), _req("c", 4)])[1]
    again = s.generate([_req("a", 1), _req("b", 2), _req("c", 4)])[1]
    seeds = [c[1]["seed"] for c in _calls("generate")]
    assert seeds[0][0] == seeds[1][1] == seeds[2][1]  # the same request for "b" every time
    assert len({seeds[1][0], seeds[1][1], seeds[1][2]}) == 3  # and its own seed per prompt
    assert [g.text for g in mixed] == [g.text for g in again]  # same batch, same samples
    assert [g.text for g in alone] != [g.text for g in mixed]  # another batch: not promised
    other_seed = get_sampler(_spec(tiny_models["policy-a"],
                                   sampling={"max_tokens": 12, "seed": 4}))
    other_seed.load()
    other_seed.generate([_req("b", 2)])
    assert _calls("generate")[-1][1]["seed"] != seeds[0]


def test_batch_invariant_mode_makes_samples_independent_of_the_batch(fake_vllm, tiny_models,
                                                                      monkeypatch):
    monkeypatch.setenv("VLLM_BATCH_INVARIANT", "1")
    s = get_sampler(_spec(tiny_models["policy-a"]))
    s.load()
    alone = s.generate([_req("b", 2)])[0]
    mixed = s.generate([_req("a", 1), _req("b", 2), _req("c", 4)])[1]
    assert [g.text for g in alone] == [g.text for g in mixed]


# --------------------------------------------------------------------------- max_model_len
def test_prompt_of_max_model_len_tokens_is_an_error_row_not_a_failed_call(fake_vllm,
                                                                          tiny_models):
    s = get_sampler(_spec(tiny_models["policy-a"], vllm={"max_model_len": 40}))
    s.load()
    short = _req("short", 2)
    # find a prompt that templates to exactly max_model_len tokens
    exact = next(r for k in range(1, 60)
                 if len(s.template((r := _req("x " * k, 2)).messages)) == 40)
    out = s.generate([short, exact, _req("long " * 60, 2)])
    assert all(g.finish_reason in ("stop", "length") for g in out[0])
    for gens in out[1:]:
        assert [g.finish_reason for g in gens] == ["error", "error"]
        assert "prompt_too_long" in gens[0].error and "max_model_len 40" in gens[0].error
    assert out[1][0].prompt_tokens == 40
    assert _calls("generate")[-1][1]["prompts"] == 1
    # the fake refuses the same prompt, as vLLM's InputProcessor._validate_prompt_len does
    from vllm.exceptions import VLLMValidationError

    with pytest.raises(VLLMValidationError, match="length 40"):
        s.llm.generate([{"prompt_token_ids": s.template(exact.messages)}],
                       fake_vllm.SamplingParams())


# --------------------------------------------------------------------------- 1. release
def test_release_path_calls_in_order(fake_vllm, tiny_models, monkeypatch, caplog):
    """engine_core.shutdown -> references dropped -> gc -> cleanup_dist_env_and_memory,
    with GPU memory read before the model loads and after it is released."""
    import torch
    from vllm import _record

    from fusedata.backends import vllm as backend

    used = iter([1 << 30, 3 << 30, 1 << 30])

    def mem_get_info(device=0):
        _record.CALLS.append(("mem_get_info", device))
        return (8 << 30) - next(used), 8 << 30

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "mem_get_info", mem_get_info)

    def collect(*a):
        _record.CALLS.append(("gc.collect", _record.live_llms()))
        return gc.collect(*a)

    monkeypatch.setattr(backend, "gc", types.SimpleNamespace(collect=collect))
    caplog.set_level(logging.INFO, logger="fusedata")
    s = get_sampler(_spec(tiny_models["policy-a"]))
    s.load()
    s.generate([_req("hi", 1)])
    _record.CALLS.append(("close", None))
    s.close()
    names = [c[0] for c in _calls()]
    assert names == ["mem_get_info", "LLM", "generate", "close", "engine_core.shutdown",
                     "gc.collect", "cleanup_dist_env_and_memory", "mem_get_info"]
    # every reference was gone before vLLM was asked to free the memory
    assert _calls("gc.collect")[0][1] == 0
    assert _calls("cleanup_dist_env_and_memory")[0][1]["live_llms"] == 0
    assert s.llm is None and s.tok is None
    msgs = [r.getMessage() for r in caplog.records]
    assert any("before load" in m and "cuda:0 1.00 GiB" in m for m in msgs)
    assert any("after release" in m and "cuda:0 3.00 GiB" in m for m in msgs)
    s.close()  # idempotent: nothing more is called
    assert [c[0] for c in _calls()] == names


def test_no_shutdown_on_llm_or_engine_and_shutdown_core_refuses_work(fake_vllm, tiny_models):
    """As in vLLM 0.33: only the engine core client shuts down (the old code's
    ``getattr(llm_engine, "shutdown")`` found nothing on real vLLM)."""
    s = get_sampler(_spec(tiny_models["policy-a"]))
    s.load()
    llm = s.llm
    assert not hasattr(llm, "shutdown") and not hasattr(llm.llm_engine, "shutdown")
    llm.llm_engine.engine_core.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        llm.generate([{"prompt_token_ids": [1, 2]}])
    del llm
    s.close()
    assert [c[0] for c in _calls()].count("engine_core.shutdown") == 1  # runs at most once


def test_no_gpu_memory_log_without_cuda(fake_vllm, tiny_models, monkeypatch, caplog):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    caplog.set_level(logging.INFO, logger="fusedata")
    s = get_sampler(_spec(tiny_models["policy-a"]))
    s.load()
    s.close()
    assert not any("GPU memory" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------- 5. engine kwargs
def test_unknown_engine_kwarg_is_a_type_error_like_engine_args(fake_vllm, tiny_models):
    s = get_sampler(_spec(tiny_models["policy-a"],
                          vllm={"engine_kwargs": {"swap_spaces": 4}}))
    with pytest.raises(TypeError, match="swap_spaces"):
        s.load()
    ok = get_sampler(_spec(tiny_models["policy-a"], vllm={"engine_kwargs": {"enforce_eager": True}}))
    ok.load()
    assert _calls("LLM")[-1][1]["enforce_eager"] is True


# --------------------------------------------------------------------------- 2. sampling values
def test_fake_sampling_params_validate_as_vllm(fake_vllm):
    from vllm.exceptions import VLLMValidationError

    SP = fake_vllm.SamplingParams
    with pytest.raises(VLLMValidationError, match=r"n must be 1 when using greedy sampling, got 2"):
        SP(n=2, temperature=0.0)
    with pytest.raises(VLLMValidationError, match=r"temperature must be in \[0, 2\], got 2.5"):
        SP(temperature=2.5)
    with pytest.raises(VLLMValidationError, match="top_p must be in"):
        SP(top_p=0.0)
    assert not issubclass(VLLMValidationError, ValueError)  # as in vLLM 0.33
    assert SP(temperature=0.005).temperature == 0.01  # raised silently
    greedy = SP(temperature=0.0, top_p=0.5, top_k=7)
    assert (greedy.top_p, greedy.top_k) == (1.0, 0)


def test_rejected_sampling_params_become_error_rows(fake_vllm, tiny_models):
    s = get_sampler(_spec(tiny_models["policy-a"]))
    s.load()
    s.spec.sampling.temperature = 0.0  # past the schema (e.g. an older recipe object)
    out = s.generate([_req("one", 1), _req("two", 3)])
    assert out[0][0].finish_reason in ("stop", "length")
    assert [g.finish_reason for g in out[1]] == ["error"] * 3
    assert "sampling_params: n must be 1 when using greedy sampling" in out[1][0].error
    assert _calls("generate")[-1][1]["n"] == [1]


RECIPE = """\
name: t
prompts:
  - name: p
    path: data.jsonl
    fields: {prompt: text}
    category: instruction
models:
  - name: a
    backend: vllm
    path: m/a
    samples: {default: 5}
    sampling:
      temperature: TEMP
reward_model:
  path: rm
"""


def _recipe_error(temp: str, **repl: str) -> str:
    text = RECIPE.replace("TEMP", temp)
    for a, b in repl.items():
        text = text.replace(a, b)
    with pytest.raises(RecipeError) as e:
        parse_recipe(textwrap.dedent(text), source="r.yaml")
    return str(e.value)


@pytest.mark.parametrize("temp,needle", [
    ("0", "temperature 0 is greedy decoding, where vLLM needs n == 1, but samples.default is 5"),
    ("2.5", "backend 'vllm' accepts temperature in [0, 2], got 2.5"),
    ("0.005", "vLLM raises a temperature below 0.01 to 0.01 (got 0.005)"),
])
def test_recipe_rejects_what_vllm_rejects_at_its_line(temp, needle):
    msg = _recipe_error(temp)
    assert msg.startswith("r.yaml:13: models[0].sampling.temperature: ") and needle in msg


def test_recipe_accepts_greedy_with_one_sample_and_other_backends():
    ok = RECIPE.replace("TEMP", "0").replace("{default: 5}", "{default: 1, code: 0}")
    parse_recipe(ok, source="r.yaml")
    parse_recipe(RECIPE.replace("TEMP", "0.01"), source="r.yaml")
    parse_recipe(RECIPE.replace("TEMP", "2.0"), source="r.yaml")
    # the transformers backend samples greedily k times without complaint
    parse_recipe(RECIPE.replace("TEMP", "0").replace("backend: vllm", "backend: transformers"),
                 source="r.yaml")


# --------------------------------------------------------------------------- 4. chat template
def test_prompt_ids_are_what_llm_chat_submits(fake_vllm, tiny_models):
    s = get_sampler(_spec(tiny_models["policy-a"]))
    s.load()
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    ids = s.template(msgs)
    assert ids == s.tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True,
                                            return_dict=False)
    assert ids.count(s.tok.bos_token_id) == 1  # template's BOS only, none added again
    [chat] = s.llm.chat(msgs, fake_vllm.SamplingParams(max_tokens=2))
    assert chat.prompt_token_ids == ids


def test_developer_role_becomes_system_as_in_llm_chat(fake_vllm, tiny_models):
    s = get_sampler(_spec(tiny_models["policy-a"]))
    s.load()
    dev = [{"role": "user", "content": "hi"}, {"role": "developer", "content": "be brief"}]
    sys_first = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert s.template(dev) == s.template(sys_first)
    assert s.tok.apply_chat_template(dev, add_generation_prompt=True, tokenize=True,
                                     return_dict=False) != s.template(dev)


def test_processor_template_comes_before_the_tokenizers(fake_vllm, tiny_models, monkeypatch):
    from vllm.renderers import hf

    asked = []

    def processor_template(tokenizer, **kw):
        asked.append(tokenizer.name_or_path)
        return "PROC{% for m in messages %}[{{ m['content'] }}]{% endfor %}"

    monkeypatch.setattr(hf, "_try_get_processor_chat_template", processor_template)
    s = get_sampler(_spec(tiny_models["policy-a"]))
    s.load()
    ids = s.template([{"role": "user", "content": "hi"}])
    assert s.tok.decode(ids) == "PROC[hi]" and asked
    monkeypatch.setattr(hf, "_try_get_processor_chat_template", lambda tokenizer, **kw: None)
    assert s.tok.decode(s.template([{"role": "user", "content": "hi"}])).startswith(
        s.tok.bos_token)


def test_older_vllm_without_the_renderer_falls_back_with_a_warning(fake_vllm, tiny_models,
                                                                   monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "vllm.renderers.hf", None)
    caplog.set_level(logging.WARNING, logger="fusedata")
    s = get_sampler(_spec(tiny_models["policy-a"]))
    s.load()
    assert any("tokenizer's chat template only" in r.getMessage() for r in caplog.records)
    msgs = [{"role": "user", "content": "hi"}]
    assert s.template(msgs) == list(s.tok.apply_chat_template(msgs, add_generation_prompt=True,
                                                              tokenize=True, return_dict=False))


# --------------------------------------------------------------------------- misc
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
