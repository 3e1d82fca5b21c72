"""The demo's output, built for real on tiny models, loads by config and feeds TRL and WRPO.

``datasets.load_dataset(OUT, "sft" | "dpo" | "wrpo")`` reads the card's configs
(offline); TRL 1.16's ``SFTTrainer`` / ``DPOTrainer`` tokenize the published SFT / DPO
records unchanged in their constructors, and the WRPO set goes through the chat
templating of WRPO's released ``scripts/run_wrpo.py`` (github.com/yangzy39/WRPO,
``apply_chat_template(task="wrpo")``, re-stated below) and through ``fusedata train
wrpo``: those data-preparation passes are the proof that the formats are what the
trainers expect.
"""

from __future__ import annotations

import json

import polars as pl
import pytest

from fusedata.build import build
from fusedata.recipe import load_recipe

from .conftest import demo_recipe_dict, write_recipe


def wrpo_recipe_dict(tiny_models, out) -> dict:
    """The demo recipe plus a target model, so selection makes WRPO triplets."""
    d = demo_recipe_dict(tiny_models, out)
    d["models"].append({"name": "target", "role": "target", "path": str(tiny_models["target"]),
                        "sampling": {"temperature": 1.0, "top_p": 1.0, "max_tokens": 24,
                                     "seed": 3},
                        "samples": {"default": 4}, "batch_size": 32})
    return d


