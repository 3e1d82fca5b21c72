"""The one bracket matcher of :mod:`fusedata.mathcheck` (extraction, normalisation and the
balance guards all use it, so they agree on what a group is).

LaTeX escapes (``\\{``, ``\\}``, ``\\(``) are skipped, matching is one linear pass, and
unbalanced input never raises: unmatched brackets are simply left unpaired.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Brackets", "match_brackets"]

_CLOSE_OF = {"{": "}", "(": ")", "[": "]"}


class Brackets(NamedTuple):
    #: index of each matched opener -> index of its closer
    pairs: dict[int, int]
    #: deepest nesting reached
    depth: int
    #: every closer had its opener and every opener was closed
    balanced: bool


def match_brackets(s: str, opens: str = "{") -> Brackets:
    """Match the bracket kinds whose openers are in ``opens`` (``"{"``, ``"{("``...).

    A closer that does not close the innermost open group (``{(}``) or has none marks the
    text unbalanced and forgets the open groups, so nothing is paired across it.
    """
    closers = {_CLOSE_OF[o]: o for o in opens}
    stack: list[int] = []
    pairs: dict[int, int] = {}
    depth = 0
    balanced = True
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c in opens:
            stack.append(i)
            depth = max(depth, len(stack))
        elif c in closers:
            if stack and s[stack[-1]] == closers[c]:
                pairs[stack.pop()] = i
            else:
                balanced = False
                stack.clear()
        i += 1
    return Brackets(pairs, depth, balanced and not stack)
