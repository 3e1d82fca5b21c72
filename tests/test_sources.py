"""Prompt-source loaders and filters on fixtures shaped like the real datasets' rows."""

from __future__ import annotations

import json
import random
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from fusedata.prompts import PromptsStage
from fusedata.recipe import PromptSource, RecipeError, parse_recipe
from fusedata.sources import LOADERS

from .conftest import ROOT

FIX = Path(__file__).parent / "fixtures" / "datasets"


def run(path: str, loader: str, category: str, filters=(), **kw):
    src = PromptSource(name=loader, path=path, loader=loader, category=category,
                       filters=list(filters), **kw)
    t = PromptsStage(src, FIX).reduce({})
    return t["prompts"], t["dropped"]


def drops(d: pl.DataFrame) -> dict[int, str]:
    return dict(zip(d["row_index"].to_list(), d["reason"].to_list(), strict=True))


def last_user(p: pl.DataFrame) -> list[str]:
    return [m[-1]["content"] for m in p["messages"].to_list()]


INSTR = [{"type": "domain"}, {"type": "dedup"}]
ZH = [{"type": "language"}, {"type": "domain"}, {"type": "dedup"}]


def test_all_eight_families_register():
    assert {"ultrafeedback", "magpie", "helpsteer2", "alpaca", "openmathinstruct2", "leetcode",
            "self_oss_instruct", "generic"} <= set(LOADERS)


def test_ultrafeedback_excludes_code_math_and_duplicates():
    p, d = run("ultrafeedback.jsonl", "ultrafeedback", "instruction", INSTR)
    assert p["row_index"].to_list() == [0, 1, 4, 7, 8]
    assert drops(d) == {2: "domain:code", 3: "domain:math", 5: "duplicate",
                        6: "duplicate_normalized", 9: "near_duplicate",
                        10: "missing_field:instruction", 11: "empty_prompt", 12: "domain:math"}
    assert set(p["category"]) == {"instruction"}
    assert p["gold"].null_count() == p.height and p["tests"].null_count() == p.height


def test_decontamination_against_benchmark_file():
    flt = [{"type": "decontaminate", "files": ["bench_gsm8k.jsonl"], "ngram": 8}, *INSTR]
    p, d = run("ultrafeedback.jsonl", "ultrafeedback", "instruction", flt)
    assert drops(d)[12] == "contaminated:bench_gsm8k.jsonl"
    assert 12 not in p["row_index"].to_list()


def test_decontamination_short_benchmark_prompt_matches_inside(tmp_path):
    (tmp_path / "b.txt").write_text("Why is the sky blue?\n")
    (tmp_path / "s.jsonl").write_text(
        json.dumps({"instruction": "Quick question: why is the sky blue? Thanks"}) + "\n"
        + json.dumps({"instruction": "Why is grass green?"}) + "\n")
    src = PromptSource(name="s", path="s.jsonl", loader="ultrafeedback", category="instruction",
                       filters=[{"type": "decontaminate", "files": ["b.txt"]}])
    t = PromptsStage(src, tmp_path).reduce({})
    assert drops(t["dropped"]) == {0: "contaminated:b.txt"}
    assert t["prompts"].height == 1


def test_magpie_pro_uses_task_category_then_classifier():
    p, d = run("magpie_pro_dpo.jsonl", "magpie", "instruction", INSTR)
    assert p["row_index"].to_list() == [0, 3, 4, 6]
    assert drops(d) == {1: "domain:code:label", 2: "domain:math:label", 5: "domain:code"}


def test_helpsteer2_multi_turn_split_and_pair_duplicates():
    p, d = run("helpsteer2.jsonl", "helpsteer2", "instruction", INSTR)
    # row 0 is the two-character prompt "c#" (a language name: code)
    assert drops(d) == {0: "domain:code", 1: "duplicate", 3: "duplicate", 5: "duplicate",
                        6: "domain:code", 7: "domain:math", 8: "empty_turn"}
    assert p["row_index"].to_list() == [2, 4]
    multi = p.filter(pl.col("row_index") == 2)["messages"].to_list()[0]
    assert [m["role"] for m in multi] == ["user", "assistant", "user"]
    assert multi[0]["content"].startswith("I am planning a birthday party")
    assert multi[1]["content"].startswith("1. Pirates")
    assert multi[2]["content"] == "We picked space. What food could we serve that fits the theme?"
    assert "<extra_id_1>" not in json.dumps(multi)


def test_openmathinstruct2_gold_and_imported_solution():
    p, d = run("openmathinstruct2.jsonl", "openmathinstruct2", "math", [{"type": "dedup"}])
    assert drops(d) == {1: "duplicate", 4: "missing_gold:expected_answer"}
    first = p.row(0, named=True)
    assert first["gold"] == "4" and first["category"] == "math"
    assert first["existing_response"].endswith("The answer is $\\boxed{4}$.")
    assert p["gold"].to_list() == ["4", "56", "29", "4"]


