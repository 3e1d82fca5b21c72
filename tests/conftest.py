"""Shared fixtures: tiny random-weight models built offline once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    from transformers.utils import logging as tlog

    from fusedata.tiny import ensure_demo_models

    tlog.disable_progress_bar()
    return ensure_demo_models(tmp_path_factory.mktemp("models"), seed=0)


def demo_recipe_dict(models: dict[str, Path], out: Path, **over) -> dict:
    """The demo recipe, with absolute paths to the fixture models and data."""
    data = ROOT / "recipes" / "data"
    r = {
        "name": "test",
        "seed": 0,
        "output_dir": str(out),
        "prompts": [
            {"name": "inst", "path": str(data / "demo_instructions.jsonl"),
             "fields": {"prompt": "instruction"}, "category": "instruction"},
            {"name": "chat", "path": str(data / "demo_chat.jsonl"),
             "fields": {"messages": "messages"}, "category": "instruction"},
        ],
        "models": [
            {"name": "policy-a", "path": str(models["policy-a"]),
             "sampling": {"temperature": 0.8, "top_p": 0.95, "max_tokens": 24, "seed": 1},
             "samples": {"default": 3}, "batch_size": 32},
            {"name": "policy-b", "path": str(models["policy-b"]),
             "sampling": {"temperature": 0.7, "top_p": 0.8, "repetition_penalty": 1.05,
                          "max_tokens": 24, "seed": 2},
             "samples": {"default": 3}, "batch_size": 32},
        ],
        "reward_model": {"path": str(models["reward"]), "max_length": 512},
        "selection": {"seed": 0, "split": {"instruction": {"sft": 0.4}}},
        "executor": {"shard_size": 8},
    }
    for k, v in over.items():
        r[k] = v
    return r


def write_recipe(path: Path, d: dict) -> Path:
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return path
