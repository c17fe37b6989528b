"""Background file chores: they all run before the build publishes, a failure is not lost, and no
spill is left in a published version whichever dedup stages ran."""
import os

import pytest

from curate.file_chores import FileChores
from curate.pipeline import build
from schemas.bundle import verify_bundle
from schemas.recipe import load_recipe
from tests.curate_helpers import make_project

BUNDLE_FILES = ["manifest.json", "rejects.jsonl", "report.html", "train.jsonl", "val.jsonl"]


def test_chores_run_in_order_and_are_done_on_leaving(tmp_path):
    done = []
    target = tmp_path / "a.txt"
    target.write_bytes(b"x" * 1000)
    with FileChores() as chores:
        chores.sync(target)
        chores.run(lambda: done.append(1))
        chores.run(target.unlink)
        chores.run(lambda: done.append(2))
    assert done == [1, 2] and not target.exists()


def test_a_failed_chore_raises_when_waited_for(tmp_path):
    with pytest.raises(FileNotFoundError):
        with FileChores() as chores:
            chores.sync(tmp_path / "missing.txt")
            chores.run(lambda: None)


def test_an_error_in_the_build_does_not_wait_for_chore_results(tmp_path):
    with pytest.raises(KeyError):
        with FileChores() as chores:
            chores.sync(tmp_path / "missing.txt")  # fails too, but the first error is the one raised
            raise KeyError("stage failed")


@pytest.mark.parametrize("near", [True, False])
@pytest.mark.parametrize("exact", [True, False])
def test_a_version_holds_the_bundle_files_only(tmp_path, near, exact):
    recipe = make_project(tmp_path, recipe_extra={"dedup": {"exact": exact, "near": {"enabled": near}}})
    version = build(load_recipe(recipe)).version_dir
    assert sorted(os.listdir(version)) == BUNDLE_FILES
    verify_bundle(version)
