"""`diff_bundles` and `curate diff`: added, removed and changed records, ratio, lengths, recipe keys."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from _bundle_factory import RECIPE, default_records, record, write_bundle
from curate.diff import diff_bundles, flatten, recipe_changes
from curate.stats_cli import diff_command


@pytest.fixture
def two_versions(tmp_path: Path) -> Path:
    root = tmp_path / "out"
    write_bundle(root / "v0001")
    recs = [r for r in default_records() if r.meta.id != "general.jsonl:5"]  # removed
    recs = [record("domain.jsonl:3", "How do I configure widget 3?", "Edited answer.", kind="domain")
            if r.meta.id == "domain.jsonl:3" else r for r in recs]  # changed in place
    recs.append(record("newsrc.jsonl:1", "A brand new question", "A brand new answer " * 500))  # added
    recipe = copy.deepcopy(RECIPE)
    recipe["mix"]["ratio"] = "1:5"
    recipe["filters"] = {"length": {"max_chars": 8000}}
    del recipe["split"]["seed"]
    write_bundle(root / "v0002", recs, recipe=recipe)
    return root


def test_added_removed_and_changed_records(two_versions: Path) -> None:
    diff = diff_bundles(two_versions / "v0001", two_versions)  # an output root means its newest version
    rec = diff["records"]
    assert rec["examples"]["removed"] == ["domain.jsonl:3", "general.jsonl:5"]
    assert rec["examples"]["added"] == ["domain.jsonl:3", "newsrc.jsonl:1"]
    assert rec["examples"]["changed"] == ["domain.jsonl:3"]
    assert (rec["added"], rec["removed"], rec["changed"]) == (2, 2, 1)
    assert rec["unchanged"] == len(default_records()) - 2
    assert rec["by_source"] == {"domain.jsonl": {"added": 1, "removed": 1}, "general.jsonl": {"added": 0, "removed": 1},
                                "newsrc.jsonl": {"added": 1, "removed": 0}}
    assert rec["by_kind"] == {"domain": {"added": 1, "removed": 1}, "general": {"added": 1, "removed": 1}}
    assert not diff["identical"]


def test_recipe_ratio_and_lengths(two_versions: Path) -> None:
    diff = diff_bundles(two_versions / "v0001", two_versions / "v0002")
    assert {c["key"]: (c["change"], c["old"], c["new"]) for c in diff["recipe"]} == {
        "mix.ratio": ("changed", "1:4", "1:5"),
        "filters.length.max_chars": ("added", None, 8000),
        "split.seed": ("removed", 42, None),
    }
    assert diff["ratio"]["requested"] == {"old": "1:4", "new": "1:5", "delta": None}
    assert diff["lengths"]["all"]["max"]["new"] > diff["lengths"]["all"]["max"]["old"]
    assert diff["lengths"]["all"]["max"]["delta"] == diff["lengths"]["all"]["max"]["new"] - 1081
    assert diff["counts"]["kept"] == {"old": 426, "new": 426, "delta": 0}


def test_same_bundle_has_no_differences(two_versions: Path) -> None:
    diff = diff_bundles(two_versions / "v0001", two_versions / "v0001")
    assert diff["identical"] and diff["recipe"] == []
    assert (diff["records"]["added"], diff["records"]["removed"]) == (0, 0)


def test_flatten() -> None:
    assert flatten({"a": {"b": 1, "c": [{"d": 2}, 3]}, "e": {}, "f": None}) == {
        "a.b": 1, "a.c.0.d": 2, "a.c.1": 3, "e": {}, "f": None}
    assert recipe_changes({"x": [1, 2]}, {"x": [1]}) == [{"key": "x.1", "change": "removed", "old": 2, "new": None}]


def _cli() -> click.Group:
    return click.Group("curate", commands={"diff": diff_command})


def test_cli_tables_and_json(two_versions: Path) -> None:
    result = CliRunner().invoke(_cli(), ["diff", str(two_versions / "v0001"), str(two_versions / "v0002")])
    assert result.exit_code == 0, result.output
    assert "mix.ratio" in result.output and "+2 added, -2 removed" in result.output
    result = CliRunner().invoke(_cli(), ["diff", str(two_versions / "v0001"), str(two_versions), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == diff_bundles(two_versions / "v0001", two_versions / "v0002")


def test_cli_errors_are_one_line(two_versions: Path, tmp_path: Path) -> None:
    source = tmp_path / "rows.jsonl"
    source.write_text('{"query": "q", "response": "r"}\n', encoding="utf-8")
    for args in (["diff", str(tmp_path / "nope"), str(two_versions)], ["diff", str(source), str(two_versions)]):
        result = CliRunner().invoke(_cli(), args)
        assert result.exit_code == 1 and result.output.startswith("Error: ") and result.output.count("\n") == 1
