"""Recipes from someone else: no code runs, nothing is read or written outside the folders the
user allowed, nothing hangs, and every refusal is one line on stderr with exit status 2.

Each attack builds a small project under tmp_path (the recipe's folder `project/`, a folder of
secrets beside it `outside/`, the command's working directory `cwd/`), runs `curate build` and
checks the status, the single stderr line and that no file or folder appeared anywhere under
tmp_path. YAML bombs and glob loops run in a subprocess with a timeout, so a regression fails
instead of hanging the test run.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import yaml
from click.testing import CliRunner

from curate.cli import main
from tests.curate_helpers import general_rows, make_project, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = "outside the recipe's folder; pass --data-root DIR to allow it"
OUTPUT_OUTSIDE = "outside the recipe's folder and the current directory; pass --output DIR to build there"


@dataclass
class Layout:
    tmp: Path
    project: Path  # the recipe's folder
    outside: Path  # data the recipe must not reach
    cwd: Path  # where the command runs

    @property
    def recipe(self) -> Path:
        return self.project / "recipe.yaml"

    def write(self, text: str) -> Path:
        self.recipe.write_text(text, encoding="utf-8")
        return self.recipe

    def edit(self, **changes) -> Path:
        """The working test recipe with some keys replaced."""
        data = yaml.safe_load(self.recipe.read_text(encoding="utf-8"))
        data.update(changes)
        return self.write(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))

    def sources(self, second: str) -> Path:
        """The test recipe with `second` as sources.1.path."""
        return self.edit(sources=[{"path": "general/zh.jsonl", "kind": "general"},
                                  {"path": second, "kind": "general"}])


@pytest.fixture
def lay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Layout:
    layout = Layout(tmp_path, tmp_path / "project", tmp_path / "outside", tmp_path / "cwd")
    make_project(layout.project)
    write_jsonl(layout.outside / "secret.jsonl", general_rows("en", 5, start=500))
    write_jsonl(layout.outside / "zh.jsonl", [{"query": "你是谁？", "response": "我是{{ name }}。"}])
    (layout.outside / "tok").mkdir()
    (layout.outside / "tok" / "tokenizer.json").write_text("{}", encoding="utf-8")
    layout.cwd.mkdir()
    monkeypatch.chdir(layout.cwd)
    return layout


def _tree(root: Path) -> set[str]:
    """Every file, folder and link under root, without following links."""
    found = set()
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            found.add(os.path.relpath(os.path.join(folder, name), root))
    return found


def _bomb(lay: Layout) -> list[str]:
    """A 'billion laughs': 10 levels of 10 aliases each (90 alias uses) would be 10^9 strings."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefghi", "bcdefghij"):
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 10) + "]")
    text = "\n".join(lines) + "\nname: x\nsources: [{path: general/zh.jsonl, kind: domain}]\ntrain: {laughs: *j}\n"
    assert len(text.encode()) < 800
    return [str(lay.write(text))]


def _alias_flood(lay: Layout) -> list[str]:
    return [str(lay.write("x: &x 1\nname: n\nsources: [{path: a.jsonl, kind: domain}]\ntrain: {many: ["
                          + ",".join(["*x"] * 101) + "]}\n"))]


def _glob_loop(lay: Layout) -> list[str]:
    loops = lay.project / "loops"
    loops.mkdir()
    for name in ("l1", "l2", "l3"):
        (loops / name).symlink_to(".")
    return [str(lay.sources("loops/" + "*/" * 40 + "*.jsonl"))]


def _output_symlink(lay: Layout) -> list[str]:
    (lay.tmp / "elsewhere").mkdir()
    (lay.project / "bundle").symlink_to(lay.tmp / "elsewhere")
    return [str(lay.edit(output="bundle"))]


def _source_symlink(lay: Layout) -> list[str]:
    (lay.project / "general" / "link.jsonl").symlink_to(lay.outside / "secret.jsonl")
    return [str(lay.sources("general/link.jsonl"))]


def _source_symlink_loop(lay: Layout) -> list[str]:
    (lay.project / "general" / "loop.jsonl").symlink_to("loop.jsonl")
    return [str(lay.sources("general/loop.jsonl"))]


def _glob_symlink(lay: Layout) -> list[str]:
    (lay.project / "general" / "zz.jsonl").symlink_to(lay.outside / "secret.jsonl")
    return [str(lay.sources("general/*.jsonl"))]


def _glob_symlinked_folder(lay: Layout) -> list[str]:
    (lay.project / "data").symlink_to(lay.outside)
    return [str(lay.sources("*/secret.jsonl"))]


