"""The transformers backend: padded generate (default on CPU) and continuous batching."""

from __future__ import annotations

from fusedata.backends import Request, get_sampler
from fusedata.recipe import ModelSpec


def _spec(path, cb: str) -> ModelSpec:
    # device cpu: these tests describe the CPU behaviour, also on a host with a GPU
    return ModelSpec.model_validate({
        "name": "m", "path": str(path), "device": "cpu",
        "transformers": {"continuous_batching": cb},
        "sampling": {"temperature": 0.8, "top_p": 0.95, "max_tokens": 8, "seed": 1}})


def _reqs() -> list[Request]:
    return [Request([{"role": "user", "content": f"fact {i} about owls"}], n=n, seed=1,
                    key=f"p{i}") for i, n in enumerate([2, 3, 2, 0])]


def test_auto_is_padded_on_cpu(tiny_models):
    s = get_sampler(_spec(tiny_models["policy-a"], "auto"))
    s.load()
    assert not s.use_cb and s.version.endswith("/padded")


def test_continuous_batching_is_complete_and_seeded(tiny_models, caplog):
    caplog.set_level("WARNING", logger="fusedata")
    s = get_sampler(_spec(tiny_models["policy-a"], "on"))
    s.load()
    assert s.use_cb and s.version.endswith("/continuous-batching")
    first = s.generate(_reqs())
    assert [len(g) for g in first] == [2, 3, 2, 0]
    for gens in first:
        for g in gens:
            assert g.finish_reason in ("stop", "length") and g.error is None
            assert g.prompt_tokens > 0 and 0 < g.completion_tokens <= 8
    again = s.generate(_reqs())
    assert [[g.text for g in gs] for gs in first] == [[g.text for g in gs] for gs in again]
    assert "padded generate" not in caplog.text  # generate_batch did the work, no fallback
    s.close()
