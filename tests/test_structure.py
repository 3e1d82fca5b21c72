"""The import graph of ``fusedata`` and ``sandbox``, read from the source with ``ast``.

Two rules keep the design card's promise that stages meet only through the records they
read and write (README, "The stages"):

* no import cycle anywhere, counting imports inside functions too (a lazy import only
  hides a cycle, it does not remove it);
* no module of one stage imports a module of another stage.  Shared infrastructure
  (engine, executors, recipe, records, layout, build, cli, ...) may be imported by any stage.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("fusedata", "sandbox")

# Stage -> module prefixes that belong to it (a module belongs to the longest prefix).
# `sandbox` is a library of its own (usable alone), used by verify and by the prompts
# stage's reference_passes filter, so it belongs to no stage.
STAGES: dict[str, tuple[str, ...]] = {
    "prompts": ("fusedata.prompts", "fusedata.sources"),
    "sample": ("fusedata.sample", "fusedata.backends"),
    "score": ("fusedata.score",),
    "verify": ("fusedata.verify", "fusedata.mathcheck"),
    "select": ("fusedata.select",),
    "export": ("fusedata.export", "fusedata.report", "fusedata.card", "fusedata.publish",
               "fusedata.view"),
    "train": ("fusedata.train",),
}


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _is_package(mod: str) -> bool:
    return MODULES[mod].name == "__init__.py"


def _resolve(mod: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = mod.split(".")
    if not _is_package(mod):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _known(name: str) -> str | None:
    """The project module an import of ``name`` loads (itself or its closest parent)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(mod: str) -> set[str]:
    tree = ast.parse(MODULES[mod].read_text(), filename=str(MODULES[mod]))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(mod, node)
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for t in targets:
            k = _known(t)
            if k and k != mod:
                out.add(k)
    # `from .x import y` also lists `base`: drop a package edge that only stands for a
    # submodule import it already recorded (importing pkg.sub runs pkg/__init__, which
    # is not an edge of this module's own making).
    return {m for m in out if not any(o.startswith(m + ".") for o in out)}


GRAPH = {m: imports_of(m) for m in MODULES}


def stage_of(mod: str) -> str | None:
    best: tuple[int, str | None] = (0, None)
    for stage, prefixes in STAGES.items():
        for p in prefixes:
            if (mod == p or mod.startswith(p + ".")) and len(p) > best[0]:
                best = (len(p), stage)
    return best[1]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of modules, or None (iterative DFS, colours)."""
    colour = dict.fromkeys(graph, 0)
    for start in sorted(graph):
        if colour[start]:
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        colour[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour[nxt] == 1:
                return path[path.index(nxt):] + [nxt]
            elif colour[nxt] == 0:
                colour[nxt] = 1
                stack.append((nxt, iter(sorted(graph[nxt]))))
                path.append(nxt)
    return None


def test_no_import_cycle():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_stage_imports_another_stage():
    bad = sorted(f"{m} ({stage_of(m)}) imports {t} ({stage_of(t)})"
                 for m, targets in GRAPH.items() for t in targets
                 if stage_of(m) and stage_of(t) and stage_of(m) != stage_of(t))
    assert not bad, "\n".join(bad)


def test_sandbox_stands_alone():
    """`sandbox/` is usable without fusedata (design card)."""
    bad = sorted(f"{m} imports {t}" for m, ts in GRAPH.items() if m.startswith("sandbox")
                 for t in ts if t.startswith("fusedata"))
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("graph, cycle", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, True),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, False),
    ({"a": {"a"}}, True),
])
def test_the_cycle_finder_finds_cycles(graph, cycle):
    assert (find_cycle(graph) is not None) is cycle


def test_the_graph_sees_lazy_and_relative_imports():
    # build.py imports every stage lazily inside functions, with relative imports.
    assert {"fusedata.select", "fusedata.verify", "fusedata.prompts"} <= GRAPH["fusedata.build"]