# The coding loaders (leetcode, self-oss-instruct) are tested on real rows in
# tests/test_sources_code.py.


def test_alpaca_zh_language_domain_and_input_field():
    p, d = run("alpaca_gpt4_zh.jsonl", "alpaca", "chinese", ZH)
    assert drops(d) == {2: "domain:math", 3: "domain:code", 4: "language:en", 5: "domain:math",
                        7: "duplicate"}
    assert last_user(p)[1] == "将下面这句话翻译成英文。\n\n今天的天气非常好，我们去公园散步吧。"


def test_magpie_qwen2_chinese_labels_and_multi_turn():
    p, d = run("magpie_qwen2_zh.jsonl", "magpie", "chinese", ZH)
    assert drops(d) == {1: "domain:math:label", 2: "domain:code:label", 3: "language:en:label",
                        6: "domain:math"}
    multi = p.filter(pl.col("row_index") == 4)["messages"].to_list()[0]
    assert [m["role"] for m in multi] == ["user", "assistant", "user"]


# --------------------------------------------------------------------------- sampling


def _many(tmp_path: Path, n: int = 200) -> Path:
    f = tmp_path / "many.jsonl"
    f.write_text("".join(json.dumps({"instruction": f"Tell me fact number {i} about "
                                     f"{random.Random(i).choice(['cats', 'rivers', 'stars'])}."})
                         + "\n" for i in range(n)))
    return f


def _sample(tmp_path, **kw):
    _many(tmp_path)
    src = PromptSource(name="m", path="many.jsonl", loader="ultrafeedback",
                       category="instruction", **kw)
    return PromptsStage(src, tmp_path).reduce({})


def test_seeded_sample_hits_target_and_is_deterministic(tmp_path):
    a = _sample(tmp_path, limit=30, seed=1)["prompts"]
    b = _sample(tmp_path, limit=30, seed=1)["prompts"]
    c = _sample(tmp_path, limit=30, seed=2)["prompts"]
    assert a.height == 30 and a.equals(b)
    assert a["row_index"].to_list() != c["row_index"].to_list()
    assert a["row_index"].to_list() == sorted(a["row_index"].to_list())
    assert max(a["row_index"]) > 30  # sampled, not the first 30


def test_limit_counts_prompts_kept_after_filters(tmp_path):
    f = tmp_path / "mix.jsonl"
    rows = []
    for i in range(40):
        rows.append({"instruction": f"Solve 3x + {i} = {i + 9} for x."})
        rows.append({"instruction": f"Write a friendly greeting card message number {i}."})
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    src = PromptSource(name="m", path="mix.jsonl", loader="ultrafeedback", category="instruction",
                       limit=10, seed=0, filters=[{"type": "domain"}])
    t = PromptsStage(src, tmp_path).reduce({})
    assert t["prompts"].height == 10
    assert all("greeting" in s for s in last_user(t["prompts"]))
    assert set(t["dropped"]["reason"]) == {"domain:math"}


def test_hub_source_is_streamed_shuffled_and_stopped_at_limit(tmp_path, monkeypatch):
    import datasets

    pulled = []

    def gen():
        for i in range(1000):
            pulled.append(i)
            yield {"instruction": f"Describe place number {i} in one sentence."}

    calls = {}

    def fake_load(path, subset=None, split=None, revision=None, streaming=False):
        calls.update(path=path, split=split, streaming=streaming)
        return datasets.IterableDataset.from_generator(gen)

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    src = PromptSource(name="hub", path="openbmb/UltraFeedback", loader="ultrafeedback",
                       category="instruction", limit=20, seed=3, shuffle_buffer=100)
    t = PromptsStage(src, tmp_path).reduce({})
    assert calls == {"path": "openbmb/UltraFeedback", "split": "train", "streaming": True}
    assert t["prompts"].height == 20
    assert len(pulled) < 1000  # never read to the end
    texts = last_user(t["prompts"])
    assert texts != [f"Describe place number {i} in one sentence." for i in range(20)]


# --------------------------------------------------------------------------- dedup internals


