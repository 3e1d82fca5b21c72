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


def test_removed_dead_keys_are_unknown_with_their_line():
    # FieldMap.id and ModelSpec.options were accepted and never read (issue 18): a recipe
    # setting them now hears so, at the key's line, instead of believing they do something
    ok = BASE.replace("      top_p: 1.5\n", "")
    msg = errors(ok.replace("fields: {prompt: text}", "fields: {prompt: text, id: uid}"))
    assert msg == ("r.yaml:5: prompts[0].fields.id: unknown key (check the spelling; "
                   "see `fusedata validate --help`)")
    msg = errors(ok.replace("    path: m/b\n", "    path: m/b\n    options: {x: 1}\n"))
    assert msg.startswith("r.yaml:12: models[1].options: unknown key")


def test_public_names_stay_importable_from_fusedata_recipe():
    """The split into schema + YAML loader keeps ``from fusedata.recipe import X`` working
    for every public name either part defines."""
    import ast
    import inspect

    import fusedata.recipe as recipe
    from fusedata.recipe import load, schema

    for mod in (schema, load):
        public = set()
        for node in ast.parse(inspect.getsource(mod)).body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef):
                public.add(node.name)
            elif isinstance(node, ast.AnnAssign | ast.Assign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                public.update(t.id for t in targets if isinstance(t, ast.Name))
        public = {n for n in public if not n.startswith("_")}
        missing = sorted(public - set(recipe.__all__))
        assert not missing, f"{mod.__name__} names not re-exported: {missing}"
        for n in public:
            assert getattr(recipe, n) is getattr(mod, n)
    assert {"load_recipe", "parse_recipe", "RecipeError", "Recipe", "Executor"} <= set(
        recipe.__all__)
