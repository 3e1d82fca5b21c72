"""``InprocClient`` look-alike: the engine core client, the one object with ``shutdown``.

In vLLM 0.33 ``llm.llm_engine.engine_core`` is an ``EngineCoreClient``
(``InprocClient`` with ``VLLM_ENABLE_V1_MULTIPROCESSING=0``, else
``SyncMPClient``); its ``shutdown(timeout=None)`` runs at most once (a
``weakref.finalize`` that it detaches).  After it, generating fails.
"""

from __future__ import annotations

from ... import _record


class InprocClient:
    def __init__(self) -> None:
        self.alive = True

    def shutdown(self, timeout: float | None = None) -> None:
        if self.alive:
            self.alive = False
            _record.CALLS.append(("engine_core.shutdown", {"timeout": timeout}))
