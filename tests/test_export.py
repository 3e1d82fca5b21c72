"""Export to the Hub dataset layout, the dataset card, `fusedata export`, LLaMA-Factory files.

Most tests feed hand-made selection tables to :func:`fusedata.export.export` (no models),
then write the report and the card as the build does, so every agreed column, the WRPO
set and the composition numbers are checked exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import yaml
from click.testing import CliRunner

from fusedata.card import write_card
from fusedata.cli import cli
from fusedata.engine import Dataset
from fusedata.export import build_tables, export
from fusedata.report import write_report

SFT_COLS = ["messages", "prompt_id", "prompt_text", "score", "source_model", "category", "source",
            "source_dataset"]
DPO_COLS = ["prompt", "chosen", "rejected", "prompt_id", "score_chosen", "score_rejected",
            "margin", "source_model", "category", "source", "source_dataset"]
WRPO_COLS = ["prompt_id", "prompt", "chosen", "rejected", "prompt_messages",
             "score_chosen_source", "score_chosen_target", "score_rejected", "margin",
             "source_model", "target_model", "category", "source", "source_dataset"]


def _msgs(*turns: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": r, "content": c} for r, c in turns]


def _prompts() -> pl.DataFrame:
    rows = []
    for i in range(10):
        src, ds, cat = (("uf", "openbmb/UltraFeedback", "instruction") if i < 6
                        else ("om", "nvidia/OpenMathInstruct-2", "math"))
        turns = [("user", f"question {i}?")]
        if i == 0:
            turns = [("system", "be brief"), ("user", "question 0?")]
        rows.append({"prompt_id": f"p{i}", "source": src, "source_dataset": ds, "category": cat,
                     "messages": _msgs(*turns)})
    return pl.DataFrame(rows)


def _selection() -> dict[str, pl.DataFrame]:
    sft = pl.DataFrame({"prompt_id": ["p0", "p1", "p6"], "category": ["instruction"] * 2 + ["math"],
                        "source": ["uf", "uf", "om"], "model": ["a", "b", "a"],
                        "response_id": ["r0", "r1", "r6"], "response": ["A0", "A1", "A6"],
                        "score": [0.5, 0.4, 0.9]})
    dpo = pl.DataFrame({"prompt_id": ["p2", "p3", "p7"], "category": ["instruction"] * 2 + ["math"],
                        "source": ["uf", "uf", "om"], "model": ["b", "a", "b"],
                        "chosen_id": ["c2", "c3", "c7"], "chosen": ["C2", "C3", "C7"],
                        "score_chosen": [0.3, 0.6, 0.8], "rejected_id": ["x2", "x3", "x7"],
                        "rejected": ["R2", "R3", "R7"], "score_rejected": [0.25, 0.55, 0.75],
                        "margin": [0.05, 0.05, 0.05]})
    wrpo = pl.DataFrame({"prompt_id": ["p2"], "category": ["instruction"], "source": ["uf"],
                         "chosen_source_model": ["b"], "chosen_source_id": ["c2"],
                         "chosen_source": ["C2"], "score_chosen_source": [0.3],
                         "target_model": ["t"], "chosen_target_id": ["t2"],
                         "chosen_target": ["T2"], "score_chosen_target": [0.2],
                         "rejected_id": ["u2"], "rejected": ["U2"], "score_rejected": [0.15],
                         "margin": [0.05]})
    # foundation-shaped drops (no `source`, no `model`): export must complete the shape
    drops = pl.DataFrame({"prompt_id": ["p4", "p5", "p8", "p9"],
                          "category": ["instruction", "instruction", "math", "math"],
                          "split": ["sft", "dpo", "dpo", "sft"],
                          "reason": ["no_eligible_response", "margin_below", "all_passed",
                                     "all_failed"]})
    return {"sft": sft, "dpo": dpo, "wrpo": wrpo, "drops": drops}


def _datasets(tmp: Path, tables: dict[str, pl.DataFrame]) -> dict[str, Dataset]:
    out = {}
    for name, df in tables.items():
        f = tmp / "sel" / f"{name}.parquet"
        f.parent.mkdir(parents=True, exist_ok=True)
        df.write_parquet(f)
        out[name] = Dataset((f,), f"key-{name}-{df.height}")
    return out


def _export(tmp: Path, sel=None, recipe=None, card: bool = True, report: bool = True
            ) -> tuple[Path, dict[str, list[Path]]]:
    """Export, then (as the build does) the report and the card rendered from it; with
    ``report=False`` the card renders a report computed in memory (no report files)."""
    sel = sel if sel is not None else _selection()
    pf = tmp / "prompts.parquet"
    _prompts().write_parquet(pf)
    out = tmp / "out"
    files = export(_datasets(tmp, sel), Dataset((pf,), "prompts"), out)
    if card:
        write_card(out, recipe=recipe, report=write_report(out) if report else None)
    return out, files


def _front_matter(out: Path) -> dict:
    text = (out / "README.md").read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text[4:text.index("\n---\n", 4)])


def _load(out: Path, config: str, tmp: Path):
    import datasets

    return datasets.load_dataset(str(out), config, split="train",
                                 cache_dir=str(tmp / "hf-cache"))


def test_layout_columns_and_records(tmp_path):
    out, files = _export(tmp_path)
    assert sorted(files) == ["dpo", "sft", "wrpo"]
    for t in files:
        assert [f.relative_to(out).as_posix() for f in files[t]] == [
            f"data/{t}/train-00000-of-00001.parquet"]
    sft = pl.read_parquet(files["sft"])
    dpo = pl.read_parquet(files["dpo"])
    wrpo = pl.read_parquet(files["wrpo"])
    assert sft.columns == SFT_COLS and dpo.columns == DPO_COLS and wrpo.columns == WRPO_COLS
    r0 = sft.filter(pl.col("prompt_id") == "p0").to_dicts()[0]
    assert r0["messages"] == _msgs(("system", "be brief"), ("user", "question 0?"),
                                   ("assistant", "A0"))
    assert r0["prompt_text"] == "question 0?" and r0["source_model"] == "a"
    assert r0["source_dataset"] == "openbmb/UltraFeedback"
    d = dpo.filter(pl.col("prompt_id") == "p7").to_dicts()[0]
    assert d["prompt"] == _msgs(("user", "question 7?"))
    assert d["chosen"] == _msgs(("assistant", "C7")) and d["rejected"] == _msgs(("assistant", "R7"))
    assert (d["score_chosen"], d["score_rejected"], d["source_model"]) == (0.8, 0.75, "b")
    w = wrpo.to_dicts()[0]
    # WRPO's record: one user message, chosen = [y_ws, y_wt], rejected = [y_l]
    assert w["prompt"]["role"] == "user" and w["prompt"] == w["prompt_messages"][-1]
    assert w["chosen"] == _msgs(("assistant", "C2"), ("assistant", "T2"))
    assert w["rejected"] == _msgs(("assistant", "U2"))
    assert (w["source_model"], w["target_model"], w["margin"]) == ("b", "t", 0.05)
    drops = pl.read_parquet(out / "drops.parquet")
    assert drops.columns == ["prompt_id", "category", "source", "split", "model", "reason"]
    assert drops.sort("prompt_id")["source"].to_list() == ["uf", "uf", "om", "om"]


def test_load_dataset_each_config_offline(tmp_path):
    out, files = _export(tmp_path)
    for config in ("sft", "dpo", "wrpo"):
        ds = _load(out, config, tmp_path)
        expected = pl.read_parquet(files[config])
        assert len(ds) == expected.height
        assert ds.column_names == expected.columns
        assert ds.to_list() == expected.to_dicts()
    default = _load(out, None, tmp_path)  # the first config (sft) is the default
    assert len(default) == 3 and "messages" in default.column_names


def test_card_front_matter_and_composition(tmp_path):
    out, _ = _export(tmp_path, recipe={"name": "my-build", "models": [
        {"name": "a", "role": "source", "backend": "transformers", "path": "/home/u/a"},
        {"name": "b", "role": "source", "backend": "vllm", "path": "org/model-b"}],
        "reward_model": {"path": "RLHFlow/ArmoRM-Llama3-8B-v0.1", "output": "score",
                         "max_length": 4096},
        "card": {"license": "apache-2.0", "tags": ["fusechat"]}})
    meta = _front_matter(out)
    assert meta["license"] == "apache-2.0" and "fusechat" in meta["tags"]
    assert meta["task_categories"] == ["text-generation"]
    assert meta["source_datasets"] == ["nvidia/OpenMathInstruct-2", "openbmb/UltraFeedback"]
    assert [(c["config_name"], c["data_files"]) for c in meta["configs"]] == [
        (t, [{"split": "train", "path": f"data/{t}/train-*"}]) for t in ("sft", "dpo", "wrpo")]
    info = {i["config_name"]: i for i in meta["dataset_info"]}
    assert sorted(info) == ["dpo", "sft", "wrpo"]
    assert [f["name"] for f in info["dpo"]["features"]] == DPO_COLS
    assert info["sft"]["features"][0] == {"name": "messages", "list": [
        {"name": "role", "dtype": "string"}, {"name": "content", "dtype": "string"}]}
    assert info["wrpo"]["splits"][0]["num_examples"] == 1
    text = (out / "README.md").read_text()
    # composition (report.json's table): every prompt is in sft, dpo or drops (sft/dpo split)
    assert ("| source | source_dataset | total | sft | dpo | wrpo | dropped | category |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
            "| uf | openbmb/UltraFeedback | 6 | 2 | 2 | 1 | 2 | instruction |\n"
            "| om | nvidia/OpenMathInstruct-2 | 4 | 1 | 1 | 0 | 2 | math |\n"
            "| total |  | 10 | 3 | 3 | 1 | 4 |  |\n") in text
    assert "| b | source | vllm | org/model-b | 4 |" in text  # sft 1 + dpo 2 + wrpo 1
    assert "/home/u" not in text and "<local>/a" in text  # no local paths published
    assert "RLHFlow/ArmoRM-Llama3-8B-v0.1" in text
    assert "```yaml\nname: my-build" in text


def test_export_writes_data_files_only(tmp_path):
    out, _ = _export(tmp_path, card=False)
    assert not (out / "README.md").exists() and not (out / "report.json").exists()


def test_report_json_schema_and_card_renders_from_it(tmp_path):
    out, _ = _export(tmp_path)
    rep = json.loads((out / "report.json").read_text())
    assert rep["schema_version"] == 1
    assert set(rep) == {"schema_version", "out", "composition", "totals", "empty",
                        "drop_reasons", "response_drops", "sft_by_model", "dpo_by_model",
                        "wrpo_by_source_model", "margins", "lengths", "plots"}
    assert [list(r) for r in rep["composition"]] == [
        ["source", "source_dataset", "total", "sft", "dpo", "wrpo", "dropped", "category"]] * 2
    assert rep["totals"] == {"total": 10, "sft": 3, "dpo": 3, "wrpo": 1, "dropped": 4}
    # the card takes the table from report.json, it does not compute its own
    rep["composition"][0]["sft"] = 999
    (out / "report.json").write_text(json.dumps(rep))
    res = CliRunner().invoke(cli, ["export", str(out)])
    assert res.exit_code == 0, res.output
    assert "| uf | openbmb/UltraFeedback | 6 | 999 | 2 | 1 | 2 | instruction |" in (
        out / "README.md").read_text()


def test_report_json_of_another_shape_is_an_error(tmp_path):
    out, _ = _export(tmp_path)
    (out / "report.json").write_text(json.dumps({"composition": [
        {"source": "uf", "category": "instruction", "prompts": 6, "kept_pct": 66.7}]}))
    res = CliRunner().invoke(cli, ["export", str(out)])
    assert res.exit_code != 0 and "schema version 1" in res.output
    assert "fusedata report" in res.output


def test_reexport_is_idempotent_and_empty_wrpo_is_not_written(tmp_path):
    out, files = _export(tmp_path)
    mtimes = {f: f.stat().st_mtime_ns for fs in files.values() for f in fs}
    card = (out / "README.md").stat().st_mtime_ns
    _, again = _export(tmp_path)
    assert {f: f.stat().st_mtime_ns for fs in again.values() for f in fs} == mtimes
    assert (out / "README.md").stat().st_mtime_ns == card  # same text: not rewritten
    # the selection changes and has no WRPO triplets: the old WRPO files go away
    sel = _selection()
    sel["wrpo"] = sel["wrpo"].clear()
    sel["sft"] = sel["sft"].head(2)
    _, third = _export(tmp_path, sel=sel)
    assert sorted(third) == ["dpo", "sft"]
    assert not (out / "data" / "wrpo").exists()
    assert [c["config_name"] for c in _front_matter(out)["configs"]] == ["sft", "dpo"]


def test_unknown_prompt_id_is_an_error(tmp_path):
    sel = _selection()
    sel["dpo"] = sel["dpo"].with_columns(prompt_id=pl.lit("nope"))
    with pytest.raises(ValueError, match="3 dpo record.*absent from the prompts.*'nope'"):
        build_tables(sel, _prompts())


def test_only_the_hub_layout_is_read_so_nothing_is_counted_twice(tmp_path):
    out, files = _export(tmp_path)
    # a stray copy in the pre-Hub layout (OUT/sft/) is not a set: not counted, not a config
    (out / "sft").mkdir()
    (out / "sft" / files["sft"][0].name).write_bytes(files["sft"][0].read_bytes())
    ins = CliRunner().invoke(cli, ["inspect", str(out)])
    assert ins.exit_code == 0 and "SFT: 3 records" in ins.output and "DPO: 3 records" in ins.output
    assert write_report(out)["totals"]["sft"] == 3
    res = CliRunner().invoke(cli, ["export", str(out)])
    assert res.exit_code == 0, res.output
    assert [c["config_name"] for c in _front_matter(out)["configs"]] == ["sft", "dpo", "wrpo"]


def test_llamafactory_dataset_info(tmp_path):
    import datasets

    out, _ = _export(tmp_path)
    res = CliRunner().invoke(cli, ["export", str(out), "--format", "llamafactory"])
    assert res.exit_code == 0, res.output
    info = json.loads((out / "dataset_info.json").read_text())
    assert sorted(info) == ["out_dpo", "out_sft"]
    assert info["out_sft"]["columns"] == {"messages": "messages"}
    assert info["out_dpo"]["ranking"] is True
    # LLaMA-Factory's sharegpt pairwise reader wants chosen/rejected as single message dicts
    # and an odd number of prompt turns (after a leading system turn)
    dpo = datasets.load_dataset("parquet", data_dir=str(out / info["out_dpo"]["file_name"]),
                                split="train", cache_dir=str(tmp_path / "hf-cache"))
    assert len(dpo) == 3
    for row in dpo:
        assert isinstance(row["chosen"], dict) and row["chosen"]["role"] == "assistant"
        assert isinstance(row["rejected"], dict) and row["rejected"]["role"] == "assistant"
        turns = [m for m in row["prompt"] if m["role"] != "system"]
        assert len(turns) % 2 == 1 and turns[-1]["role"] == "user"
    assert "dataset_info.json" in (out / "README.md").read_text()


def test_local_source_paths_are_not_published(tmp_path):
    prompts = _prompts().with_columns(
        source_dataset=pl.when(pl.col("source") == "om")
        .then(pl.lit(str(tmp_path / "home" / "alice" / "math.jsonl")))
        .otherwise(pl.col("source_dataset")))
    tables = build_tables(_selection(), prompts)
    got = {r["source"]: r["source_dataset"] for t in tables.values()
           for r in t.select("source", "source_dataset").to_dicts()}
    assert got == {"om": "<local>/math.jsonl", "uf": "openbmb/UltraFeedback"}


def test_empty_set_gets_no_files_and_no_config(tmp_path):
    sel = _selection()
    sel["sft"] = sel["sft"].clear()  # e.g. every prompt went to DPO
    out, files = _export(tmp_path, sel=sel)
    assert sorted(files) == ["dpo", "wrpo"] and not (out / "data" / "sft").exists()
    assert [c["config_name"] for c in _front_matter(out)["configs"]] == ["dpo", "wrpo"]
    text = (out / "README.md").read_text()
    assert "* `sft`: no records in this build" in text
    assert len(_load(out, "dpo", tmp_path)) == 3
