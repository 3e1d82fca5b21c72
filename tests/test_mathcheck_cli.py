"""``verify-math`` command, driven through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from fusedata.mathcheck.cli import verify_math


def test_single_pair_prints_verdict_and_normalised_forms() -> None:
    r = CliRunner().invoke(verify_math, ["\\dfrac{1}{2}", "So we get $\\boxed{0.5}$."])
    assert r.exit_code == 0, r.output
    lines = dict(line.split(": ", 1) for line in r.output.strip().splitlines())
    assert lines["verdict"] == "correct"
    assert lines["rule"] == "boxed"
    assert lines["extracted"] == "0.5"
    assert lines["gold_normalized"] == "1/2"
    assert lines["pred_normalized"] == "1/2"


def test_single_pair_incorrect_and_bare_answer() -> None:
    r = CliRunner().invoke(verify_math, ["1/2^{99}", "1/2^{98}"])
    assert r.exit_code == 0, r.output
    assert "verdict: incorrect" in r.output
    assert "rule: bare" in r.output
    assert "exact numeric mismatch" in r.output  # big-integer rationals, not floats


def test_jsonl_one_line_per_input_in_order(tmp_path: Path) -> None:
    rows = [
        {"id": 1, "gold": "3", "answer": "Step 1...\nThe final answer is $\\boxed{3}$"},
        {"id": "b", "gold": "\\frac{1}{2}", "answer": "0.25"},
        {"id": 3, "gold": "5", "answer": "I am not sure.\nMaybe try again later."},
        {"id": 4, "gold": "3", "answer": "\\boxed{x+9^{9^{9^9}}}"},
        {"id": 5, "gold": "3"},
    ]
    text = "\n".join(json.dumps(r) for r in rows) + "\nnot json\n\n"
    src = tmp_path / "in.jsonl"
    src.write_text(text, encoding="utf-8")
    r = CliRunner().invoke(verify_math, ["--jsonl", str(src), "--timeout", "1"])
    assert r.exit_code == 0, r.output
    out = [json.loads(line) for line in r.output.strip().splitlines()]
    assert [o["id"] for o in out] == [1, "b", 3, 4, 5, None]
    assert [o["verdict"] for o in out] == [
        "correct",
        "incorrect",
        "no_answer",
        "timeout",
        "error",
        "error",
    ]
    assert out[0]["extracted"] == "3"
    assert out[2]["extracted"] is None
    assert all(set(o) == {"id", "verdict", "extracted", "reason"} for o in out)


def test_jsonl_from_stdin() -> None:
    line = json.dumps({"id": 7, "gold": "(1, 2)", "answer": "(1,2)"})
    r = CliRunner().invoke(verify_math, ["--jsonl", "-"], input=line + "\n")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert (out["id"], out["verdict"], out["extracted"]) == (7, "correct", "(1,2)")


def test_usage_errors() -> None:
    runner = CliRunner()
    assert runner.invoke(verify_math, []).exit_code == 2
    assert runner.invoke(verify_math, ["3"]).exit_code == 2
