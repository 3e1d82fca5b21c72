"""Recipe validation: errors name the YAML line and the field path."""

from __future__ import annotations

import textwrap

import pytest
from click.testing import CliRunner

from fusedata.cli import cli
from fusedata.recipe import RecipeError, load_recipe, parse_recipe

BASE = """\
name: t
prompts:
  - name: p
    path: data.jsonl
    fields: {prompt: text}
    category: instruction
models:
  - name: a
    path: m/a
  - name: b
    path: m/b
  - name: c
    path: m/c
    sampling:
      temperature: 0.7
      top_p: 1.5
reward_model:
  path: rm
"""


def errors(text: str) -> str:
    with pytest.raises(RecipeError) as e:
        parse_recipe(textwrap.dedent(text), source="r.yaml")
    return str(e.value)


def test_out_of_range_names_path_and_line():
    msg = errors(BASE)
    assert "r.yaml:16: models[2].sampling.top_p: must be <= 1" in msg


def test_unknown_key_is_an_error_with_its_line():
    msg = errors(BASE.replace("top_p: 1.5", "top_p: 0.9\n      temprature: 0.5"))
    assert "r.yaml:17: models[2].sampling.temprature: unknown key" in msg


def test_wrong_type_and_missing_field():
    text = BASE.replace("top_p: 1.5", "top_p: 0.9").replace("    path: m/b\n", "")
    text = text.replace("temperature: 0.7", "temperature: hot")
    msg = errors(text)
    assert "models[1]: Value error, backend 'transformers' needs 'path'" in msg or \
        "models[1]: backend 'transformers' needs 'path'" in msg
    assert "models[2].sampling.temperature:" in msg and "valid number" in msg


def test_missing_required_top_level_field():
    msg = errors("name: x\nmodels: []\n")
    assert "prompts: required field is missing" in msg
    assert "models: List should have at least 1 item" in msg


def test_bad_category_and_literal():
    msg = errors(BASE.replace("category: instruction", "category: poetry").replace(
        "top_p: 1.5", "top_p: 0.5"))
    assert "r.yaml:6: prompts[0].category: must be one of" in msg


def test_unknown_sample_category():
    msg = errors(BASE.replace("top_p: 1.5", "top_p: 0.5").replace(
        "    path: m/a\n", "    path: m/a\n    samples: {cooking: 3}\n"))
    assert "models[0].samples: unknown category 'cooking'" in msg


def test_duplicate_model_names():
    msg = errors(BASE.replace("top_p: 1.5", "top_p: 0.5").replace("name: b", "name: a"))
    assert "duplicate model name 'a'" in msg


def test_invalid_yaml_reports_line():
    msg = errors("name: x\nprompts: [\n  - a: b\n")
    assert msg.startswith("r.yaml:") and "not valid YAML" in msg


def test_not_a_mapping():
    assert "must be a YAML mapping" in errors("- a\n- b\n")


def test_valid_recipe_and_defaults(tmp_path):
    r = parse_recipe(BASE.replace("top_p: 1.5", "top_p: 0.8"))
    assert r.models[2].sampling.top_p == 0.8
    assert r.models[0].samples_for("code") == 5
    assert r.selection.margin == (0.01, 0.1)


def test_validate_cli(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(BASE.replace("top_p: 1.5", "top_p: 0.8"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(BASE)
    runner = CliRunner()
    res = runner.invoke(cli, ["validate", str(good)])
    assert res.exit_code == 0 and "OK" in res.output
    res = runner.invoke(cli, ["validate", str(bad)])
    assert res.exit_code != 0
    assert "bad.yaml:16: models[2].sampling.top_p: must be <= 1" in res.output
    res = runner.invoke(cli, ["validate", str(tmp_path / "nope.yaml")])
    assert res.exit_code != 0 and "no such recipe file" in res.output


def test_shipped_recipes_validate():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "recipes"
    for f in sorted(root.glob("*.yaml")):
        load_recipe(f)
