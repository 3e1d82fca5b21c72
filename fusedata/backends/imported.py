"""The ``import`` backend: responses that already exist, attributed to a named model.

FuseChat-3.0 reused the Llama-3.1-405B-Instruct solutions shipped inside
OpenMathInstruct-2 (``generated_solution``) instead of sampling them again.
Such a source maps the column with ``fields: {response: generated_solution}``;
the prompts stage keeps it as ``existing_response`` and this backend returns
it as the model's one sample.  From there on the response is an ordinary
record: it is scored by the reward model, verified (math/code) and selected
exactly like a sampled one, under the model's ``name``.

A prompt whose source row had no response becomes a ``finish_reason: error``
row saying so (never a silent gap), and a recipe that routes a source without
``fields.response`` to an import model is rejected when it is loaded.
"""

from __future__ import annotations

from ..recipe import ImportOptions, ModelSpec
from .base import Generation, Request, Sampler


class ImportSampler(Sampler):
    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        self.opts = spec.import_ or ImportOptions()
        self.version = f"import:{self.opts.generator or 'existing_response'}"
        self.tok = None

    def load(self) -> None:
        if self.opts.tokenizer:
            from transformers import AutoTokenizer

            self.tok = AutoTokenizer.from_pretrained(self.opts.tokenizer)

    def close(self) -> None:
        self.tok = None

    def _count(self, text: str) -> int:
        if self.tok is None:
            return 0
        return len(self.tok(text, add_special_tokens=False)["input_ids"])

    def generate(self, requests: list[Request]) -> list[list[Generation]]:
        out: list[list[Generation]] = []
        for r in requests:
            if r.n == 0:
                out.append([])
                continue
            if r.n > 1:  # the recipe check forbids this; a clear row if it ever happens
                raise ValueError(f"model {self.spec.name!r}: import backend asked for {r.n} "
                                 f"samples of prompt {r.key}; it has one existing response")
            if r.existing is None or not r.existing.strip():
                out.append([Generation("", "error", error="import: the source row has no "
                                                          "response (fields.response empty)")])
                continue
            out.append([Generation(r.existing, "stop", 0, self._count(r.existing))])
        return out
