"""Reading a recipe file: YAML with the line of every key, validated by the schema.

Errors name the YAML path *and* the line, e.g.::

    recipes/demo.yaml:14: models[2].sampling.top_p: must be <= 1

and :func:`parse_recipe` lists every problem at once, so a user fixes them in one go.
The models themselves are :mod:`fusedata.recipe.schema`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .schema import LocatedError, Recipe


class RecipeError(ValueError):
    """A recipe could not be loaded; the message lists every problem with its line."""


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
            cause = (err.get("ctx") or {}).get("error")
            if isinstance(cause, LocatedError):
                loc = loc + cause.loc
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
