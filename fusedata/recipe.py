"""The recipe: one YAML file that says everything a build needs.

The schema is strict (unknown keys are errors) because a typo such as
``temprature: 0.7`` silently falling back to a default would waste thousands
of GPU hours.  Errors name the YAML path *and* the line, e.g.::

    recipes/demo.yaml:14: models[2].sampling.top_p: must be <= 1

Stages never read the raw YAML: they receive the validated pydantic objects
below, and their cache keys are computed from ``model_dump()`` of the part of
the recipe that affects them (see :mod:`fusedata.engine`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Category = Literal["instruction", "math", "code", "chinese"]
CATEGORIES: tuple[str, ...] = ("instruction", "math", "code", "chinese")


class RecipeError(ValueError):
    """A recipe could not be loaded; the message lists every problem with its line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


# --------------------------------------------------------------------------- prompts


class FieldMap(_Strict):
    """Which columns of a source hold what.

    Exactly one of ``prompt`` (a plain string column, becomes one user turn)
    or ``messages`` (a list of ``{role, content}`` or ``{from, value}`` dicts)
    must be given.
    """

    id: str | None = None
    prompt: str | None = None
    system: str | None = None
    messages: str | None = None
    gold: str | None = None
    tests: str | None = None
    response: str | None = Field(
        default=None, description="column with an existing response (import backend)"
    )

    @model_validator(mode="after")
    def _one_prompt_field(self) -> FieldMap:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of 'prompt' or 'messages'")
        return self


