import pytest

from schemas.recipe import RecipeError, load_recipe, parse_ratio
from tests.curate_helpers import make_project


def _recipe_text(tmp_path, text):
    path = tmp_path / "r.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_recipe_loads():
    recipe = load_recipe("recipes/identity.yaml")
    assert recipe.identity.name.en == "Grace"
    assert 2 <= recipe.mix.general_per_domain() <= 10


@pytest.mark.parametrize("ratio,value", [("1:4", 4.0), ("2:5", 2.5), (3, 3.0), ("1 : 10", 10.0)])
def test_parse_ratio(ratio, value):
    assert parse_ratio(ratio) == value


@pytest.mark.parametrize("text,expected", [
    ("name: x\nsources: [{path: a.jsonl, kind: domain}]\ncolour: red\n", "colour: unknown key"),
    ("name: x\nsources: [{path: a.jsonl, kind: domain, shap: alpaca}]\n", "sources.0.shap: unknown key"),
    ("name: x\nsources: [{path: a.jsonl, kind: domain}]\nmix: {ratio: '1:1'}\n", "mix: ratio 1:1 is outside"),
    ("name: x\nsources: [{path: a.jsonl, kind: domain}]\nmix: {ratio: '1:20'}\n", "mix.allow_out_of_band"),
    ("name: x\nsources: [{path: 'a.jsonl#ten', kind: domain}]\n", "'#ten' is not a positive record count"),
    ("name: x\nsources: [{path: 'a.jsonl#0', kind: domain}]\n", "'#0' is not a positive record count"),
    ("name: x\nsources: [{path: a.jsonl, kind: domain}]\nsplit: {val_ratio: fast}\n", "split.val_ratio"),
    ("name: x\nsources: [{path: a.jsonl, kind: other}]\n", "sources.0.kind"),
    ("name: x\nsources: [{path: a.jsonl}]\n", "sources.0.kind: Field required"),
    ("name: [x\n", "not valid YAML"),
    ("- just a list\n", "a recipe is a YAML mapping"),
])
def test_bad_recipe_is_one_clear_line(tmp_path, text, expected):
    path = _recipe_text(tmp_path, text)
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert expected in message


def test_ratio_out_of_band_allowed_with_override(tmp_path):
    path = _recipe_text(tmp_path, "name: x\nsources: [{path: a.jsonl, kind: domain}]\n"
                                  "mix: {ratio: '1:1', allow_out_of_band: true}\n")
    assert load_recipe(path).mix.general_per_domain() == 1.0


def test_yaml_is_loaded_safely(tmp_path):
    path = _recipe_text(tmp_path, "name: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(path)


def test_paths_resolve_relative_to_recipe(tmp_path):
    recipe = load_recipe(make_project(tmp_path))
    assert recipe.resolve("general/zh.jsonl") == (tmp_path / "general" / "zh.jsonl").resolve()
    assert recipe.output_root() == (tmp_path / "bundle").resolve()


def test_recipe_name_cannot_be_a_path(tmp_path):
    path = _recipe_text(tmp_path, "name: ../../etc/evil\nsources: [{path: a.jsonl, kind: domain}]\n")
    with pytest.raises(RecipeError, match="name: String should match pattern"):
        load_recipe(path)


def test_build_writes_only_inside_the_output_root(tmp_path):
    from curate.pipeline import build

    project = tmp_path / "project"
    project.mkdir()
    recipe = load_recipe(make_project(project))
    before = {p for p in tmp_path.rglob("*")}
    result = build(recipe, tmp_path / "chosen")
    created = {p for p in tmp_path.rglob("*")} - before
    assert created and all(p.is_relative_to(tmp_path / "chosen") for p in created)
    assert result.version_dir.parent == (tmp_path / "chosen").resolve()
