"""The recipe schema: the validated pydantic models a build runs from.

The schema is strict (unknown keys are errors) because a typo such as
``temprature: 0.7`` silently falling back to a default would waste thousands
of GPU hours.  Reading the YAML file, with the line of every key for error
messages, is :mod:`fusedata.recipe.load`; this module knows nothing of YAML.

Stages never read the raw YAML: they receive the validated objects below, and
their cache keys are computed from ``model_dump()`` of the part of the recipe
that affects them (see :mod:`fusedata.engine`).  Sections, in file order:
prompts (sources and filters), models (and their backends), reward model and
verifiers, selection, executor (``class Executor``), card, and :class:`Recipe`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..sources import LOADERS
from ..storage import RemotePath, location

Category = Literal["instruction", "math", "code", "chinese"]
CATEGORIES: tuple[str, ...] = ("instruction", "math", "code", "chinese")


class LocatedError(ValueError):
    """A cross-field check's error at a YAML path below the model that raised it.

    pydantic reports a model validator's errors at the model itself (the top of the
    file for :class:`Recipe`); :func:`fusedata.recipe.load.parse_recipe` reads ``loc``
    from the error's context so the message names the offending key and its line.
    """

    def __init__(self, loc: tuple, message: str):
        super().__init__(message)
        self.loc = loc


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


# --------------------------------------------------------------------------- prompts


class FieldMap(_Strict):
    """Which columns of a source hold what.

    Exactly one of ``prompt`` (a plain string column, becomes one user turn)
    or ``messages`` (a list of ``{role, content}`` or ``{from, value}`` dicts)
    must be given.
    """

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


class DomainFilter(_Strict):
    """Drop prompts of the excluded domains (code and/or math).

    The dataset's own task label is used where the loader provides one (Magpie's
    ``task_category``); otherwise the heuristic classifier in
    :mod:`fusedata.sources.classify` decides (code fences, programming keywords,
    LaTeX / arithmetic density).  Drop reasons: ``domain:code``, ``domain:math``
    (``domain:code:label`` when the dataset's label decided).
    """

    type: Literal["domain"]
    exclude: list[Literal["code", "math"]] = Field(default_factory=lambda: ["code", "math"],
                                                   min_length=1)
    use_dataset_labels: bool = True


class LanguageFilter(_Strict):
    """Keep prompts written in ``lang``.

    ``zh``: CJK characters / (CJK characters + Latin words) of the user turns must
    be >= ``min_ratio``; ``en``: one minus that share must be >= ``min_ratio``.  A
    dataset language label (Magpie's ``language``) decides instead where present.
    Drop reason: ``language:<detected>`` (``language:<label>:label``).
    """

    type: Literal["language"]
    lang: Literal["zh", "en"] = "zh"
    min_ratio: Annotated[float, Field(gt=0, le=1)] = 0.3


class HasTestsFilter(_Strict):
    """Keep only prompts whose loader extracted runnable tests (coding sets)."""

    type: Literal["has_tests"]


class DedupFilter(_Strict):
    """Exact duplicates of the normalised user text (lower case, whitespace and
    punctuation removed) and, with ``near_threshold``, near duplicates whose
    estimated Jaccard similarity of ``shingle``-token shingles (MinHash with
    ``num_perm`` permutations + LSH) is >= the threshold.  The first prompt in
    processing order wins.  Drop reasons: ``duplicate_normalized``, ``near_duplicate``.
    Across sources: the filter also compares each row with the prompts kept by every
    source listed *before* this one in the recipe, with the same settings, and drops a
    repeat as ``duplicate_normalized:<that source>`` / ``near_duplicate:<that source>``
    before it counts towards ``limit`` (the earlier source keeps the prompt; a source
    without a dedup filter only loses exact repeats, at the merge).
    Prompts are short, so shingles are 3 tokens by default (a CJK character is a
    token): one changed word in a 20-word prompt gives Jaccard ~0.7, so 0.8 only
    catches small edits of long prompts; lower the threshold for more aggressive
    dedup.
    """

    type: Literal["dedup"]
    normalize: bool = True
    near_threshold: Annotated[float, Field(gt=0, le=1)] | None = 0.8
    num_perm: Annotated[int, Field(ge=16, le=1024)] = 128
    shingle: Annotated[int, Field(ge=1, le=20)] = 3


class DecontaminateFilter(_Strict):
    """Drop prompts sharing a token ``ngram`` with any prompt of the benchmark files.

    ``files``: jsonl/json/parquet (text taken from ``fields``, default: the usual
    prompt columns ``prompt``, ``question``, ``problem``, ``instruction``, ``input``,
    ``content``, ``text``, ``turns``) or .txt (one prompt per line); paths are
    relative to the recipe.  Texts shorter than ``ngram`` tokens are matched whole.
    Drop reason: ``contaminated:<file name>``.
    """

    type: Literal["decontaminate"]
    files: list[str] = Field(min_length=1)
    ngram: Annotated[int, Field(ge=3, le=50)] = 13
    fields: list[str] | None = None


class ReferencePassesFilter(_Strict):
    """Run the dataset's own solution (``meta.reference`` from the loader) against the
    extracted tests in the sandbox, with the sandbox's isolation, and drop the row when it
    does not pass (self-oss-instruct: a row whose response fails its own assertions).
    Rows without a reference are dropped as ``reference:none`` unless ``keep_without``.
    Drop reasons: ``reference:<verdict>`` (``failed``, ``timeout``, ``static_error``...).
    Runs one job per row through a warm :class:`sandbox.SandboxPool` of ``workers``.
    """

    type: Literal["reference_passes"]
    workers: Annotated[int, Field(ge=1, le=256)] = 2
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 10.0
    memory_mb: Annotated[int, Field(ge=64, le=65536)] = 1024
    keep_without: bool = False


PromptFilter = Annotated[
    DomainFilter | LanguageFilter | HasTestsFilter | DedupFilter | DecontaminateFilter
    | ReferencePassesFilter,
    Field(discriminator="type"),
]


class PromptSource(_Strict):
    """One prompt dataset: a Hub id or a local jsonl/json/parquet file or folder.

    ``loader`` names a dataset-family loader (``fusedata.sources``: ultrafeedback,
    magpie, helpsteer2, openmathinstruct2, leetcode, self_oss_instruct, alpaca) or
    ``generic`` (which needs ``fields``).  ``filters`` run in order after the
    loader; every removed row goes to the source's ``dropped`` table with a reason.
    ``limit`` is the target number of prompts kept *after* filtering; with ``seed``
    rows are visited in a seeded random order (Hub datasets: a streaming shuffle
    with a ``shuffle_buffer``-row buffer) so the kept prompts are a seeded sample.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    path: str
    format: Literal["auto", "jsonl", "json", "parquet", "hf"] = "auto"
    loader: str = "generic"
    split: str = "train"
    subset: str | None = None
    revision: str | None = None
    fields: FieldMap | None = None
    category: Category
    limit: Annotated[int, Field(gt=0)] | None = None
    seed: int | None = None
    shuffle_buffer: Annotated[int, Field(gt=0)] = 10_000
    filters: list[PromptFilter] = Field(default_factory=list)
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _loader_known(self) -> PromptSource:
        if self.loader not in LOADERS:
            raise ValueError(f"unknown loader {self.loader!r}; known: {', '.join(sorted(LOADERS))}")
        if self.loader == "generic" and self.fields is None:
            raise ValueError("the generic loader needs 'fields' (prompt or messages column)")
        if self.loader != "generic" and self.fields is not None:
            raise ValueError(f"'fields' applies to the generic loader only; loader "
                             f"{self.loader!r} knows its dataset's columns")
        return self


# --------------------------------------------------------------------------- models


class SamplingParams(_Strict):
    temperature: Annotated[float, Field(ge=0)] = 0.8
    top_p: Annotated[float, Field(gt=0, le=1)] = 0.95
    top_k: Annotated[int, Field(ge=0)] = 0
    repetition_penalty: Annotated[float, Field(gt=0)] = 1.0
    max_tokens: Annotated[int, Field(gt=0)] = 2048
    seed: int = 0


class TransformersOptions(_Strict):
    """Settings of the embedded transformers backend (``backend: transformers``)."""

    continuous_batching: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="transformers' generate_batch (paged attention); auto: padded generate "
                    "(faster in our measurements on CPU and on an H100; see backends/hf.py)",
    )


class VLLMOptions(_Strict):
    """Settings of the vLLM offline engine (``backend: vllm``); passed to ``vllm.LLM``."""

    tensor_parallel_size: Annotated[int, Field(gt=0)] = 1
    gpu_memory_utilization: Annotated[float, Field(gt=0, le=1)] = 0.9
    max_model_len: Annotated[int, Field(gt=0)] | None = None
    enable_prefix_caching: bool = True
    trust_remote_code: bool = False
    engine_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="any other vllm.LLM keyword (e.g. quantization)"
    )