def test_minhash_estimates_jaccard_and_lsh_finds_near_duplicates():
    from fusedata.recipe import DedupFilter
    from fusedata.sources.filters import Dedup, MinHasher, lsh_params, tokens

    mh = MinHasher(256, 3)
    rng = random.Random(0)
    words = [f"w{i}" for i in range(300)]
    for _ in range(10):
        a = rng.sample(words, 80)
        b = a[:60] + rng.sample(words, 20)
        sa, sb = mh.shingles(" ".join(a)), mh.shingles(" ".join(b))
        exact = len(sa & sb) / len(sa | sb)
        est = float((mh.signature(" ".join(a)) == mh.signature(" ".join(b))).mean())
        assert abs(est - exact) < 0.12
    b, r = lsh_params(0.8, 128)
    assert b * r <= 128 and abs((1 / b) ** (1 / r) - 0.8) < 0.05
    dd = Dedup(DedupFilter(type="dedup", near_threshold=0.8))
    base = " ".join(words[:60])
    rec = lambda t: {"messages": [{"role": "user", "content": t}]}  # noqa: E731
    assert dd.check(rec(base)) is None
    assert dd.check(rec(base.replace("w30", "w999"))) == "near_duplicate"
    assert dd.check(rec(" ".join(words[100:160]))) is None
    assert dd.check(rec(base.upper() + " !!")) == "duplicate_normalized"
    assert tokens("用Python写") == ["用", "python", "写"]


# --------------------------------------------------------------------------- recipe


def _recipe(filters_yaml: str, loader: str = "ultrafeedback") -> str:
    return f"""name: t
prompts:
  - name: a
    path: x.jsonl
    loader: {loader}
    category: instruction
    filters:
{filters_yaml}
models:
  - name: m
    path: some/model
"""


def test_filter_schema_is_strict_with_lines():
    with pytest.raises(RecipeError) as e:
        parse_recipe(_recipe("      - {type: domian}"), "r.yaml")
    assert "r.yaml:8: prompts[0].filters[0]" in str(e.value)
    with pytest.raises(RecipeError) as e:
        parse_recipe(_recipe("      - {type: dedup, near_treshold: 0.8}"), "r.yaml")
    assert "near_treshold: unknown key" in str(e.value)
    with pytest.raises(RecipeError) as e:
        parse_recipe(_recipe("      - {type: language, min_ratio: 2}"), "r.yaml")
    assert "min_ratio: must be <= 1" in str(e.value)
    with pytest.raises(RecipeError) as e:
        parse_recipe(_recipe("      - {type: domain}", loader="ultrafedback"), "r.yaml")
    assert "unknown loader 'ultrafedback'" in str(e.value)
    r = parse_recipe(_recipe("      - {type: decontaminate, files: [b.jsonl]}"), "r.yaml")
    assert r.prompts[0].filters[0].ngram == 13


def test_generic_loader_still_needs_fields():
    with pytest.raises(RecipeError) as e:
        parse_recipe(_recipe("      []", loader="generic"), "r.yaml")
    assert "needs 'fields'" in str(e.value)
    text = _recipe("      []").replace("    loader: ultrafeedback\n",
                                        "    loader: ultrafeedback\n    fields: {prompt: q}\n")
    with pytest.raises(RecipeError) as e:
        parse_recipe(text, "r.yaml")
    assert "'fields' applies to the generic loader only" in str(e.value)


def test_fusechat3_recipe_validates_and_dry_run_plans_offline(monkeypatch):
    import datasets

    from fusedata.cli import cli

    def no_network(*a, **k):
        raise AssertionError("the dry run must not load a dataset")

    monkeypatch.setattr(datasets, "load_dataset", no_network)
    path = ROOT / "recipes" / "fusechat3.yaml"
    res = CliRunner().invoke(cli, ["validate", str(path)])
    assert res.exit_code == 0, res.output
    assert "8 prompt sources, 6 models" in res.output
    res = CliRunner().invoke(cli, ["build", str(path), "--dry-run"])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "stages prompts -> sample -> score -> verify -> select -> export" in out
    # instruction 80,907 prompts x 5 x 4 + code 15,896 (leetcode 2,200 + self-oss 13,696)
    # x 8 x 4 + Chinese 9,952 x 1 + math 58,546 x 5 (Qwen2.5-Math); the 405B math answers
    # are imported
    gens = 80_907 * 5 * 4 + 15_896 * 8 * 4 + 9_952 + 58_546 * 5
    assert f"estimated generations: {gens:,}" in out
    assert "imported responses: 58,546" in out
    assert f"estimated sandbox runs: {15_896 * 8 * 4:,}" in out
    assert f"estimated math checks: {58_546 * 6:,}" in out
    assert "qwen2.5-72b-instruct [source, vllm] Qwen/Qwen2.5-72B-Instruct: temp 0.7 top_p 0.8 " \
           "rep 1.05" in out


# --------------------------------------------------------------------------- across sources


_LONG = ("Write a short story about a lighthouse keeper who finds a message in a bottle "
         "and decides to sail across the northern sea to answer it before winter comes, "
         "taking only his old dog, a lantern, some bread and the letter, and tell us what "
         "he learns about the stranger who wrote it")


