"""LeetCode's Python environment and calling conventions, on the job side (issue 14).

Everything here runs inside the confined job process (it is imported by the harness in the
worker, before any untrusted code exists, and used after the solution was executed).  It only
*computes values*: it builds the arguments LeetCode's judge would pass (``TreeNode`` /
``ListNode`` structures from the level-order / list serialisation of the statement), calls the
entry point (or replays a design problem's operation list), and turns the result back into
plain data.  Expected outputs never reach the job: the worker compares (``sandbox._compare``).

Job fields read here (see ``sandbox/README.md``, "LeetCode jobs"):

* ``env: "leetcode"`` - the solution's namespace starts with what LeetCode's Python 3 judge
  pre-imports: ``List``/``Optional``/... from ``typing``, ``collections``, ``heapq``,
  ``bisect``, ``itertools``, ``functools``, ``math`` (as modules and their public names),
  the modules ``re``, ``random``, ``string``, ``operator``, ``sortedcontainers`` (and its
  ``SortedList``/``SortedDict``/``SortedSet``) when importable, and ``TreeNode``/``ListNode``.  Names that are builtins are never imported over the builtin:
  ``from math import *`` would replace ``pow`` and break ``pow(2, n, MOD)``.
* ``call`` (with ``cases``): ``{"args": [kind | null, ...], "inplace": index | null,
  "design": bool}``.  ``kind`` is ``"tree"``, ``"list"``, ``"tree[]"`` or ``"list[]"``
  for positional argument *i*; ``inplace`` is the argument returned when the function returns
  ``None`` (LeetCode's "modify ``nums`` in-place"); ``design`` replays
  ``input = [operations, arguments]`` on the class named by ``entry_point`` and returns the
  list of results (``null`` for the constructor and void methods); ``returns: "node"`` makes
  a ``None`` result the empty tree/list ``[]``, as LeetCode prints it.
"""

from __future__ import annotations

import bisect
import builtins
import collections
import functools
import heapq
import itertools
import math
import operator
import random
import re
import string
import typing
from collections import deque
from typing import Any

#: tree / list sizes beyond this are a runaway (cyclic or huge) structure, reported as an error
MAX_NODES = 1_000_000


class TreeNode:
    """LeetCode's binary-tree node."""

    def __init__(self, val: Any = 0, left: TreeNode | None = None,
                 right: TreeNode | None = None) -> None:
        self.val = val
        self.left = left
        self.right = right


class ListNode:
    """LeetCode's singly-linked-list node."""

    def __init__(self, val: Any = 0, next: ListNode | None = None) -> None:  # noqa: A002
        self.val = val
        self.next = next


#: modules whose public names are pre-imported (``from collections import *`` ...); ``typing``
#: last so its generic aliases never replace the ``collections`` classes
_STAR_MODULES = (collections, heapq, bisect, itertools, functools, math, typing)
_MODULES = (*_STAR_MODULES, re, random, string, operator)


def _public(mod: Any) -> list[str]:
    names = getattr(mod, "__all__", None)
    if names is None:
        names = [n for n in dir(mod) if not n.startswith("_")]
    return list(names)


def _sorted_containers() -> dict[str, Any]:
    try:
        import sortedcontainers
    except ImportError:
        return {}
    return {"sortedcontainers": sortedcontainers, "SortedList": sortedcontainers.SortedList,
            "SortedDict": sortedcontainers.SortedDict, "SortedSet": sortedcontainers.SortedSet}


def env() -> dict[str, Any]:
    """A fresh dict of LeetCode's pre-imported names (never shadowing a builtin).

    ``collections`` comes before ``typing`` so ``Counter``/``OrderedDict``/``deque`` are the
    instantiable classes, not ``typing``'s generic aliases.
    """
    ns: dict[str, Any] = {}
    for mod in _MODULES:
        ns[mod.__name__] = mod
    for mod in _STAR_MODULES:
        for name in _public(mod):
            if name in builtins.__dict__ or name in ns:
                continue
            ns[name] = getattr(mod, name)
    ns.update(_sorted_containers())
    ns["TreeNode"] = TreeNode
    ns["ListNode"] = ListNode
    return ns


#: names ``env()`` defines, for the harness's static undefined-name check
ENV_NAMES: tuple[str, ...] = tuple(env())


# ------------------------------------------------------------------------------ building


def _node_class(ns: dict[str, Any], name: str, default: type) -> type:
    """The solution's own ``TreeNode``/``ListNode`` when it defines a usable one (LeetCode
    solutions often paste the class), else ours."""
    cls = ns.get(name)
    if isinstance(cls, type):
        try:
            cls(0)
            return cls
        except Exception:  # noqa: BLE001 - an unusable class: fall back to LeetCode's
            return default
    return default


def build_tree(values: Any, cls: type = TreeNode) -> Any:
    """LeetCode level order (``[1,null,2,3]``) -> root node (None for ``[]``)."""
    if values is None:
        return None
    if not isinstance(values, list):
        raise TypeError(f"tree argument must be a list, got {type(values).__name__}")
    if not values or values[0] is None:
        return None
    root = cls(values[0])
    queue = deque([root])
    i = 1
    while queue and i < len(values):
        node = queue.popleft()
        for side in ("left", "right"):
            if i < len(values):
                if values[i] is not None:
                    child = cls(values[i])
                    setattr(node, side, child)
                    queue.append(child)
                else:
                    setattr(node, side, None)
                i += 1
    return root


