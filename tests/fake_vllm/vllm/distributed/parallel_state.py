"""Cleanup helpers; calls are recorded so tests can check the engine was released."""

from __future__ import annotations

CALLS: list[str] = []


def destroy_model_parallel() -> None:
    CALLS.append("destroy_model_parallel")


def destroy_distributed_environment() -> None:
    CALLS.append("destroy_distributed_environment")
