"""The fake's record of calls, in order (not part of vLLM): tests read ``CALLS``."""

from __future__ import annotations

import gc
import weakref
from typing import Any

CALLS: list[tuple[str, Any]] = []
_LLMS: weakref.WeakSet = weakref.WeakSet()


def live_llms() -> int:
    gc.collect()
    return len(_LLMS)


def clear() -> None:
    CALLS.clear()
