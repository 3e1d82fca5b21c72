"""Coverage of the leetcode loader on real rows, measured in the real sandbox (issue 14).

    PYTHONPATH=. python benchmarks/leetcode_coverage.py [ROWS.jsonl] [--labels LABELS.json]

ROWS defaults to ``tests/fixtures/datasets/leetcode.jsonl`` (real greengerong/leetcode rows,
provenance in ``tests/fixtures/datasets/README.md``); LABELS (default: the fixture's
``leetcode_labels.json``) says, per row id, whether the row's ``python`` reference solves the
stated problem (``correct``), another problem (``other_problem``) or is wrong on it
(``wrong``), read by hand.  Prints, per problem class and overall:

* rows read, rows yielding cases (kept), drop reasons;
* reference check: on kept rows whose reference is labelled correct, the share where the
  reference passes the cases extracted from the statement;
* constant solutions: the share of kept rows where *every* constant-returning solution
  (``None``, ``0``, ``1``, ``-1``, ``True``, ``False``, ``[]``, ``""``, and the first
  example's expected output) fails;
* rows whose reference disagrees with the statement, with the case values, which all come
  from the statement (the reference never supplies an expected value).

Every job runs through :class:`sandbox.SandboxPool` with isolation on (needs root).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path
from typing import Any

from fusedata.recipe import PromptSource
from fusedata.sources import DropRow
from fusedata.sources.code import leetcode

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures" / "datasets"
CONSTANTS: list[Any] = [None, 0, 1, -1, True, False, [], ""]


def constant_code(job: dict[str, Any], value: Any) -> str:
    """A solution that returns ``value`` whatever it is given (design: from every method)."""
    v = repr(value)
    if job.get("call", {}).get("design"):
        return (f"class {job['entry_point']}:\n    def __init__(self, *a, **k): pass\n"
                f"    def __getattr__(self, name):\n        return lambda *a, **k: {v}\n")
    return (f"class Solution:\n    def {job['function']}(self, *a, **k):\n"
            f"        return {v}\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rows", nargs="?", default=str(FIX / "leetcode.jsonl"))
    ap.add_argument("--labels", default=str(FIX / "leetcode_labels.json"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    from sandbox import SandboxPool, check_host

    check_host()  # isolation must be available: these are untrusted-style runs
    rows = [json.loads(x) for x in Path(a.rows).read_text(encoding="utf-8").splitlines()
            if x.strip()]
    labels = json.loads(Path(a.labels).read_text()) if Path(a.labels).exists() else {}
    src = PromptSource(name="leetcode", path="x", loader="leetcode", category="code")
    recs: dict[int, dict[str, Any]] = {}
    drops: dict[int, str] = {}
    jobs: list[dict[str, Any]] = []
    for r in rows:
        try:
            rec = leetcode(r, src)
        except DropRow as e:
            drops[r["id"]] = str(e)
            continue
        recs[r["id"]] = rec
        t = json.loads(rec["tests"])
        ref = rec["meta"]["reference"]
        if ref:
            jobs.append({**t, **ref, "id": f"{r['id']}:ref"})
        for i, c in enumerate([*CONSTANTS, t["cases"][0]["output"]]):
            jobs.append({**t, "code": constant_code(t, c), "id": f"{r['id']}:const{i}"})
    verdicts: dict[str, dict[str, Any]] = {}
    with SandboxPool(workers=a.workers, isolation=True) as pool:
        for v in pool.run(jobs):
            verdicts[v["id"]] = v
    by_kind: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    disagree = []
    for r in rows:
        rid = r["id"]
        label = labels.get(str(rid), "unlabelled")
        if rid in drops:
            by_kind["dropped"]["read"] += 1
            continue
        rec = recs[rid]
        kind = rec["meta"]["problem_kind"]
        c = by_kind[kind]
        c["read"] += 1
        c["kept"] += 1
        ref_v = verdicts.get(f"{rid}:ref")
        passed = ref_v is not None and ref_v["verdict"] == "passed"
        if label == "correct":
            c["ref_correct"] += 1
            c["ref_correct_pass"] += passed
        if "python" not in r:
            c["no_python"] += 1
        elif ref_v is not None and not passed:
            disagree.append((rid, r["slug"], label, ref_v["verdict"], ref_v["detail"][:120]))
        elif ref_v is None:
            disagree.append((rid, r["slug"], label, "no_matching_reference", ""))
        consts = [verdicts[k] for k in verdicts if k.startswith(f"{rid}:const")]
        c["const_all_fail"] += all(v["verdict"] != "passed" for v in consts)
        c["const_trivial_fail"] += all(verdicts[f"{rid}:const{i}"]["verdict"] != "passed"
                                       for i in range(len(CONSTANTS)))
    total = collections.Counter()
    for c in by_kind.values():
        total.update(c)
    total["read"] = len(rows)
    print(f"leetcode rows read: {len(rows)} (ids {rows[0]['id']}..{rows[-1]['id']})")
    print(f"{'class':<11}{'read':>6}{'cases':>7}{'ref ok/correct':>16}{'const fails':>13}")
    for kind in sorted(k for k in by_kind if k != "dropped"):
        c = by_kind[kind]
        print(f"{kind:<11}{c['read']:>6}{c['kept']:>7}"
              f"{c['ref_correct_pass']:>9}/{c['ref_correct']:<6}"
              f"{c['const_all_fail']:>8}/{c['kept']:<4}")
    print(f"{'dropped':<11}{by_kind['dropped']['read']:>6}")
    print("drop reasons:", dict(collections.Counter(drops.values()).most_common()))
    kept, rc = total["kept"], total["ref_correct"]
    print(f"rows yielding cases: {kept}/{len(rows)} = {kept / len(rows):.1%}")
    if rc:
        print(f"correct references passing their cases: {total['ref_correct_pass']}/{rc} = "
              f"{total['ref_correct_pass'] / rc:.1%}")
    if kept:
        print(f"constant solutions all fail (incl. first example's output): "
              f"{total['const_all_fail']}/{kept} = {total['const_all_fail'] / kept:.1%}")
        print(f"trivial constants all fail: {total['const_trivial_fail']}/{kept} = "
              f"{total['const_trivial_fail'] / kept:.1%}")
    labelled = collections.Counter(labels.get(str(r["id"]), "no python in fixture")
                                   for r in rows)
    print("reference labels (by hand):", dict(labelled))
    print("expected values taken from a reference: 0 (cases are parsed from the statement "
          "only; the reference is run, never read for outputs)")
    if a.verbose or disagree:
        print("kept rows (with a python reference) whose reference does not reproduce the "
              "statement's examples:")
        for d in disagree:
            print("  ", *d)
    return 0


if __name__ == "__main__":
    sys.exit(main())