class PromptSource(_Strict):
    """One prompt dataset: a Hub id or a local jsonl/json/parquet file or folder."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    path: str
    format: Literal["auto", "jsonl", "json", "parquet", "hf"] = "auto"
    loader: str = "generic"
    split: str = "train"
    subset: str | None = None
    revision: str | None = None
    fields: FieldMap
    category: Category
    limit: Annotated[int, Field(gt=0)] | None = None
    seed: int | None = None
    filters: list[dict[str, Any]] = Field(default_factory=list)
    options: dict[str, Any] = Field(default_factory=dict)


# --------------------------------------------------------------------------- models


class SamplingParams(_Strict):
    temperature: Annotated[float, Field(ge=0)] = 0.8
    top_p: Annotated[float, Field(gt=0, le=1)] = 0.95
    top_k: Annotated[int, Field(ge=0)] = 0
    repetition_penalty: Annotated[float, Field(gt=0)] = 1.0
    max_tokens: Annotated[int, Field(gt=0)] = 2048
    seed: int = 0


class ModelSpec(_Strict):
    """A model that generates responses (a source model or the target model)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    role: Literal["source", "target"] = "source"
    backend: Literal["transformers", "vllm", "openai", "import"] = "transformers"
    path: str | None = None
    sampling: SamplingParams = Field(default_factory=SamplingParams)
    samples: dict[str, Annotated[int, Field(ge=0)]] = Field(
        default_factory=lambda: {"default": 5},
        description="samples per prompt by category; 'default' covers the rest; 0 skips",
    )
    sources: list[str] | None = Field(
        default=None, description="only these prompt sources (default: all)"
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    batch_size: Annotated[int, Field(gt=0)] = 16
    options: dict[str, Any] = Field(
        default_factory=dict, description="backend-specific settings (see each backend)"
    )

    @field_validator("samples")
    @classmethod
    def _known_categories(cls, v: dict[str, int]) -> dict[str, int]:
        bad = sorted(set(v) - set(CATEGORIES) - {"default"})
        if bad:
            raise ValueError(
                f"unknown category {bad[0]!r}; use one of {', '.join(CATEGORIES)} or 'default'"
            )
        return v

    def samples_for(self, category: str) -> int:
        return self.samples.get(category, self.samples.get("default", 0))

    @model_validator(mode="after")
    def _path_needed(self) -> ModelSpec:
        if self.backend in ("transformers", "vllm") and not self.path:
            raise ValueError(f"backend {self.backend!r} needs 'path'")
        return self


class RewardModelSpec(_Strict):
    backend: Literal["transformers"] = "transformers"
    path: str
    name: str | None = None
    output: str = Field(
        default="logits",
        description="'logits' reads logits[:, 0]; any other name reads that attribute (ArmoRM: 'score')",
    )
    trust_remote_code: bool = False
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    max_length: Annotated[int, Field(gt=0)] = 4096
    truncation_side: Literal["left", "right"] = "left"
    batch_tokens: Annotated[int, Field(gt=0)] = 16384


class MathVerifier(_Strict):
    type: Literal["math"] = "math"
    timeout_s: Annotated[float, Field(gt=0)] = 5.0
    workers: Annotated[int, Field(gt=0)] | None = None


class CodeVerifier(_Strict):
    type: Literal["sandbox"] = "sandbox"
    timeout_s: Annotated[float, Field(gt=0)] = 10.0
    memory_mb: Annotated[int, Field(gt=0)] = 1024
    workers: Annotated[int, Field(gt=0)] | None = None
    isolation: bool = True


class Verifiers(_Strict):
    math: MathVerifier | None = None
    code: CodeVerifier | None = None


class SplitRule(_Strict):
    """How one category's prompts are divided between SFT and DPO.

    ``ratio``: a prompt goes to SFT when ``hash(seed, prompt_id) < sft``.
    ``pair_first``: see :mod:`fusedata.select`.
    ``sft_only``: every prompt is an SFT prompt (Chinese sets in the seed).
    """

    mode: Literal["ratio", "pair_first", "sft_only"] = "ratio"
    sft: Annotated[float, Field(ge=0, le=1)] = 0.4
    dpo_share: Annotated[float, Field(ge=0, le=1)] = 1.0
    model: str | None = Field(default=None, description="sft_only: the single source model")


class Selection(_Strict):
    seed: int = 0
    split: dict[str, SplitRule] = Field(default_factory=dict)
    margin: tuple[float, float] = (0.01, 0.1)
    window_policy: Literal["nearest", "strict"] = "nearest"
    pairing: Literal["best_chosen", "random", "all"] = "best_chosen"

    @field_validator("margin")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if v[0] > v[1]:
            raise ValueError("margin must be [low, high] with low <= high")
        return v

    @field_validator("split")
    @classmethod
    def _split_categories(cls, v: dict[str, SplitRule]) -> dict[str, SplitRule]:
        bad = sorted(set(v) - set(CATEGORIES) - {"default"})
        if bad:
            raise ValueError(f"unknown category {bad[0]!r}")
        return v

    def rule_for(self, category: str) -> SplitRule:
        return self.split.get(category) or self.split.get("default") or SplitRule()


class Executor(_Strict):
    type: Literal["local", "ray"] = "local"
    address: str | None = None
    shard_size: Annotated[int, Field(gt=0)] = 64
    resources: dict[str, dict[str, float]] = Field(default_factory=dict)


class CardSpec(_Strict):
    """Dataset-card metadata for the published repository (see fusedata.card)."""

    license: str = Field(default="other", description="Hub license id of the released data")
    pretty_name: str | None = None
    language: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list, description="extra Hub tags")