def _jsonl(path: Path, texts: list[str]) -> None:
    path.write_text("".join(json.dumps({"q": t}) + "\n" for t in texts), encoding="utf-8")


def _sources(tmp_path: Path, b_filters: list, b_limit: int | None = None) -> list[PromptSource]:
    _jsonl(tmp_path / "a.jsonl", [_LONG, "What is the capital of France?"])
    _jsonl(tmp_path / "b.jsonl", [
        "what is the CAPITAL of france", _LONG.replace("northern", "southern"),
        "Name three prime numbers.", "Name three prime numbers!", "Explain photosynthesis."])
    _jsonl(tmp_path / "c.jsonl", ["What is the capital of France?", "Define entropy."])
    return [
        PromptSource(name="a", path="a.jsonl", category="instruction", fields={"prompt": "q"},
                     filters=[{"type": "dedup"}]),
        PromptSource(name="b", path="b.jsonl", category="instruction", fields={"prompt": "q"},
                     filters=b_filters, limit=b_limit),
        PromptSource(name="c", path="c.jsonl", category="instruction", fields={"prompt": "q"}),
    ]


def test_dedup_filter_removes_earlier_sources_prompts(tmp_path):
    from fusedata.engine import Engine
    from fusedata.prompts import load_prompts, merge_prompts

    eng = Engine(work=tmp_path / "work", progress=False)
    per = load_prompts(eng, _sources(tmp_path, [{"type": "dedup"}]), tmp_path)
    [b_folder] = [r.folder for tag, r in eng.results if tag == "prompts[b]"]
    b_drops = pl.read_parquet(b_folder / "dropped.parquet")
    # the earlier source's prompts win; within b, b's own first row wins
    assert drops(b_drops) == {0: "duplicate_normalized:a", 1: "near_duplicate:a",
                              3: "duplicate_normalized"}
    assert last_user(per["b"].read()) == ["Name three prime numbers.", "Explain photosynthesis."]
    # c has no dedup filter: its exact repeat of a's prompt is left to the merge
    assert per["c"].read().height == 2
    merged = merge_prompts(eng, per).read()
    assert merged["source"].to_list() == ["a", "a", "b", "b", "c"]
    assert last_user(merged)[-1] == "Define entropy."


def test_cross_source_dedup_runs_before_limit_and_follows_earlier_sources(tmp_path):
    from fusedata.engine import Engine
    from fusedata.prompts import load_prompts

    srcs = _sources(tmp_path, [{"type": "dedup"}], b_limit=2)
    eng = Engine(work=tmp_path / "work", progress=False)
    per = load_prompts(eng, srcs, tmp_path)
    # two *new* prompts, not the first two rows (which repeat source a)
    assert last_user(per["b"].read()) == ["Name three prime numbers.", "Explain photosynthesis."]
    # b's result depends on a's: a new a reruns b (from a fresh engine: no in-memory state)
    _jsonl(tmp_path / "a.jsonl", ["Something else entirely."])
    eng2 = Engine(work=tmp_path / "work", progress=False)
    per = load_prompts(eng2, srcs, tmp_path)
    assert [(tag, r.cached) for tag, r in eng2.results] == [
        ("prompts[a]", False), ("prompts[b]", False), ("prompts[c]", True)]
    assert last_user(per["b"].read())[:2] == ["what is the CAPITAL of france",
                                               _LONG.replace("northern", "southern")]


def test_sources_without_dedup_filter_do_not_depend_on_earlier_sources(tmp_path):
    from fusedata.engine import Engine
    from fusedata.prompts import load_prompts

    srcs = _sources(tmp_path, [])
    eng = Engine(work=tmp_path / "work", progress=False)
    per = load_prompts(eng, srcs, tmp_path)
    assert per["b"].read().height == 5
    _jsonl(tmp_path / "a.jsonl", ["Something else entirely."])
    eng2 = Engine(work=tmp_path / "work", progress=False)
    load_prompts(eng2, srcs, tmp_path)
    assert [r.cached for _, r in eng2.results] == [False, True, True]


def test_sources_package_imports_neither_recipe_nor_prompts():
    """The loader registry is the bottom layer: the recipe imports it, never the reverse."""
    import subprocess
    import sys

    code = ("import sys, fusedata.sources; "
            "print(sorted(m for m in sys.modules if m.startswith('fusedata')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    loaded = eval(out)  # noqa: S307 - a list literal printed by the child above
    assert "fusedata.sources.base" in loaded
    assert not [m for m in loaded if m.startswith(("fusedata.recipe", "fusedata.prompts"))]