class HTTPOptions(_Strict):
    """An OpenAI-compatible server (``backend: openai``): vLLM, SGLang, TGI, transformers serve.

    ``path`` of the model is the model name sent in each request.
    """

    base_urls: list[str] = Field(min_length=1, description="e.g. http://node1:8000/v1")
    api_key_env: str | None = Field(
        default=None, description="name of the environment variable holding the API key"
    )
    concurrency: Annotated[int, Field(gt=0)] = 64
    max_retries: Annotated[int, Field(ge=0)] = 8
    backoff_s: Annotated[float, Field(gt=0)] = 0.5
    max_backoff_s: Annotated[float, Field(gt=0)] = 30.0
    timeout_s: Annotated[float, Field(gt=0)] = 600.0
    n_per_request: Annotated[int, Field(gt=0)] | None = Field(
        default=None, description="most samples asked per request (`n`); 1 for servers without n"
    )
    sampling_extensions: bool = Field(
        default=True,
        description="send top_k / repetition_penalty (vLLM, SGLang); false for strict servers",
    )
    extra_body: dict[str, Any] = Field(default_factory=dict)


class ImportOptions(_Strict):
    """Existing responses (``backend: import``), read from the prompt sources' ``fields.response``."""

    generator: str | None = Field(
        default=None, description="who wrote the responses, recorded in `sampler`"
    )
    tokenizer: str | None = Field(
        default=None, description="count response tokens with this tokenizer (else 0)"
    )


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
    transformers: TransformersOptions | None = None
    vllm: VLLMOptions | None = None
    http: HTTPOptions | None = None
    import_: ImportOptions | None = Field(
        default=None, validation_alias="import", serialization_alias="import"
    )

    @model_validator(mode="before")
    @classmethod
    def _import_defaults(cls, data: Any) -> Any:
        # an imported dataset holds one response per prompt: default to one sample
        if isinstance(data, dict) and data.get("backend") == "import" and "samples" not in data:
            data = {**data, "samples": {"default": 1}}
        return data

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
        if self.backend in ("transformers", "vllm", "openai") and not self.path:
            raise ValueError(f"backend {self.backend!r} needs 'path'"
                             + (" (the model name the server expects)"
                                if self.backend == "openai" else ""))
        if self.backend == "openai" and self.http is None:
            raise ValueError("backend 'openai' needs 'http: {base_urls: [...]}'")
        if self.backend == "import" and any(v > 1 for v in self.samples.values()):
            raise ValueError("backend 'import' has one existing response per prompt: "
                             "samples must be 0 or 1")
        if self.backend == "openai" and self.http and not self.http.sampling_extensions:
            sp = self.sampling
            if sp.top_k or sp.repetition_penalty != 1.0:
                raise ValueError("sampling.top_k / repetition_penalty are set but "
                                 "http.sampling_extensions is false: the server would ignore them")
        if self.backend == "vllm":
            self._vllm_sampling()
        for opt, backend in (("transformers", "transformers"), ("vllm", "vllm"),
                             ("http", "openai"), ("import_", "import")):
            if getattr(self, opt) is not None and self.backend != backend:
                raise ValueError(f"'{opt.rstrip('_')}' settings given but backend is "
                                 f"{self.backend!r}")
        return self

    def _vllm_sampling(self) -> None:
        """Reject what ``vllm.SamplingParams`` would reject or silently change (vLLM 0.33).

        vLLM raises for temperature > 2 and for n > 1 with temperature 0 (greedy),
        and raises 0 < temperature < 0.01 to 0.01 with only a log line; at build
        time the first two lose a whole shard and the third records a temperature
        that was not used.  The checks are vLLM's (``SamplingParams._verify_args``,
        ``_verify_greedy_sampling``, ``__post_init__``'s ``_MAX_TEMP``).
        """
        t = self.sampling.temperature
        if t > 2.0:
            raise LocatedError(("sampling", "temperature"),
                               f"backend 'vllm' accepts temperature in [0, 2], got {t}")
        if 0 < t < 0.01:
            raise LocatedError(("sampling", "temperature"),
                               f"vLLM raises a temperature below 0.01 to 0.01 (got {t}); use 0 "
                               "for greedy decoding or a value >= 0.01")
        if t == 0:
            many = sorted(k for k, v in self.samples.items() if v > 1)
            if many:
                raise LocatedError(("sampling", "temperature"),
                                   f"temperature 0 is greedy decoding, where vLLM needs n == 1, "
                                   f"but samples.{many[0]} is {self.samples[many[0]]}; set "
                                   "samples to 0/1 or use a temperature > 0")


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
    padding_side: Literal["left", "right"] | None = Field(
        default=None, description="pad batches on this side; null: the RM tokenizer's own")
    devices: list[str] | None = Field(
        default=None,
        description="one model replica per listed device (e.g. [cuda:0, cuda:1]); null: every "
                    "visible GPU when device is auto, else just `device`")
    cache: bool = Field(
        default=True,
        description="reuse scores per (RM, prompt, response) from WORK/score_cache")


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
    """How one category's (or one prompt source's) prompts are divided between SFT and DPO.

    See :mod:`fusedata.select` for the exact rules.  ``u(seed, prompt_id)`` is uniform in
    [0, 1), stable across machines and library versions.

    ``record_share``: per prompt source, the final records land on ``sft`` SFT /
    ``1 - sft`` DPO within one record: prompts that can only give an SFT record go to
    SFT, prompts that can only give a DPO pair go to DPO, prompts that can give either
    fill the remaining quota in ``u`` order, and when one kind alone exceeds its share the
    excess prompts (highest ``u``) are dropped as ``over_share``.  FuseChat-3.0's table is
    exactly this for instruction following (4:6 of final records); its math/code rows give
    each source's own share.
    ``ratio``: a prompt goes to SFT when ``u < sft``, else to DPO (a share of *prompts*:
    DPO-side prompts without a valid pair are dropped, so the records drift from the ratio).
    ``pair_first``: per prompt source, prompts that can form a valid DPO pair go to DPO,
    in ``u`` order, until ``dpo_share`` of the source's prompts are DPO; every other prompt
    is an SFT prompt.
    ``sft_only``: every prompt is an SFT prompt (the seed's Chinese sets).
    """

    mode: Literal["record_share", "ratio", "pair_first", "sft_only"] = Field(
        default="ratio",
        description="record_share | ratio | pair_first | sft_only (see the class docstring)")
    sft: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.4,
        description="record_share: share of the final records that are SFT; ratio: share "
                    "of prompts sent to SFT")
    dpo_share: Annotated[float, Field(ge=0, le=1)] = Field(
        default=1.0,
        description="pair_first mode: at most this share of a source's prompts go to DPO")
    model: str | None = Field(
        default=None,
        description="only this source model supplies SFT responses (Chinese sets: "
                    "Qwen-2.5-72B-Instruct in FuseChat-3.0); default: all source models")


