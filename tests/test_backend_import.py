"""The import backend: existing responses become the named model's samples."""

from __future__ import annotations

import pytest

from fusedata.backends import Request, get_sampler
from fusedata.recipe import ModelSpec, RecipeError, parse_recipe


def _req(existing: str | None, n: int = 1) -> Request:
    return Request(messages=[{"role": "user", "content": "q"}], n=n, seed=0, key="p",
                   existing=existing)


def test_existing_responses_are_returned_verbatim(tiny_models):
    spec = ModelSpec.model_validate({"name": "llama-405b", "backend": "import",
                                     "import": {"generator": "Llama-3.1-405B",
                                                "tokenizer": str(tiny_models["policy-a"])}})
    assert spec.samples == {"default": 1}  # one existing response per prompt by default
    s = get_sampler(spec)
    s.load()
    out = s.generate([_req("The answer is \\boxed{4}."), _req(None), _req("   "), _req("x", 0)])
    assert out[0][0].text == "The answer is \\boxed{4}." and out[0][0].finish_reason == "stop"
    assert out[0][0].completion_tokens > 0
    assert [g.finish_reason for g in out[1] + out[2]] == ["error", "error"]
    assert "no response" in out[1][0].error
    assert out[3] == []
    assert s.version == "import:Llama-3.1-405B"


RECIPE = """
prompts:
  - name: omi
    path: omi.jsonl
    fields: {prompt: problem, response: generated_solution}
    category: math
  - name: chat
    path: chat.jsonl
    fields: {prompt: q}
    category: instruction
models:
  - name: llama-405b
    backend: import
{extra}
"""


def test_import_model_needs_sources_with_responses():
    with pytest.raises(RecipeError, match=r"source 'chat' has none.*models\[0\]\.sources"):
        parse_recipe(RECIPE.replace("{extra}", ""))
    r = parse_recipe(RECIPE.replace("{extra}", "    sources: [omi]"))
    assert r.models[0].import_ is None and r.models[0].samples_for("math") == 1


def test_import_model_cannot_ask_for_more_than_one_sample():
    with pytest.raises(RecipeError, match=r"recipe>:\d+: models\[0\].*samples must be 0 or 1"):
        parse_recipe(RECIPE.replace("{extra}", "    sources: [omi]\n    samples: {math: 5}"))


def test_backend_settings_must_match_backend():
    with pytest.raises(RecipeError, match="'http' settings given but backend is 'import'"):
        parse_recipe(RECIPE.replace("{extra}", "    sources: [omi]\n    http: {base_urls: [x]}"))
    with pytest.raises(RecipeError, match="backend 'openai' needs 'http"):
        parse_recipe(RECIPE.replace("{extra}", "    sources: [omi]").replace("import", "openai")
                     .replace("backend: openai", "backend: openai\n    path: m"))