# name: (set up the attack and return the `curate build` arguments, what stderr must say, run in a subprocess)
Attack = tuple[Callable[[Layout], list[str]], Callable[[Layout], str], bool]
ATTACKS: dict[str, Attack] = {
    # YAML
    "alias_bomb": (_bomb, lambda l: "aliases expand to more than 10000 values", True),
    "alias_flood": (_alias_flood, lambda l: "more than 100 aliases (*name)", True),
    "recursive_alias": (lambda l: [str(l.write("a: &a [*a]\nname: x\n"))],
                        lambda l: "line 1: alias *a is inside the node it names", True),
    "duplicate_key": (lambda l: [str(l.write("name: x\nsources: [{path: a.jsonl, kind: domain}]\nname: y\n"))],
                      lambda l: "line 3: duplicate key 'name' (first on line 1)", False),
    "duplicate_nested_key": (lambda l: [str(l.write("name: x\nsources:\n  - path: a.jsonl\n    kind: domain\n"
                                                    "    kind: general\n"))],
                             lambda l: "line 5: duplicate key 'kind' (first on line 4)", False),
    "alias_deep_chain": (lambda l: [str(l.write("name: x\nx0: &x0 [1]\n" + "".join(
        f"x{k}: &x{k} [[*x{k - 1}]]\n" for k in range(1, 40))))],
        lambda l: "nested more than 64 levels deep", False),
    "huge_recipe": (lambda l: [str(l.write("name: x\n" + "# padding\n" * 110_000))],
                    lambda l: "bytes, more than the 1048576 a recipe may have", False),
    "deep_nesting": (lambda l: [str(l.write("name: x\ntrain: {deep: " + "[" * 200 + "]" * 200 + "}\n"))],
                     lambda l: "nested more than 64 levels deep", False),
    "python_tag": (lambda l: [str(l.write("name: !!python/object/apply:os.system ['touch pwned']\n"))],
                   lambda l: "not valid YAML", False),
    "bad_date": (lambda l: [str(l.write("name: 2024-02-30\n"))], lambda l: "not valid YAML", False),
    "not_a_file": (lambda l: [str(l.project)], lambda l: "cannot read recipe: not a regular file", False),
    # code
    "trust_remote_code": (lambda l: [str(l.edit(train={"trust_remote_code": True}))],
                          lambda l: f"{l.recipe}: train.trust_remote_code: remote code can only be enabled "
                                    "on the command line (train run --trust_remote_code)", False),
    "trust_remote_code_dashes": (lambda l: [str(l.edit(train={"lora_rank": 4, "trust-remote-code": False}))],
                                 lambda l: "train.trust-remote-code: remote code can only be enabled", False),
    # reading outside
    "source_dotdot": (lambda l: [str(l.sources("../outside/secret.jsonl"))],
                      lambda l: f"sources.1.path: ../outside/secret.jsonl resolves to "
                                f"{l.outside.resolve() / 'secret.jsonl'}, {OUTSIDE}", False),
    "source_absolute": (lambda l: [str(l.sources(str(l.outside / "secret.jsonl")))],
                        lambda l: f"sources.1.path: {l.outside / 'secret.jsonl'} resolves to "
                                  f"{l.outside.resolve() / 'secret.jsonl'}, {OUTSIDE}", False),
    "source_sampled_dotdot": (lambda l: [str(l.sources("../outside/secret.jsonl#2"))],
                              lambda l: "sources.1.path: ../outside/secret.jsonl resolves to", False),
    "source_symlink": (_source_symlink, lambda l: f"sources.1.path: general/link.jsonl resolves to "
                                                  f"{l.outside.resolve() / 'secret.jsonl'}, {OUTSIDE}", False),
    "source_symlink_loop": (_source_symlink_loop,
                            lambda l: "sources.1.path: general/loop.jsonl: cannot resolve (a symlink loop?)", False),
    "glob_symlink": (_glob_symlink, lambda l: f"sources.1.path: general/zz.jsonl resolves to "
                                              f"{l.outside.resolve() / 'secret.jsonl'}, {OUTSIDE}", False),
    "glob_symlinked_folder": (_glob_symlinked_folder,
                              lambda l: f"sources.1.path: data/secret.jsonl resolves to "
                                        f"{l.outside.resolve() / 'secret.jsonl'}", False),
    "glob_absolute": (lambda l: [str(l.sources(str(l.outside / "*.jsonl")))],
                      lambda l: f"sources.1.path: {l.outside} resolves to {l.outside.resolve()}, {OUTSIDE}", False),
    "glob_dotdot_star": (lambda l: [str(l.sources("../*/secret.jsonl"))], lambda l: "sources.1.path: ..", False),
    "source_nul_byte": (lambda l: [str(l.write('name: x\nsources: [{path: "a\\0b.jsonl", kind: domain}]\n'))],
                        lambda l: "sources.0.path: a path may not be empty or hold a NUL character", False),
    "glob_symlink_loop": (_glob_loop, lambda l: "the glob looks at more than 200000 files and folders", True),
    "template_outside": (lambda l: [str(l.edit(identity={
        "name": {"zh": "小格", "en": "Grace"}, "author": {"zh": "唐寅", "en": "Tang Yin"},
        "templates": ["identity/en.jsonl", "../outside/zh.jsonl"]}))],
        lambda l: f"identity.templates.1: ../outside/zh.jsonl resolves to {l.outside.resolve() / 'zh.jsonl'}, "
                  f"{OUTSIDE}", False),
    "tokenizer_outside": (lambda l: [str(l.edit(filters={"length": {"max_tokens": 100,
                                                                    "tokenizer": str(l.outside / "tok")}}))],
                          lambda l: f"filters.length.tokenizer: {l.outside / 'tok'} resolves to "
                                    f"{l.outside.resolve() / 'tok'}, {OUTSIDE}", False),
    "tokenizer_dotdot_missing": (lambda l: [str(l.edit(filters={"length": {"tokenizer": "../nothere/tok"}}))],
                                 lambda l: "filters.length.tokenizer: ../nothere/tok resolves to", False),
    # writing outside
    "output_absolute": (lambda l: [str(l.edit(output=str(l.tmp / "elsewhere")))],
                        lambda l: f"{l.recipe}: output: {l.tmp / 'elsewhere'} resolves to "
                                  f"{(l.tmp / 'elsewhere').resolve()}, {OUTPUT_OUTSIDE}", False),
    "output_dotdot": (lambda l: [str(l.edit(output="../../x"))],
                      lambda l: f"output: ../../x resolves to {(l.tmp.parent / 'x').resolve()}, {OUTPUT_OUTSIDE}",
                      False),
    "output_symlink": (_output_symlink, lambda l: f"output: bundle resolves to {(l.tmp / 'elsewhere').resolve()}",
                       False),
    "output_is_a_file": (lambda l: [str(l.edit(output="general/zh.jsonl"))],
                         lambda l: "output: general/zh.jsonl is an existing file, not a folder", False),
    "output_under_a_file": (lambda l: [str(l.edit(output="general/zh.jsonl/v"))],
                            lambda l: f"output: general/zh.jsonl/v: {(l.project / 'general' / 'zh.jsonl').resolve()} "
                                      "is an existing file, not a folder", False),
    "output_flag_is_a_file": (lambda l: [str(l.recipe), "--output", str(l.outside / "secret.jsonl")],
                              lambda l: f"--output: {l.outside / 'secret.jsonl'} is an existing file, not a folder",
                              False),
    # numbers
    "ratio_nan": (lambda l: [str(l.edit(mix={"ratio": float("nan"), "allow_out_of_band": True}))],
                  lambda l: "mix.ratio: ratio nan is not a finite number", False),
    "ratio_inf": (lambda l: [str(l.edit(mix={"ratio": float("inf"), "allow_out_of_band": True}))],
                  lambda l: "mix.ratio: ratio inf is not a finite number", False),
    "ratio_huge": (lambda l: [str(l.edit(mix={"ratio": "1:" + "9" * 400, "allow_out_of_band": True}))],
                   lambda l: "is not a finite number", False),
    "ratio_negative": (lambda l: [str(l.edit(mix={"ratio": -4, "allow_out_of_band": True}))],
                       lambda l: "mix.ratio: ratio -4 must be positive", False),
    "ratio_zero": (lambda l: [str(l.edit(mix={"ratio": "1:0", "allow_out_of_band": True}))],
                   lambda l: "mix.ratio: ratio 1:0 must be positive", False),
    # flags
    "data_root_missing": (lambda l: [str(l.recipe), "--data-root", str(l.tmp / "nothere")],
                          lambda l: f"--data-root: {l.tmp / 'nothere'}: no such folder", False),
}