#: every verdict the verifiers write, per category (``fusedata.mathcheck``, ``sandbox``);
#: math ``too_complex`` is a checker refusal (an input it will not evaluate).
KNOWN_VERDICTS: dict[str, tuple[str, ...]] = {
    "math": ("correct", "incorrect", "no_answer", "timeout", "too_complex", "error"),
    "code": ("passed", "failed", "timeout", "memory", "syntax_error", "static_error",
             "sandbox_error"),
}
#: the one verdict per category that makes a response eligible (SFT target, DPO chosen)
PASSING_VERDICT: dict[str, str] = {"math": "correct", "code": "passed"}

#: verdicts that mark a math/code response as a valid *rejected* response: the verifier ran
#: and says the answer or the code is wrong.  Math: only ``incorrect`` (the seed's "incorrect
#: answers"); ``no_answer`` (no final answer could be extracted), a checker ``timeout`` /
#: ``too_complex`` / ``error`` say nothing about the answer, so the response is unusable.
#: Code: the program ran (or was statically checked) and misbehaved: wrong result
#: (``failed``), over the CPU-time limit (``timeout``, the self-oss exec filter's 4 s rule),
#: over the memory limit, or does not parse / fails static analysis.  ``sandbox_error`` is
#: the runner's own failure and says nothing about the code: unusable.  Add ``no_answer``
#: to math, or remove ``timeout`` from code when the sandbox's limit is wall-clock time on
#: an overloaded machine, through ``selection.failing_verdicts``.
DEFAULT_FAILING_VERDICTS: dict[str, list[str]] = {
    "math": ["incorrect"],
    "code": ["failed", "timeout", "memory", "syntax_error", "static_error"],
}


