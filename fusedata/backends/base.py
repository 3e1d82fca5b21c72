"""The sampler interface every backend implements."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass

from ..recipe import ModelSpec


@dataclass(frozen=True)
class Request:
    """Generate ``n`` responses to ``messages``; ``seed`` makes them reproducible."""

    messages: list[dict[str, str]]
    n: int
    seed: int
    key: str = ""  # the prompt id, for backends that key caches or logs on it
    #: the prompt record's ``existing_response`` (read by the import backend)
    existing: str | None = None


@dataclass(frozen=True)
class Generation:
    text: str
    finish_reason: str  # "stop" | "length" | "error"
    prompt_tokens: int = 0
    #: None when the backend cannot tell (an HTTP reply with n > 1 reports one total)
    completion_tokens: int | None = 0
    error: str | None = None


class Sampler(ABC):
    """Turns a batch of requests into ``n`` generations each.

    ``generate`` gets a whole shard at once so backends can batch however they
    like (padded batches, continuous batching, concurrent HTTP requests).  A
    failure that concerns one request must come back as a Generation with
    ``finish_reason="error"`` and a reason, not as an exception: an exception
    aborts the shard (finished shards stay on disk and a re-run resumes).
    """

    #: written to every record (``sampler`` column) so results can be traced
    version: str = "unknown"

    def __init__(self, spec: ModelSpec):
        self.spec = spec

    def load(self) -> None:  # noqa: B027 - optional hook
        """Load weights / open connections.  Called once before the first shard."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release memory (GPU) before the next model loads."""

    @abstractmethod
    def generate(self, requests: list[Request]) -> list[list[Generation]]: ...


def request_seed(base: int, key: str, seed: int) -> int:
    """A 31-bit per-prompt seed from the recipe seed and the prompt id.

    Independent of shard boundaries and of the order of prompts in a call, so a
    resumed run asks the engine for exactly what an uninterrupted run asked.
    """
    h = hashlib.sha256(f"{base}|{key}|{seed}".encode()).hexdigest()
    return int(h[:8], 16) & 0x7FFFFFFF
