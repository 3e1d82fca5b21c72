"""HumanEval through the sandbox: every canonical solution passes, mutants are judged as a
plain interpreter judges them (the split verdict path must not change real outcomes).

The mutants are deterministic operator flips of the trusted canonical solutions (not model
output), so running them in a plain subprocess for the reference outcome is as safe as the
throughput benchmark's baseline.
"""

from __future__ import annotations

import ast
import gzip
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sandbox import SandboxPool

DATA = Path(__file__).parent / "fixtures" / "humaneval" / "HumanEval.jsonl.gz"
needs_isolation = pytest.mark.skipif(os.geteuid() != 0, reason="isolation needs root")
_FLIP = {ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt, ast.Eq: ast.NotEq,
         ast.NotEq: ast.Eq, ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Add}


def _problems() -> list[dict]:
    with gzip.open(DATA, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _job(p: dict, body: str) -> dict:
    return {"id": p["task_id"], "code": p["prompt"] + body, "entry_point": p["entry_point"],
            "test": p["test"] + f"\n\ncheck({p['entry_point']})\n", "timeout_s": 10}


def mutate(body: str, prompt: str) -> str:
    """Flip the first comparison or arithmetic operator of the solution; failing that, bump
    the first integer constant; failing that, return None."""
    src = prompt + body
    tree = ast.parse(src)
    fn = [n for n in tree.body if isinstance(n, ast.FunctionDef)][-1]
    for node in ast.walk(fn):
        if isinstance(node, ast.Compare) and type(node.ops[0]) in _FLIP:
            node.ops[0] = _FLIP[type(node.ops[0])]()
            return ast.unparse(tree)
        if isinstance(node, ast.BinOp) and type(node.op) in _FLIP:
            node.op = _FLIP[type(node.op)]()
            return ast.unparse(tree)
    for node in ast.walk(fn):
        if isinstance(node, ast.Constant) and type(node.value) is int:
            node.value += 1
            return ast.unparse(tree)
    fn.body = [ast.Return(ast.Constant(None))]
    return ast.unparse(ast.fix_missing_locations(tree))


def _plain_outcome(job: dict) -> str:
    try:
        r = subprocess.run([sys.executable, "-c", job["code"] + "\n" + job["test"]],
                           capture_output=True, timeout=job["timeout_s"], env={"PATH": "/usr/bin:/bin"})
    except subprocess.TimeoutExpired:
        return "timeout"
    return "passed" if r.returncode == 0 else "failed"


@needs_isolation
def test_humaneval_canonical_pass_and_mutants_match_plain_python() -> None:
    problems = _problems()
    assert len(problems) == 164
    canon = [_job(p, p["canonical_solution"]) for p in problems]
    mutants = []
    for p in problems:
        j = _job(p, "")
        j["code"] = mutate(p["canonical_solution"], p["prompt"])
        j["id"] = p["task_id"] + "/mutant"
        mutants.append(j)
    with SandboxPool(workers=2, isolation=True) as pool:
        got = {v["id"]: v for v in pool.run(canon + mutants)}
    bad = {j["id"]: got[j["id"]] for j in canon if got[j["id"]]["verdict"] != "passed"}
    assert bad == {}
    judged = [got[j["id"]].get("judged") for j in canon]
    assert judged.count("outside") >= 150, judged.count("outside")  # most are literal checks
    with ThreadPoolExecutor(2) as ex:
        plain = list(ex.map(_plain_outcome, mutants))
    outcome = {j["id"]: ("passed" if got[j["id"]]["verdict"] == "passed" else
                         "timeout" if got[j["id"]]["verdict"] == "timeout" else "failed")
               for j in mutants}
    differ = {j["id"]: (outcome[j["id"]], p, got[j["id"]]["detail"])
              for j, p in zip(mutants, plain, strict=True) if outcome[j["id"]] != p}
    assert differ == {}
    assert sum(p != "passed" for p in plain) >= 140  # the mutants do break the solutions