class Selection(_Strict):
    """Selection rules (FuseChat-3.0 "Data Construction"; WRPO triplets); see fusedata.select."""

    seed: int = Field(default=0, description="seeds the SFT/DPO split and `pairing: random`")
    split: dict[str, SplitRule] = Field(
        default_factory=dict,
        description="per category, per prompt source name (wins over its category) or "
                    "'default'; a prompt without a rule uses ratio 0.4")
    margin: tuple[float, float] = Field(
        default=(0.01, 0.1),
        description="inclusive window for the RM margin chosen - rejected of a DPO pair")
    margin_decimals: Annotated[int, Field(ge=0, le=15)] | None = Field(
        default=6,
        description="margins are rounded to this many decimals (half to even) before the "
                    "window test and stored rounded, so float32 RM scores 0.51 / 0.50 "
                    "(difference 0.0099999905) count as 0.01; null: exact float64 difference")
    wrpo_margin: tuple[float, float] | None = Field(
        default=None,
        description="WRPO: window for chosen_target - rejected; null (WRPO's rule): the "
                    "target's best eligible vs its lowest-scored rejectable response")
    window_policy: Literal["nearest", "strict"] = Field(
        default="nearest",
        description="nearest: if the extreme pair misses the window, the lowest-scored "
                    "rejected candidate inside it; strict: drop the model's pair")
    pairing: Literal["best_chosen", "random", "all"] = Field(
        default="best_chosen",
        description="several models with a valid pair: the one with the highest chosen "
                    "score | a seeded random one | one pair per model")
    failing_verdicts: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_FAILING_VERDICTS.items()},
        description="math/code verdicts that qualify a response as rejected")

    @field_validator("margin", "wrpo_margin")
    @classmethod
    def _ordered(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and v[0] > v[1]:
            raise ValueError("must be [low, high] with low <= high")
        return v

    @field_validator("split")
    @classmethod
    def _split_keys(cls, v: dict[str, SplitRule]) -> dict[str, SplitRule]:
        # categories and 'default' here; prompt source names are checked by Recipe, which
        # knows them (a Selection built alone accepts any name matching a source name's
        # pattern)
        bad = sorted(k for k in v if not re.fullmatch(r"[A-Za-z0-9_.\-]+", k))
        if bad:
            raise ValueError(f"unknown category or prompt source {bad[0]!r}")
        return v

    @field_validator("failing_verdicts")
    @classmethod
    def _verified_categories(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        bad = sorted(set(v) - {"math", "code"})
        if bad:
            raise ValueError(f"unknown verified category {bad[0]!r}; use math or code")
        for cat, verdicts in v.items():
            if PASSING_VERDICT[cat] in verdicts:
                raise ValueError(f"{cat}: the passing verdict {PASSING_VERDICT[cat]!r} "
                                 "cannot mark a rejected response")
            unknown = sorted(set(verdicts) - set(KNOWN_VERDICTS[cat]))
            if unknown:
                raise ValueError(f"{cat}: unknown verdict {unknown[0]!r}; {cat} verdicts are "
                                 f"{', '.join(KNOWN_VERDICTS[cat])}")
        return {**{k: list(x) for k, x in DEFAULT_FAILING_VERDICTS.items()}, **v}

    def rule_for(self, category: str | None, source: str | None = None) -> SplitRule:
        """The rule of a prompt: its source's, else its category's, else 'default', else ratio."""
        for key in (source, category, "default"):
            if key is not None and key in self.split:
                return self.split[key]
        return SplitRule()


class Executor(_Strict):
    type: Literal["local", "ray"] = "local"
    address: str | None = None
    shard_size: (Annotated[int, Field(gt=0)]
                 | dict[Literal["sample", "score", "verify"], Annotated[int, Field(gt=0)]]
                 | None) = Field(
        default=None,
        description="rows per shard: one number for every map stage, or per stage "
                    "({sample: 64, score: 256, verify: 512}); a stage left out keeps its default")
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
            if m.backend == "import":
                lacking = [p.name for p in self.prompts
                           if (m.sources is None or p.name in m.sources)
                           # family loaders (fields: null) supply their own responses
                           and p.fields is not None and p.fields.response is None]
                if lacking:
                    raise ValueError(
                        f"models[{i}] ({m.name}): backend 'import' reads each source's "
                        f"fields.response, but source {lacking[0]!r} has none; list the "
                        f"sources that have one in models[{i}].sources")
        for key, rule in self.selection.split.items():
            if key not in CATEGORIES and key != "default" and key not in srcs:
                raise LocatedError(
                    ("selection", "split", key),
                    f"unknown category or prompt source {key!r}; use one of "
                    f"{', '.join(CATEGORIES)}, default or a prompt source name "
                    f"({', '.join(srcs)})")
            if rule.model is not None and rule.model not in names:
                raise LocatedError(("selection", "split", key, "model"),
                                   f"unknown model {rule.model!r}")
        return self

    # Resolved locations ------------------------------------------------------
    def out_path(self, base: Path) -> Path | RemotePath:
        return location(self.output_dir, base)

    def work_path(self, base: Path) -> Path | RemotePath:
        """The stage cache: a local folder, or an fsspec URL (``s3://bucket/prefix``) for
        a cluster with object storage and no shared filesystem."""
        if self.work_dir:
            return location(self.work_dir, base)
        return self.out_path(base) / ".work"
