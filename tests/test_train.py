"""Trainer losses against hand computations, the alpha schedule, presets and data loading.

The tiny random-weight target model makes every forward pass real; the
policy is perturbed after the reference log-probs are precomputed so the
log-ratios are non-zero and the formulas are actually exercised.
"""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("trl")

from fusedata.train import presets as P  # noqa: E402
from fusedata.train.data import TrainDataError, find_set, load_set  # noqa: E402

PROMPTS = ["Tell me about the sea.", "What is 2 + 3?", "Write a poem.", "Explain gradients."]
GOOD = ["The sea is wide and blue and full of fish.", "5", "Sky over sea, a quiet poem.",
        "A gradient points uphill."]
TARGET = ["The sea is big.", "It is 5, since 2 + 3 = 5.", "Roses are red.",
          "Gradients are derivatives of many variables at once."]
#: float64 models, so the hand side is exact.  TRL's fused LM head still returns float32
#: per-token log-probs (summed log-probs of ~100 tokens carry ~1e-5 rounding), so the betas
#: below are the papers' scale (0.01 for WRPO, beta/|y| for LN-DPO), where that rounding
#: stays far below the 1e-6 the losses are compared at.
F64 = {"dtype": torch.float64}
BAD = ["no", "2 + 3 = 7 because numbers are hard", "poem", "I do not know what that is at all."]


def _msg(role: str, text: str) -> list[dict]:
    return [{"role": role, "content": text}]


def _dpo_rows() -> list[dict]:
    return [{"prompt": _msg("user", p), "chosen": _msg("assistant", c),
             "rejected": _msg("assistant", r)} for p, c, r in zip(PROMPTS, TARGET, BAD, strict=True)]


def _wrpo_rows() -> list[dict]:
    return [{"prompt": _msg("user", p), "chosen_source": _msg("assistant", s),
             "chosen_target": _msg("assistant", t), "rejected": _msg("assistant", r)}
            for p, s, t, r in zip(PROMPTS, GOOD, TARGET, BAD, strict=True)]


def _seq_logps(model, batch) -> torch.Tensor:
    """Summed completion log-probs by hand: plain forward, log_softmax, gather, mask."""
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"],
                       attention_mask=batch["attention_mask"]).logits[:, :-1].double()
    lp = logits.log_softmax(-1).gather(-1, batch["input_ids"][:, 1:, None]).squeeze(-1)
    return (lp * batch["completion_mask"][:, 1:]).sum(1)


def _perturb(model, seed: int = 0, scale: float = 0.05) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g).to(p.dtype))


def _ref(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float64).eval()


