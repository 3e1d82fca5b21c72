"""The demo's output, built for real on tiny models, loads by config and feeds TRL.

``datasets.load_dataset(OUT, "sft" | "dpo")`` reads the card's configs (offline), and
TRL 1.16's ``SFTTrainer`` / ``DPOTrainer`` tokenize the records in their constructors:
that data-preparation pass is the proof that the format is what TRL expects.
"""

from __future__ import annotations

import polars as pl
import pytest

from fusedata.build import build
from fusedata.recipe import load_recipe

from .conftest import demo_recipe_dict, write_recipe


@pytest.fixture(scope="module")
def built(tiny_models, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trl")
    rec = write_recipe(tmp / "r.yaml", demo_recipe_dict(tiny_models, tmp / "out"))
    res = build(load_recipe(rec), rec, progress=False)
    return tmp, res


def test_demo_output_loads_by_config_and_card_renders_composition(built):
    import datasets

    tmp, res = built
    out = res.out_dir
    for config in ("sft", "dpo"):
        ds = datasets.load_dataset(str(out), config, split="train",
                                   cache_dir=str(tmp / "hf-cache"))
        expected = pl.read_parquet(res.files[config])
        assert len(ds) == expected.height > 0
        assert ds.to_list() == expected.to_dicts()
    card = (out / "README.md").read_text()
    n_sft, n_dpo = (pl.read_parquet(res.files[t]).height for t in ("sft", "dpo"))
    n_drop = (pl.read_parquet(out / "drops.parquet")
              .filter(pl.col("split").is_in(["sft", "dpo"]))["prompt_id"].n_unique())
    # 24 prompts, each in sft, dpo or drops; the build renders the card from report.json
    assert f"| total |  | 24 | {n_sft} | {n_dpo} | 0 | {n_drop} |  |" in card
    assert "From `report.json`" in card
    assert "## Recipe" in card and "policy-a" in card


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
    # as the card says: TRL treats a `prompt` column as prompt-completion data
    st = SFTTrainer(model=model, args=SFTConfig(output_dir=str(tmp / "sft-run"), **common),
                    train_dataset=sft.remove_columns("prompt"), processing_class=tok)
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
