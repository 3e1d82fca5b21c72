"""Tiny random-weight stand-in models, built offline, for the demo and the tests.

They are real ``transformers`` models (Llama architecture) with a real
byte-level BPE tokenizer trained here with ``tokenizers`` and a chat template,
so every code path (chat templating, batched generation, sequence-classification
pooling, TRL training) is exercised; their outputs are of course gibberish.
Nothing is downloaded.

The chat template marks assistant turns with ``{% generation %}`` so TRL can
compute an assistant-only loss.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger("fusedata")

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for m in messages %}"
    "{% if m['role'] == 'assistant' %}"
    "<|assistant|>\n{% generation %}{{ m['content'] }}<|end|>{% endgeneration %}\n"
    "{% else %}"
    "<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

SPECIALS = ["<pad>", "<s>", "<|end|>", "<|user|>", "<|assistant|>", "<|system|>"]

_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "def add(a, b):\n    return a + b\n",
    "Solve for x: 2x + 3 = 7. The answer is \\boxed{2}.",
    "Write a short poem about the sea and the sky.",
    "Explain gradient descent in simple terms.",
    "请用中文介绍一下你自己。",
    "import math\nprint(math.sqrt(16))\n",
    "What is the capital of France? Paris is the capital.",
    "A list comprehension: [x * x for x in range(10) if x % 2 == 0]",
    "The derivative of x^2 is 2x; the integral of 2x is x^2 + C.",
]


def build_tokenizer(padding_side: str = "left", vocab_size: int = 384):
    """Train a small byte-level BPE and wrap it as a fast HF tokenizer with a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(_CORPUS * 20, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="<|end|>", pad_token="<pad>",
        padding_side=padding_side, chat_template=CHAT_TEMPLATE,
        model_max_length=1024,
    )


def _config(tok, seed: int, hidden: int = 64, layers: int = 2, max_positions: int = 1024):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=max_positions, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )


def build_policy(path: str | Path, seed: int = 0, eos_after: int = 6) -> Path:
    """A random-weight LlamaForCausalLM + tokenizer saved at ``path``.

    ``eos_after``: from that many new tokens on, the end-of-turn token is made
    exponentially more likely (transformers' ``exponential_decay_length_penalty``
    in the saved generation config), so the stand-in's answers have varied
    lengths instead of always running to ``max_tokens``.
    """
    import torch
    from transformers import GenerationConfig, LlamaForCausalLM

    path = Path(path)
    tok = build_tokenizer("left")
    torch.manual_seed(seed)
    model = LlamaForCausalLM(_config(tok, seed))
    model.generation_config = GenerationConfig(
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id, exponential_decay_length_penalty=(eos_after, 1.6),
    )
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def build_reward_model(path: str | Path, seed: int = 0, padding_side: str = "right",
                       head_scale: float = 1.0, max_positions: int = 1024) -> Path:
    """A random-weight LlamaForSequenceClassification (one label) + tokenizer at ``path``.

    ``max_positions``: the model's context (the reward benchmark needs > 2,000 tokens).
    """
    import torch
    from transformers import LlamaForSequenceClassification

    path = Path(path)
    tok = build_tokenizer(padding_side)
    torch.manual_seed(seed)
    cfg = _config(tok, seed, max_positions=max_positions)
    cfg.num_labels = 1
    model = LlamaForSequenceClassification(cfg)
    with torch.no_grad():
        model.score.weight.mul_(head_scale)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def ensure_demo_models(folder: str | Path, seed: int = 0) -> dict[str, Path]:
    """Build the demo's stand-ins once (policy-a, policy-b, target, reward); reuse after."""
    folder = Path(folder)
    marker = folder / "fusedata-demo-models.json"
    spec = {"version": 1, "seed": seed}
    paths = {n: folder / n for n in ("policy-a", "policy-b", "target", "reward")}
    if marker.exists() and json.loads(marker.read_text()) == spec and all(
            (p / "config.json").exists() for p in paths.values()):
        return paths
    log.info("building random-weight stand-in models in %s (no download)", folder)
    from transformers.utils import logging as tlog

    tlog.disable_progress_bar()
    build_policy(paths["policy-a"], seed=seed + 1)
    build_policy(paths["policy-b"], seed=seed + 2)
    build_policy(paths["target"], seed=seed + 3)
    build_reward_model(paths["reward"], seed=seed + 4)
    marker.write_text(json.dumps(spec))
    return paths
