"""Loader for nvidia/OpenMathInstruct-2 (math prompts with gold answers)."""

from __future__ import annotations

from typing import Any

from .base import LOADERS, DropRow, SourceSpec


def openmathinstruct2(row: dict[str, Any], src: SourceSpec) -> dict[str, Any]:
    """nvidia/OpenMathInstruct-2: ``problem``, ``generated_solution`` (Llama-3.1-405B-Instruct),
    ``expected_answer``, ``problem_source`` (``augmented_math``, ``math``, ``gsm8k``, ...).

    ``gold`` = ``expected_answer`` (rows without one are dropped);
    ``existing_response`` = ``generated_solution`` (imported by the ``import`` backend as
    the Llama-3.1-405B response).  The set holds several solutions per problem: exact
    dedup on the prompt keeps the first one seen.  For augmented problems the expected
    answer is a majority vote, not verified ground truth (``meta.problem_source`` says which).
    """
    problem = row.get("problem")
    if not isinstance(problem, str) or not problem.strip():
        raise DropRow("missing_field:problem" if problem is None else "empty_prompt")
    gold = row.get("expected_answer")
    if gold is None or not str(gold).strip():
        raise DropRow("missing_gold:expected_answer")
    sol = row.get("generated_solution")
    return {"messages": [{"role": "user", "content": problem.strip()}],
            "gold": str(gold).strip(), "tests": None,
            "existing_response": sol if isinstance(sol, str) and sol.strip() else None,
            "meta": {"problem_source": row.get("problem_source")}}


LOADERS["openmathinstruct2"] = openmathinstruct2
