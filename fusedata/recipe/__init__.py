"""The recipe: one YAML file that says everything a build needs.

Two parts: :mod:`.schema` (the strict pydantic models stages receive) and
:mod:`.load` (YAML with line numbers -> :class:`Recipe`, errors as
``FILE:LINE: path: message``).  Callers import from here,
``from fusedata.recipe import load_recipe, Recipe, ModelSpec``; the names below
are the public surface.
"""

from __future__ import annotations

from .load import RecipeError, load_recipe, parse_recipe
from .schema import (
    CATEGORIES,
    DEFAULT_FAILING_VERDICTS,
    KNOWN_VERDICTS,
    PASSING_VERDICT,
    CardSpec,
    Category,
    CodeVerifier,
    DecontaminateFilter,
    DedupFilter,
    DomainFilter,
    Executor,
    FieldMap,
    HasTestsFilter,
    HTTPOptions,
    ImportOptions,
    LanguageFilter,
    LocatedError,
    MathVerifier,
    ModelSpec,
    PromptFilter,
    PromptSource,
    Recipe,
    ReferencePassesFilter,
    RewardModelSpec,
    SamplingParams,
    Selection,
    SplitRule,
    TransformersOptions,
    Verifiers,
    VLLMOptions,
)

__all__ = [
    "CATEGORIES", "DEFAULT_FAILING_VERDICTS", "KNOWN_VERDICTS", "PASSING_VERDICT", "CardSpec",
    "Category", "CodeVerifier", "DecontaminateFilter", "DedupFilter", "DomainFilter",
    "Executor", "FieldMap", "HTTPOptions", "HasTestsFilter", "ImportOptions", "LanguageFilter",
    "LocatedError", "MathVerifier", "ModelSpec", "PromptFilter", "PromptSource", "Recipe",
    "RecipeError", "ReferencePassesFilter", "RewardModelSpec", "SamplingParams", "Selection",
    "SplitRule", "TransformersOptions", "VLLMOptions", "Verifiers", "load_recipe",
    "parse_recipe",
]