def _tok(path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def _dpo_trainer(path, tmp_path, *, length_normalize: bool, beta: float):
    import datasets
    from trl import DPOTrainer

    from fusedata.train.dpo import dpo_config

    args = dpo_config(str(tmp_path / "dpo"), n_rows=4, lr=1e-3, beta=beta,
                      length_normalize=length_normalize, per_device_batch=4, max_steps=1,
                      bf16=False, gradient_checkpointing=False)
    args.model_init_kwargs = F64
    return DPOTrainer(model=str(path), args=args, processing_class=_tok(path),
                      train_dataset=datasets.Dataset.from_list(_dpo_rows()))


def _wrpo_trainer(path, tmp_path, precompute: bool = True, **kw):
    import datasets

    from fusedata.train.wrpo import WRPOTrainer, wrpo_config

    kw = {"lr": 1e-3, "per_device_batch": 4, "max_steps": 1, "bf16": False,
          "gradient_checkpointing": False, **kw}
    args = wrpo_config(str(tmp_path / "wrpo"), n_rows=4, **kw)
    args.model_init_kwargs = F64
    args.precompute_ref_log_probs = precompute
    return WRPOTrainer(model=str(path), args=args, processing_class=_tok(path),
                       train_dataset=datasets.Dataset.from_list(_wrpo_rows()))


def _batch(trainer):
    return trainer.data_collator([trainer.train_dataset[i] for i in range(4)])


def test_ln_dpo_loss_equals_hand_computation(tiny_models, tmp_path):
    path = tiny_models["target"]
    beta = 2.0
    tr = _dpo_trainer(path, tmp_path, length_normalize=True, beta=beta)
    assert tr.loss_types == ["sigmoid_norm"]
    _perturb(tr.model)
    batch = _batch(tr)
    loss = tr.compute_loss(tr.model, batch).item()

    pol, ref = _seq_logps(tr.model, batch), _seq_logps(_ref(path), batch)
    n = batch["completion_mask"].sum(1).double()
    r = (pol - ref).double()
    rc, rr = r.chunk(2)
    nc, nr = n.chunk(2)
    assert not torch.equal(nc, nr)  # lengths differ, so normalisation matters
    want = -F.logsigmoid(beta * rc / nc - beta * rr / nr).mean().item()
    assert loss == pytest.approx(want, abs=1e-6)
    plain = -F.logsigmoid(beta * (rc - rr)).mean().item()
    assert abs(plain - want) > 1e-3  # the test tells LN-DPO from DPO


def test_wrpo_loss_equals_hand_computation(tiny_models, tmp_path):
    path = tiny_models["target"]
    beta, alpha = 0.01, 0.3
    tr = _wrpo_trainer(path, tmp_path, beta=beta, alpha_max=alpha, alpha_schedule="fixed")
    _perturb(tr.model, scale=0.1)
    batch = _batch(tr)
    assert batch["input_ids"].shape[0] == 12  # [y_ws; y_wt; y_l]
    loss = tr.compute_loss(tr.model, batch).item()

    r = (_seq_logps(tr.model, batch) - _seq_logps(_ref(path), batch)).double()
    r_ws, r_wt, r_l = r.chunk(3)
    want = -F.logsigmoid(beta * (alpha * r_ws + (1 - alpha) * r_wt - r_l)).mean().item()
    assert loss == pytest.approx(want, abs=1e-6)
    dpo_like = -F.logsigmoid(beta * (r_wt - r_l)).mean().item()
    assert abs(want - math.log(2)) > 1e-3 and abs(want - dpo_like) > 1e-4  # alpha matters
    # the precomputed reference columns are the initial model's summed log-probs
    ref_cols = torch.cat([batch[f"ref_{c}_logps"] for c in
                          ("chosen_source", "chosen_target", "rejected")]).double()
    assert torch.allclose(ref_cols, _seq_logps(_ref(path), batch).double(), atol=1e-9)


def test_wrpo_live_reference_model_gives_the_precomputed_loss(tiny_models, tmp_path):
    path = tiny_models["target"]
    losses = []
    for precompute in (True, False):
        tr = _wrpo_trainer(path, tmp_path, beta=0.01, alpha_max=0.3, alpha_schedule="fixed",
                           precompute=precompute)
        assert (tr.ref_model is None) == precompute  # precomputed: only the policy in memory
        _perturb(tr.model, scale=0.1)
        losses.append(tr.compute_loss(tr.model, _batch(tr)).item())
    assert losses[0] == pytest.approx(losses[1], abs=1e-6)
    assert abs(losses[0] - math.log(2)) > 1e-3


def test_wrpo_alpha_zero_equals_dpo_on_target_and_rejected(tiny_models, tmp_path):
    path = tiny_models["target"]
    w = _wrpo_trainer(path, tmp_path, beta=0.01, alpha_max=0.0, alpha_schedule="fixed")
    d = _dpo_trainer(path, tmp_path, length_normalize=False, beta=0.01)
    _perturb(w.model, seed=3, scale=0.1)
    _perturb(d.model, seed=3, scale=0.1)
    lw = w.compute_loss(w.model, _batch(w)).item()
    ld = d.compute_loss(d.model, _batch(d)).item()
    assert lw == pytest.approx(ld, abs=1e-6)
    assert abs(lw - math.log(2)) > 1e-4  # not the trivial policy == reference value


def test_alpha_schedule():
    from fusedata.train.wrpo import alpha_at

    T = 10
    assert alpha_at(0, T, 0.1) == 0.0
    assert alpha_at(T // 2, T, 0.1) == pytest.approx(0.05)
    assert alpha_at(T, T, 0.1) == pytest.approx(0.1)
    assert alpha_at(2 * T, T, 0.1) == pytest.approx(0.1)  # capped
    assert [alpha_at(s, T, 0.1, "fixed") for s in (0, 5, 10)] == [0.1, 0.1, 0.1]
    with pytest.raises(ValueError, match="alpha_schedule"):
        alpha_at(1, T, 0.1, "cosine")


def test_wrpo_training_follows_schedule_and_lowers_loss(tiny_models, tmp_path):
    tr = _wrpo_trainer(tiny_models["target"], tmp_path, beta=0.5, alpha_max=0.2, max_steps=4,
                       lr=5e-3, save_steps=1000)
    tr.state.max_steps, tr.state.global_step = 4, 2
    assert tr.current_alpha() == pytest.approx(0.1)  # T/2 -> alpha_max / 2
    tr.state.global_step = 0
    batch = _batch(tr)
    tr.model.eval()
    before = tr.compute_loss(tr.model, batch).item()
    tr.train()
    tr.model.eval()
    tr.state.global_step = 0  # same alpha for the comparison
    after = tr.compute_loss(tr.model, batch).item()
    assert before == pytest.approx(math.log(2), abs=1e-4)  # policy == reference at the start
    assert after < before - 0.01
    alphas = [h["alpha"] for h in tr.state.log_history if "alpha" in h]
    assert alphas == pytest.approx([0.0, 0.05, 0.1, 0.15])


def _readme_presets() -> dict[str, tuple[float, float, float, bool]]:
    """README's preset table (the paper's SFT/DPO tables as documented for users)."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    lines = text[text.index("| preset | SFT lr |"):].splitlines()
    rows = {}
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        names, sft, dpo, beta, ln = (c.strip() for c in line.strip("|").split("|"))
        for name in names.replace("(default)", "").split("/"):
            rows[name.strip()] = (float(sft), float(dpo), float(beta), ln == "yes")
    return rows


def test_presets_are_the_documented_table_and_drive_the_configs(tmp_path):
    from fusedata.train.dpo import dpo_config
    from fusedata.train.sft import sft_config

    # the code and the README's table (users pick presets from it) must not diverge
    assert {n: (p.sft_lr, p.dpo_lr, p.dpo_beta, p.length_normalize)
            for n, p in P.PRESETS.items()} == _readme_presets()
    assert "llama3.1-8b (default)" in (Path(__file__).resolve().parents[1] / "README.md"
                                       ).read_text() and P.DEFAULT_PRESET == "llama3.1-8b"
    # each row reaches the trainer configs: lr, beta, and LN-DPO as TRL's sigmoid_norm
    for name, p in P.PRESETS.items():
        s = sft_config(str(tmp_path), n_rows=10, preset=name, bf16=False)
        d = dpo_config(str(tmp_path), n_rows=10, preset=name, bf16=False)
        assert (s.learning_rate, d.learning_rate, d.beta) == (p.sft_lr, p.dpo_lr, p.dpo_beta)
        assert d.loss_type == (["sigmoid_norm"] if p.length_normalize else ["sigmoid"])
    with pytest.raises(ValueError, match="unknown preset"):
        P.get_preset("mistral")


def test_configs_carry_the_paper_schedule(tmp_path):
    from fusedata.train.dpo import dpo_config
    from fusedata.train.sft import sft_config

    s = sft_config(str(tmp_path), n_rows=10_000, preset="qwen2.5-7b", per_device_batch=4,
                   bf16=False)
    assert (s.learning_rate, s.num_train_epochs, s.max_length) == (2e-6, 3, 2048)
    assert s.assistant_only_loss and s.gradient_accumulation_steps == 32
    assert getattr(s.lr_scheduler_type, "value", s.lr_scheduler_type) == "cosine"
    assert (s.save_steps, s.save_total_limit) == (100, 2)
    assert s.get_warmup_steps(1000) == 100
    d = dpo_config(str(tmp_path), n_rows=50, preset="llama3.2-1b", bf16=False)
    assert (d.learning_rate, d.beta, d.loss_type, d.num_train_epochs) == (
        1e-6, 10.0, ["sigmoid_norm"], 1)
    assert d.precompute_ref_log_probs and d.gradient_accumulation_steps == 25
    d2 = dpo_config(str(tmp_path), n_rows=50, preset="gemma2-9b", bf16=False)
    assert (d2.learning_rate, d2.beta, d2.loss_type) == (5e-7, 0.01, ["sigmoid"])


def test_accumulation_steps():
    assert P.accumulation_steps(100_000, 8, 128, n_processes=4) == 4
    assert P.accumulation_steps(100_000, 2, 128, n_processes=1) == 64
    assert P.accumulation_steps(20, 2, 128, n_processes=1) == 10  # capped at the set size
    assert P.accumulation_steps(3, 4, 128, n_processes=1) == 1
    with pytest.raises(ValueError):
        P.accumulation_steps(0, 2)


def _write(folder: Path, df: pl.DataFrame) -> None:
    folder.mkdir(parents=True)
    df.write_parquet(folder / "train-00000-of-00001.parquet")


def test_find_and_load_sets_of_the_export_layout_only(tmp_path):
    sft = pl.DataFrame({"messages": [_msg("user", "hi") + _msg("assistant", "yo")],
                        "prompt": ["hi"], "score": [0.5]})
    _write(tmp_path / "b" / "data" / "sft", sft)
    _write(tmp_path / "a" / "sft", sft)  # the pre-Hub layout is not read
    assert find_set(tmp_path / "b", "sft")[0].parent == tmp_path / "b" / "data" / "sft"
    with pytest.raises(TrainDataError, match=r"no sft set \(looked for data/sft/\*.parquet\)"):
        find_set(tmp_path / "a", "sft")
    ds = load_set(tmp_path / "b", "sft")
    assert ds.column_names == ["messages"]  # the plain-text prompt column is left out
    assert ds[0]["messages"][1] == {"role": "assistant", "content": "yo"}
    with pytest.raises(TrainDataError, match="no dpo set"):
        find_set(tmp_path / "b", "dpo")
    _write(tmp_path / "c" / "data" / "wrpo", pl.DataFrame({"prompt": [_msg("user", "x")]}))
    with pytest.raises(TrainDataError, match="lacks column.*chosen, rejected"):
        load_set(tmp_path / "c", "wrpo")


def test_wrpo_set_in_wrpos_shape_loads_for_the_trainer(tmp_path):
    """WRPO's record: prompt = one user message, chosen = [y_ws, y_wt], rejected = [y_l]."""
    ws, wt, yl = (_msg("assistant", t)[0] for t in ("source best", "target best", "worst"))
    row = {"prompt_id": "p", "prompt": {"role": "user", "content": "hi"},
           "chosen": [ws, wt], "rejected": [yl]}
    _write(tmp_path / "w" / "data" / "wrpo", pl.DataFrame([row]))      # WRPO's own files
    ds = load_set(tmp_path / "w", "wrpo")
    assert ds.column_names == ["prompt", "chosen_source", "chosen_target", "rejected"]
    assert ds[0] == {"prompt": _msg("user", "hi"), "chosen_source": [ws],
                     "chosen_target": [wt], "rejected": [yl]}
    # fusedata's export adds every prompt turn: the trainer takes those
    turns = _msg("system", "be brief") + _msg("user", "hi")
    _write(tmp_path / "f" / "data" / "wrpo",
           pl.DataFrame([{**row, "prompt_messages": turns}]))
    assert load_set(tmp_path / "f", "wrpo")[0]["prompt"] == turns
    _write(tmp_path / "bad" / "data" / "wrpo", pl.DataFrame([{**row, "chosen": [ws]}]))
    with pytest.raises(TrainDataError, match=r"row 0: a WRPO record needs chosen = \[y_ws, y_wt\]"):
        load_set(tmp_path / "bad", "wrpo")


def test_sft_on_a_set_smaller_than_one_batch_steps_once_per_epoch(tiny_models, tmp_path):
    import datasets
    from trl import SFTTrainer

    from fusedata.train.sft import sft_config

    rows = [{"messages": _msg("user", p) + _msg("assistant", g)}
            for p, g in zip(PROMPTS + PROMPTS[:2], GOOD + GOOD[:2], strict=True)]
    args = sft_config(str(tmp_path / "sft"), n_rows=len(rows), lr=1e-3, per_device_batch=2,
                      bf16=False, gradient_checkpointing=False)
    assert args.gradient_accumulation_steps == 3 and args.num_train_epochs == 3
    path = tiny_models["target"]
    tr = SFTTrainer(model=str(path), args=args, processing_class=_tok(path),
                    train_dataset=datasets.Dataset.from_list(rows))
    # assistant-only loss: the prompt's tokens are -100 in the labels, the answer's are not
    ex = tr.train_dataset[0]
    n_prompt = len(_tok(path).apply_chat_template(rows[0]["messages"][:1],
                                                  add_generation_prompt=True)["input_ids"])
    assert all(t == -100 for t in ex["labels"][:n_prompt])
    assert ex["labels"][n_prompt:] == ex["input_ids"][n_prompt:len(ex["labels"])]
    tr.train()
    assert tr.state.global_step == 3  # 6 rows = one effective batch per epoch, 3 epochs
