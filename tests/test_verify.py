"""The verify stage: labels math/code responses, reusing warm pools across shards."""

from __future__ import annotations

import json

import polars as pl

from fusedata.engine import Dataset, Engine, atomic_write_parquet
from fusedata.recipe import CodeVerifier, MathVerifier, Verifiers
from fusedata.records import PROMPT_SCHEMA, SAMPLE_SCHEMA, prompt_id
from fusedata.verify import VerifyStage, extract_code


def _data(tmp_path, code_test="assert add(1, 2) == 3"):
    prompts, resp = [], []
    items = [("math", "What is 2+2?", "4", None, ["\\boxed{4}", "It is \\boxed{5}",
                                         "First, add.\nThen I am not sure what comes next."]),
             ("code", "Write add(a, b).", None, json.dumps({"test": code_test}),
              ["```python\ndef add(a, b):\n    return a + b\n```",
               "```python\ndef add(a, b):\n    return a - b\n```", ""]),
             ("instruction", "Say hi.", None, None, ["hi", "hello", "hey"])]
    for cat, text, gold, tests, answers in items:
        msgs = [{"role": "user", "content": text}]
        pid = prompt_id(msgs)
        prompts.append({"prompt_id": pid, "source": cat, "source_dataset": "x", "category": cat,
                        "messages": msgs, "gold": gold, "tests": tests,
                        "existing_response": None, "row_index": 0})
        for k, a in enumerate(answers):
            resp.append({"response_id": f"{cat}{k}", "prompt_id": pid, "category": cat,
                         "source": cat, "model": "m", "role": "source", "sample_idx": k,
                         "response": a, "finish_reason": "stop", "truncated": False,
                         "prompt_tokens": 1, "completion_tokens": 1, "sampler": "t",
                         "error": None})
    atomic_write_parquet(pl.DataFrame(prompts, schema=PROMPT_SCHEMA), tmp_path / "p.parquet")
    atomic_write_parquet(pl.DataFrame(resp, schema=SAMPLE_SCHEMA), tmp_path / "r.parquet")
    return Dataset((tmp_path / "p.parquet",), "p"), Dataset((tmp_path / "r.parquet",), "r")


def test_verify_labels_and_reuses_pools(tmp_path, monkeypatch):
    import fusedata.mathcheck as mc
    import sandbox

    made = {"math": 0, "code": 0}
    real_check, real_sb = mc.CheckPool, sandbox.SandboxPool

    def count(kind, cls):
        def make(*a, **k):
            made[kind] += 1
            return cls(*a, **k)
        return make

    monkeypatch.setattr(mc, "CheckPool", count("math", real_check))
    monkeypatch.setattr(sandbox, "SandboxPool", count("code", real_sb))
    prompts, responses = _data(tmp_path)
    stage = VerifyStage(Verifiers(math=MathVerifier(workers=1), code=CodeVerifier(workers=1)),
                        prompts, shard_size=2)
    res = Engine(work=tmp_path / "work", progress=False).map(stage, responses, "m")
    out = res.dataset.read().sort("response_id")
    v = dict(zip(out["response_id"], out["verdict"], strict=True))
    assert v["math0"] == "correct" and v["math1"] == "incorrect" and v["math2"] == "no_answer"
    assert v["code0"] == "passed" and v["code1"] == "failed" and v["code2"] == "failed"
    assert v["instruction0"] is None
    assert made == {"math": 1, "code": 1}, "pools must be started once per stage, not per shard"
    assert stage._math_pool is None and stage._code_pool is None  # closed by teardown


def test_extract_code_skips_trailing_test_block():
    r = "Here:\n```python\ndef f():\n    return 1\n```\nTests:\n```python\nassert f() == 1\n```"
    assert extract_code(r).strip() == "def f():\n    return 1"
    assert extract_code("") is None
    assert extract_code("def g(): pass") == "def g(): pass"


def test_verify_records_passes_judged_in_process(tmp_path):
    """A pass that rests on an assertion the job itself decides (``> 2``: a value computed
    next to the solution) is recorded as ``in_process`` and counted in the summary."""
    prompts, responses = _data(tmp_path, "assert add(1, 2) == 3\nassert add(2, 2) > 2")
    stage = VerifyStage(Verifiers(code=CodeVerifier(workers=1)), prompts, shard_size=8)
    res = Engine(work=tmp_path / "work", progress=False).map(stage, responses, "m")
    out = res.dataset.read().sort("response_id")
    code0 = out.filter(pl.col("response_id") == "code0").row(0, named=True)
    assert code0["verdict"] == "passed" and code0["verdict_detail"] == "in_process"
    assert "1 passed judged in process" in stage.summarize(out)
