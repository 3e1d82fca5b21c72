"""Worker-side comparison modes for ``cases`` jobs (issue 14).

Pure functions on plain JSON data: the job only reports values (converted by the harness's
strict serializer); whether they are right is decided here, in the trusted worker, from the
job's ``compare`` field:

* absent / ``{"mode": "exact"}``: exact, except numbers where either side is a float
  (rel 1e-6 / abs 1e-9); ``True`` is not ``1``;
* ``{"mode": "any_order"}``: the top-level list is compared as a multiset ("return the answer
  in any order"); ``"any_order_deep"``: every list level is (groups of anagrams, subsets);
* ``"abs_tol": t`` (any mode): numbers match when ``|got - want| <= t`` ("answers within
  10^-5 are accepted", or the printed precision of the expected output, e.g. ``2.00000``).
"""

from __future__ import annotations

import json
import math
from typing import Any

MODES = ("exact", "any_order", "any_order_deep")


def numbers_equal(got: Any, want: Any, abs_tol: float | None) -> bool:
    """Numbers (not bools): exact for two ints; otherwise within tolerance."""
    if type(got) is int and type(want) is int:
        return got == want
    if abs_tol is not None:
        return abs(got - want) <= abs_tol * (1 + 1e-9)
    return math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9)


def equal(got: Any, want: Any, spec: dict[str, Any] | None = None) -> bool:
    """Whether a reported value matches the expected one under the job's ``compare`` spec."""
    spec = spec or {}
    return _equal(got, want, spec.get("mode", "exact"), spec.get("abs_tol"), top=True)


def _is_num(x: Any) -> bool:
    return type(x) in (int, float)


def _equal(got: Any, want: Any, mode: str, tol: float | None, top: bool) -> bool:
    if isinstance(want, bool) or isinstance(got, bool):
        return type(got) is type(want) and got == want
    if _is_num(got) and _is_num(want):
        return numbers_equal(got, want, tol)
    if isinstance(want, list) and isinstance(got, list):
        if len(got) != len(want):
            return False
        if mode == "any_order_deep" or (mode == "any_order" and top):
            return _multiset_equal(got, want, mode, tol)
        return all(_equal(g, w, mode, tol, False) for g, w in zip(got, want, strict=True))
    if isinstance(want, dict) and isinstance(got, dict):
        return got.keys() == want.keys() and all(_equal(got[k], want[k], mode, tol, False)
                                                 for k in want)
    return type(got) is type(want) and got == want


def _multiset_equal(got: list[Any], want: list[Any], mode: str, tol: float | None) -> bool:
    """Order-insensitive list equality: greedy matching (sizes are the statement's small
    examples; ``len(got) == len(want)`` was checked, so this is O(n^2) in the expected size)."""
    if tol is None and mode == "any_order":
        try:  # fast path: canonical JSON when no tolerance is involved
            key = lambda x: json.dumps(x, sort_keys=True)  # noqa: E731
            if not any(isinstance(x, float) for x in _leaves(want)) and \
                    not any(isinstance(x, float) for x in _leaves(got)):
                return sorted(map(key, got)) == sorted(map(key, want))
        except (TypeError, ValueError):
            pass
    unused = list(range(len(got)))
    for w in want:
        for j in unused:
            if _equal(got[j], w, mode, tol, False):
                unused.remove(j)
                break
        else:
            return False
    return True


def _leaves(x: Any) -> list[Any]:
    out: list[Any] = []
    stack = [x]
    while stack:
        y = stack.pop()
        if isinstance(y, list):
            stack.extend(y)
        elif isinstance(y, dict):
            stack.extend(y.values())
        else:
            out.append(y)
    return out


def validate(spec: Any) -> str | None:
    """Why a job's ``compare`` field is malformed, or None."""
    if not isinstance(spec, dict):
        return "'compare' must be an object"
    unknown = set(spec) - {"mode", "abs_tol"}
    if unknown:
        return f"'compare' has unknown keys {sorted(unknown)}"
    if spec.get("mode", "exact") not in MODES:
        return f"'compare.mode' must be one of {', '.join(MODES)}"
    t = spec.get("abs_tol")
    if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float))
                          or not 0 <= t < 1):
        return "'compare.abs_tol' must be a number in [0, 1)"
    return None