@pytest.fixture(scope="module")
def built(tiny_models, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trl")
    rec = write_recipe(tmp / "r.yaml", wrpo_recipe_dict(tiny_models, tmp / "out"))
    res = build(load_recipe(rec), rec, progress=False)
    return tmp, res


def test_demo_output_loads_by_config_and_card_renders_composition(built):
    import datasets

    tmp, res = built
    out = res.out_dir
    for config in ("sft", "dpo", "wrpo"):
        ds = datasets.load_dataset(str(out), config, split="train",
                                   cache_dir=str(tmp / "hf-cache"))
        expected = pl.read_parquet(res.files[config])
        assert len(ds) == expected.height > 0
        assert ds.to_list() == expected.to_dicts()
    card = (out / "README.md").read_text()
    n_sft, n_dpo, n_wrpo = (pl.read_parquet(res.files[t]).height for t in ("sft", "dpo", "wrpo"))
    n_drop = (pl.read_parquet(out / "drops.parquet")
              .filter(pl.col("split").is_in(["sft", "dpo"]))["prompt_id"].n_unique())
    # 24 prompts, each in sft, dpo or drops; the build renders the card from report.json
    assert f"| total |  | 24 | {n_sft} | {n_dpo} | {n_wrpo} | {n_drop} |  |" in card
    assert "From `report.json`" in card
    assert "## Recipe" in card and "policy-a" in card
    rep = json.loads((out / "report.json").read_text())
    assert rep["totals"]["wrpo"] == n_wrpo > 0
    assert {"wrpo chosen_source", "wrpo chosen_target", "wrpo rejected"} <= set(rep["lengths"])


def test_trl_trainers_prepare_the_output(built, tiny_models):
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    tmp, res = built
    out = res.out_dir
    tok = AutoTokenizer.from_pretrained(tiny_models["policy-a"])
    model = AutoModelForCausalLM.from_pretrained(tiny_models["policy-a"])
    common = dict(report_to="none", use_cpu=True, per_device_train_batch_size=2, max_steps=1,
                  save_strategy="no", max_length=512)
    sft = datasets.load_dataset(str(out), "sft", split="train", cache_dir=str(tmp / "hf-cache"))
    # the published config as it is: no column surgery
    st = SFTTrainer(model=model, args=SFTConfig(output_dir=str(tmp / "sft-run"), **common),
                    train_dataset=sft, processing_class=tok)
    prepared = st.train_dataset
    assert len(prepared) == len(sft)
    row, src = prepared[0], sft[0]
    assert src["messages"][-1]["content"] in tok.decode(row["input_ids"])

    dpo = datasets.load_dataset(str(out), "dpo", split="train", cache_dir=str(tmp / "hf-cache"))
    dt = DPOTrainer(model=model, args=DPOConfig(output_dir=str(tmp / "dpo-run"), **common),
                    train_dataset=dpo, processing_class=tok)
    prepared = dt.train_dataset
    assert len(prepared) == len(dpo)
    for row, src in zip(prepared, dpo, strict=True):
        assert row["chosen_ids"] and row["rejected_ids"] and row["prompt_ids"]
        assert src["chosen"][0]["content"] in tok.decode(row["chosen_ids"])
        assert src["rejected"][0]["content"] in tok.decode(row["rejected_ids"])


def _maybe_insert_system_message(messages: list[dict], tokenizer) -> None:
    """alignment-handbook's helper used by run_wrpo.py: an empty system turn first when the
    chat template knows a system role and the conversation has none."""
    template = tokenizer.chat_template or tokenizer.get_chat_template()
    if messages[0]["role"] != "system" and "system" in template:
        messages.insert(0, {"role": "system", "content": ""})


def _wrpo_apply_chat_template(example: dict, tokenizer) -> dict:
    """WRPO's ``apply_chat_template(example, tokenizer, task="wrpo")``, step by step: the
    prompt is ONE message templated alone; each chosen / rejected message is templated
    alone as a one-message conversation, with a leading BOS removed."""
    if not all(k in example for k in ("chosen", "rejected")):
        raise ValueError(f"needs chosen and rejected, got {list(example)}")
    prompt_messages = [example["prompt"]]
    _maybe_insert_system_message(prompt_messages, tokenizer)
    text_prompt = tokenizer.apply_chat_template(prompt_messages, tokenize=False)

    def one(message: dict) -> str:
        conv = tokenizer.apply_chat_template([message], tokenize=False)
        bos = tokenizer.bos_token
        return conv[len(bos):] if bos and conv.startswith(bos) else conv

    return {"prompt": text_prompt, "chosen": [one(m) for m in example["chosen"]],
            "rejected": [one(m) for m in example["rejected"]]}


def test_wrpo_set_goes_through_wrpos_own_chat_templating(built, tiny_models):
    import datasets
    from transformers import AutoTokenizer

    tmp, res = built
    wrpo = datasets.load_dataset(str(res.out_dir), "wrpo", split="train",
                                 cache_dir=str(tmp / "hf-cache"))
    assert len(wrpo) > 0
    assert wrpo.column_names[:4] == ["prompt_id", "prompt", "chosen", "rejected"]
    tok = AutoTokenizer.from_pretrained(tiny_models["target"])
    # run_wrpo.py: raw_datasets.map(apply_chat_template, remove_columns=column_names)
    mapped = wrpo.map(_wrpo_apply_chat_template, fn_kwargs={"tokenizer": tok},
                      remove_columns=wrpo.column_names)
    for row, src in zip(mapped, wrpo, strict=True):
        # WRPOTrainer.tokenize_row's own checks: a str prompt, lists of completions
        assert isinstance(row["prompt"], str) and src["prompt"]["content"] in row["prompt"]
        assert len(row["chosen"]) == 2 and len(row["rejected"]) == 1
        assert src["prompt"]["role"] == "user"
        for text, msg in zip(row["chosen"] + row["rejected"], src["chosen"] + src["rejected"],
                             strict=True):
            assert msg["role"] == "assistant" and msg["content"] in text
    sel = pl.read_parquet(res.out_dir / "data" / "wrpo")
    # y_ws / y_wt / y_l are the selection's columns, in WRPO's order
    assert (sel["chosen"].list.get(0).struct.field("content")
            != sel["rejected"].list.get(0).struct.field("content")).all()


def test_fusedata_train_wrpo_trains_on_the_published_set(built, tiny_models, tmp_path):
    from click.testing import CliRunner
    from safetensors.torch import load_file

    from fusedata.cli import cli

    _, res = built
    run = CliRunner().invoke(cli, [
        "train", "wrpo", str(res.out_dir), "--model", str(tiny_models["target"]),
        "--output-dir", str(tmp_path / "wrpo"), "--max-steps", "2", "--lr", "1e-3",
        "--per-device-batch", "4", "--batch-size", "4", "--max-length", "256",
        "--no-gradient-checkpointing"], catch_exceptions=False)
    assert run.exit_code == 0, run.output
    before = load_file(str(tiny_models["target"] / "model.safetensors"))
    after = load_file(str(tmp_path / "wrpo" / "model.safetensors"))
    assert any(not (before[k] == after[k]).all() for k in before)
