"""``cleanup_dist_env_and_memory`` look-alike; each call goes to the shared call record.

The record also notes how many fake ``LLM`` objects were still alive at the
time, so a test can tell whether the caller dropped its references *before*
asking vLLM to empty the cache (the real function can only free what nothing
references any more).
"""

from __future__ import annotations

from .. import _record


def cleanup_dist_env_and_memory(shutdown_ray: bool = False) -> None:
    _record.CALLS.append(("cleanup_dist_env_and_memory", {"live_llms": _record.live_llms(),
                                                          "shutdown_ray": shutdown_ray}))