def _run(args: list[str], subprocess_: bool, cwd: Path) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `curate build ARGS`."""
    if subprocess_:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        done = subprocess.run([sys.executable, "-m", "curate", "build", *args], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=20)
        return done.returncode, done.stdout, done.stderr
    result = CliRunner().invoke(main, ["build", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_hostile_recipe_is_refused_in_one_line(lay: Layout, name: str) -> None:
    setup, expected, in_subprocess = ATTACKS[name]
    args = setup(lay)
    before = _tree(lay.tmp)
    status, stdout, stderr = _run(args, in_subprocess, lay.cwd)
    assert status == 2, (status, stdout, stderr)
    assert stderr.count("\n") == 1 and stderr.startswith("Error: "), stderr
    assert "Traceback" not in stderr + stdout
    assert expected(lay) in stderr, stderr
    if not any(arg.startswith("--") for arg in args) and name != "not_a_file":
        assert stderr.startswith(f"Error: {lay.recipe}"), stderr  # names the recipe file
    assert _tree(lay.tmp) == before, "a refused build left something behind"
    assert not (lay.cwd / "pwned").exists()


def test_data_root_allows_inputs_outside_the_recipe_folder(lay: Layout) -> None:
    """The same sources, template and tokenizer as the attacks above build once the user allows them."""
    recipe = lay.edit(
        identity={"name": {"zh": "小格", "en": "Grace"}, "author": {"zh": "唐寅", "en": "Tang Yin"},
                  "templates": ["identity/en.jsonl", str(lay.outside / "zh.jsonl")]},
        sources=[{"path": "general/zh.jsonl", "kind": "general"}, {"path": "general/en.jsonl", "kind": "general"},
                 {"path": "../outside/*.jsonl#3", "kind": "general"}],
        filters={"length": {"tokenizer": str(lay.outside / "tok")}})
    refused, _, stderr = _run([str(recipe), "--output", str(lay.tmp / "out")], False, lay.cwd)
    assert refused == 2 and "identity.templates.1" in stderr
    before = _tree(lay.tmp)
    status, stdout, stderr = _run([str(recipe), "--output", str(lay.tmp / "out"), "--data-root", str(lay.outside)],
                                  False, lay.cwd)
    assert status == 0, stderr
    assert Path(stdout.strip().splitlines()[-1]) == (lay.tmp / "out" / "v0001").resolve()
    assert all(path.startswith("out") for path in _tree(lay.tmp) - before)


def test_output_may_be_under_the_current_directory(lay: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    """Like `curate build recipes/identity.yaml` with `output: ../bundle`, run from the repository root."""
    recipes = lay.project / "recipes"
    recipes.mkdir()
    recipe = make_project(recipes, recipe_extra={"output": "../bundle"})
    monkeypatch.chdir(lay.project)
    before = _tree(lay.tmp)
    status, stdout, stderr = _run([str(recipe)], False, lay.project)
    assert status == 0, stderr
    assert Path(stdout.strip().splitlines()[-1]) == (lay.project / "bundle" / "v0001").resolve()
    assert all(path.startswith(os.path.join("project", "bundle")) for path in _tree(lay.tmp) - before)
    monkeypatch.chdir(lay.cwd)  # the same recipe run from elsewhere may not write beside its folder
    status, _, stderr = _run([str(recipe)], False, lay.cwd)
    assert status == 2 and f"output: ../bundle resolves to {(lay.project / 'bundle').resolve()}" in stderr


def test_glob_does_not_follow_symlink_loops(lay: Layout) -> None:
    """`**` never descends into a symlinked folder, so a loop cannot make it run forever."""
    loops = lay.project / "general" / "deeper"
    loops.mkdir()
    for name in ("l1", "l2"):
        (loops / name).symlink_to("..")
    write_jsonl(loops / "more.jsonl", general_rows("en", 3, start=900))
    recipe = lay.sources("general/**/*.jsonl")
    status, stdout, stderr = _run([str(recipe)], True, lay.cwd)
    assert status == 0, stderr
    manifest = (Path(stdout.strip().splitlines()[-1]) / "manifest.json").read_text(encoding="utf-8")
    assert "general/deeper/more.jsonl" in manifest and "l1" not in manifest


def test_python_api_takes_data_roots(lay: Layout) -> None:
    from curate.pipeline import build
    from schemas.recipe import RecipeError, load_recipe

    recipe = lay.sources("../outside/secret.jsonl")
    with pytest.raises(RecipeError, match="sources.1.path"):
        build(load_recipe(recipe), lay.tmp / "out")
    assert build(load_recipe(recipe, data_roots=[lay.outside]), lay.tmp / "a").version_dir.name == "v0001"
    assert build(load_recipe(recipe), lay.tmp / "b", data_roots=[lay.outside]).version_dir.name == "v0001"