class Recipe(_Strict):
    name: str = "fusedata"
    description: str = ""
    seed: int = 0
    output_dir: str = "out"
    work_dir: str | None = Field(
        default=None, description="stage cache; default: <output_dir>/.work"
    )
    prompts: list[PromptSource] = Field(min_length=1)
    models: list[ModelSpec] = Field(min_length=1)
    reward_model: RewardModelSpec | None = None
    verifiers: Verifiers = Field(default_factory=Verifiers)
    selection: Selection = Field(default_factory=Selection)
    executor: Executor = Field(default_factory=Executor)
    card: CardSpec = Field(default_factory=CardSpec)
    demo: dict[str, Any] | None = Field(
        default=None, description="build random-weight stand-in models (demo recipe only)"
    )

    @model_validator(mode="after")
    def _cross_checks(self) -> Recipe:
        names = [m.name for m in self.models]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate model name {sorted(dup)[0]!r}")
        srcs = [p.name for p in self.prompts]
        dup = {n for n in srcs if srcs.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate prompt source name {sorted(dup)[0]!r}")
        for i, m in enumerate(self.models):
            for s in m.sources or []:
                if s not in srcs:
                    raise ValueError(f"models[{i}].sources: unknown prompt source {s!r}")
        for cat, rule in self.selection.split.items():
            if rule.model is not None and rule.model not in names:
                raise ValueError(f"selection.split.{cat}.model: unknown model {rule.model!r}")
        return self

    # Resolved locations ------------------------------------------------------
    def out_path(self, base: Path) -> Path:
        return (base / self.output_dir).resolve()

    def work_path(self, base: Path) -> Path:
        if self.work_dir:
            return (base / self.work_dir).resolve()
        return self.out_path(base) / ".work"


# --------------------------------------------------------------------------- loading


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that remembers the line of every mapping key and sequence item."""


def _compose_with_lines(text: str) -> tuple[Any, dict[tuple, int]]:
    loader = _LineLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[tuple, int] = {}

        def walk(n: yaml.Node, path: tuple) -> None:
            lines[path] = n.start_mark.line + 1
            if isinstance(n, yaml.MappingNode):
                for k, v in n.value:
                    key = path + (k.value,)
                    walk(v, key)
                    lines[key] = k.start_mark.line + 1
            elif isinstance(n, yaml.SequenceNode):
                for i, v in enumerate(n.value):
                    walk(v, path + (i,))

        if node is not None:
            walk(node, ())
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return data, lines


def _fmt_loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _fmt_msg(err: dict) -> str:
    ctx = err.get("ctx") or {}
    t = err["type"]
    if t == "less_than_equal":
        return f"must be <= {ctx.get('le')}"
    if t == "less_than":
        return f"must be < {ctx.get('lt')}"
    if t == "greater_than_equal":
        return f"must be >= {ctx.get('ge')}"
    if t == "greater_than":
        return f"must be > {ctx.get('gt')}"
    if t == "extra_forbidden":
        return "unknown key (check the spelling; see `fusedata validate --help`)"
    if t == "missing":
        return "required field is missing"
    if t == "literal_error":
        return f"must be one of {ctx.get('expected')}"
    msg = err["msg"]
    return msg.removeprefix("Value error, ")


def _loc_for_yaml(loc: tuple) -> tuple:
    # pydantic inserts tagged-union / function names into loc; keep only real path parts
    return tuple(p for p in loc if isinstance(p, int) or not str(p).startswith("function-"))


def parse_recipe(text: str, source: str = "<recipe>") -> Recipe:
    """Parse and validate recipe YAML text.

    Raises :class:`RecipeError` listing *every* problem as
    ``SOURCE:LINE: path.to[field]: message`` so users fix them in one go.
    """
    try:
        data, lines = _compose_with_lines(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise RecipeError(f"{where}: not valid YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{source}:1: a recipe must be a YAML mapping (key: value)")
    try:
        return Recipe.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            loc = _loc_for_yaml(err["loc"])
            line = None
            for k in range(len(loc), -1, -1):
                if loc[:k] in lines:
                    line = lines[loc[:k]]
                    break
            problems.append(f"{source}:{line or 1}: {_fmt_loc(loc)}: {_fmt_msg(err)}")
        raise RecipeError("\n".join(problems)) from None


def load_recipe(path: str | Path) -> Recipe:
    p = Path(path)
    if not p.is_file():
        raise RecipeError(f"{p}: no such recipe file")
    return parse_recipe(p.read_text(encoding="utf-8"), source=str(p))