def build_list(values: Any, cls: type = ListNode) -> Any:
    """``[1,2,3]`` -> head node (None for ``[]``)."""
    if values is None:
        return None
    if not isinstance(values, list):
        raise TypeError(f"list argument must be a list, got {type(values).__name__}")
    head = None
    for v in reversed(values):
        node = cls(v)
        node.next = head
        head = node
    return head


def _build(value: Any, kind: str | None, ns: dict[str, Any]) -> Any:
    if kind is None:
        return value
    tree_cls = _node_class(ns, "TreeNode", TreeNode)
    list_cls = _node_class(ns, "ListNode", ListNode)
    if kind == "tree":
        return build_tree(value, tree_cls)
    if kind == "list":
        return build_list(value, list_cls)
    if kind in ("tree[]", "list[]"):
        if not isinstance(value, list):
            raise TypeError(f"{kind} argument must be a list")
        one = build_tree if kind == "tree[]" else build_list
        return [one(v, tree_cls if kind == "tree[]" else list_cls) for v in value]
    raise ValueError(f"unknown argument kind {kind!r}")


# --------------------------------------------------------------------------- serialising


def _is_list_node(obj: Any) -> bool:
    return hasattr(obj, "val") and hasattr(obj, "next") and not hasattr(obj, "left")


def _is_tree_node(obj: Any) -> bool:
    return hasattr(obj, "val") and (hasattr(obj, "left") or hasattr(obj, "right"))


def tree_to_list(root: Any) -> list[Any]:
    """Root node -> LeetCode level order with trailing ``null``s removed."""
    out: list[Any] = []
    queue = deque([root])
    seen = 0
    while queue:
        node = queue.popleft()
        if node is None:
            out.append(None)
            continue
        seen += 1
        if seen > MAX_NODES:
            raise ValueError("tree too large or cyclic")
        out.append(node.val)
        queue.append(getattr(node, "left", None))
        queue.append(getattr(node, "right", None))
    while out and out[-1] is None:
        out.pop()
    return out


def list_to_list(head: Any) -> list[Any]:
    """Head node -> values; a cycle is an error (LeetCode would time out)."""
    out: list[Any] = []
    node = head
    while node is not None:
        if len(out) >= MAX_NODES:
            raise ValueError("linked list too long or cyclic")
        out.append(node.val)
        node = node.next
    return out


def serialise(value: Any, depth: int = 0) -> Any:
    """Nodes (also inside lists/tuples) -> LeetCode's printed form; other values unchanged
    (the harness's strict ``to_plain`` runs afterwards)."""
    if depth > 100 or value is None or type(value) in (bool, int, float, str):
        return value
    if type(value) in (list, tuple):
        return [serialise(v, depth + 1) for v in value]
    if _is_list_node(value):
        return list_to_list(value)
    if _is_tree_node(value):
        return tree_to_list(value)
    return value


# ------------------------------------------------------------------------------- calling


def _replay(ns: dict[str, Any], class_name: str, data: Any) -> list[Any]:
    """Design problems: ``[["MyQueue","push","pop"], [[],[1],[]]]`` -> one result per op."""
    if not (isinstance(data, list) and len(data) == 2 and isinstance(data[0], list)
            and isinstance(data[1], list) and len(data[0]) == len(data[1]) and data[0]):
        raise ValueError("design input must be [operations, arguments] of equal length")
    ops, args = data
    cls = ns[class_name]
    obj = cls(*args[0])
    out: list[Any] = [None]
    for op, a in zip(ops[1:], args[1:], strict=True):
        method = getattr(obj, op, None)
        if method is None:  # a Pythonic create_path for LeetCode's createPath
            method = getattr(obj, re.sub(r"(?<!^)(?=[A-Z])", "_", op).lower())
        out.append(serialise(method(*a)))
    return out


def call(ns: dict[str, Any], entry_point: str, args: Any, spec: dict[str, Any]) -> Any:
    """Run one case the way LeetCode's judge does; returns the (serialised) value."""
    if spec.get("design"):
        return _replay(ns, entry_point.partition(".")[0], args)
    head, _, method = entry_point.partition(".")
    target = ns[head]
    if method:
        target = getattr(target(), method)
    kinds = spec.get("args") or []
    if isinstance(args, dict):
        raise ValueError("'call' cases take positional inputs (a list)")
    args = args if isinstance(args, list) else [args]
    built = [_build(a, kinds[i] if i < len(kinds) else None, ns) for i, a in enumerate(args)]
    value = target(*built)
    inplace = spec.get("inplace")
    if value is None and isinstance(inplace, int) and 0 <= inplace < len(built):
        value = built[inplace]
    elif value is None and spec.get("returns") == "node":
        value = []  # an empty tree / list prints as []
    return serialise(value)


def validate_call(spec: Any) -> str | None:
    """Why a job's ``call`` field is malformed, or None (used by the pool's job check)."""
    if not isinstance(spec, dict):
        return "'call' must be an object"
    unknown = set(spec) - {"args", "inplace", "design", "returns"}
    if unknown:
        return f"'call' has unknown keys {sorted(unknown)}"
    kinds = spec.get("args", [])
    if not isinstance(kinds, list) or any(
            k is not None and k not in ("tree", "list", "tree[]", "list[]") for k in kinds):
        return "'call.args' must be a list of null/'tree'/'list'/'tree[]'/'list[]'"
    inplace = spec.get("inplace")
    if inplace is not None and (isinstance(inplace, bool) or not isinstance(inplace, int)):
        return "'call.inplace' must be an argument index"
    if spec.get("returns") not in (None, "node"):
        return "'call.returns' must be \"node\" or absent"
    if not isinstance(spec.get("design", False), bool):
        return "'call.design' must be a boolean"
    return None
