"""Sources that are datasets: save_to_disk folders, dataset folders of files, hub names (offline here)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from curate.dataset_sources import DatasetRef, dataset_ref
from curate.pipeline import BuildError, build
from curate.raw_row import SourceError
from schemas.bundle import verify_bundle
from schemas.recipe import RecipeError, load_recipe
from tests.curate_helpers import make_project, read_jsonl, write_jsonl


def _domain_rows(count: int) -> list[dict]:
    return [{"query": f"How do I reset gadget model {i} to its factory settings?",
             "response": f"Hold the power button of gadget {i} for {i + 5} seconds, then release it."}
            for i in range(count)]


def _project(tmp: Path, source: str) -> Path:
    """The helper project (identity + general) with one extra domain source at `source`."""
    extra = {"sources": [{"path": source, "kind": "domain"},
                         {"path": "general/en.jsonl", "kind": "general", "languages": ["en"]},
                         {"path": "general/zh.jsonl", "kind": "general", "languages": ["zh"]}],
             "mix": {"ratio": "1:2", "allow_out_of_band": True}}
    return make_project(tmp, recipe_extra=extra)


def _domain_source(manifest) -> object:
    return next(s for s in manifest.sources if s.kind == "domain")


def test_refs_tell_hub_names_folders_and_files_apart(tmp_path):
    (tmp_path / "data" / "set").mkdir(parents=True)
    (tmp_path / "data" / "file.jsonl").write_text("{}\n")
    assert dataset_ref("data/file.jsonl", tmp_path) is None
    assert dataset_ref("data/missing.jsonl", tmp_path) is None  # a missing file stays a file: "no such file"
    assert dataset_ref("data/*.jsonl", tmp_path) is None
    assert dataset_ref("data/set", tmp_path) == DatasetRef("folder", "data/set", tmp_path / "data" / "set")
    assert dataset_ref("data/set@test", tmp_path).split == "test"
    assert dataset_ref("AI-ModelScope/alpaca-gpt4-data-zh", tmp_path) == DatasetRef(
        "hub", "AI-ModelScope/alpaca-gpt4-data-zh")
    ref = dataset_ref("hf:org/name:zh@validation", tmp_path)
    assert (ref.kind, ref.name, ref.config, ref.split, ref.label) == (
        "hub", "org/name", "zh", "validation", "hf:org/name:zh@validation")
    with pytest.raises(SourceError, match="hf:OWNER/NAME"):
        dataset_ref("hf:not a name", tmp_path)


def test_save_to_disk_folder_is_read_sampled_and_hashed(tmp_path):
    import datasets

    datasets.Dataset.from_list(_domain_rows(40)).save_to_disk(str(tmp_path / "data" / "saved"))
    recipe = _project(tmp_path, "data/saved#12")
    first = build(load_recipe(recipe))
    manifest = verify_bundle(first.version_dir)
    source = _domain_source(manifest)
    assert (source.rows, source.sample, source.sampled_out) == (40, 12, 28)
    arrow = [label for label in source.files if label.endswith(".arrow")]
    assert arrow and all(label.startswith("data/saved/") for label in source.files)
    assert all(len(digest) == 64 for digest in source.files.values())
    kept = [r for r in read_jsonl(first.version_dir / "train.jsonl") + read_jsonl(first.version_dir / "val.jsonl")
            if r["meta"]["kind"] == "domain"]
    rejected = [r for r in read_jsonl(first.version_dir / "rejects.jsonl") if r["kind"] == "domain"]
    assert len(kept) + len(rejected) == 12
    assert all(r["meta"]["source"] == "data/saved" and r["meta"]["id"] == f"data/saved:{r['meta']['line']}"
               for r in kept)
    again = build(load_recipe(recipe))  # the same sample, the same bytes
    assert (again.version_dir / "train.jsonl").read_bytes() == (first.version_dir / "train.jsonl").read_bytes()


def test_dataset_dict_split_and_folder_of_files(tmp_path):
    import datasets

    rows = _domain_rows(30)
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows[:20]),
                          "test": datasets.Dataset.from_list(rows[20:])}).save_to_disk(str(tmp_path / "data" / "dd"))
    manifest = build(load_recipe(_project(tmp_path / "a", "../data/dd@test"), data_roots=[tmp_path])).manifest
    assert _domain_source(manifest).rows == 10

    folder = tmp_path / "b" / "data" / "jsonl"
    write_jsonl(folder / "part-0.jsonl", rows[:15])
    write_jsonl(folder / "part-1.jsonl", rows[15:])
    manifest = build(load_recipe(_project(tmp_path / "b", "data/jsonl"))).manifest
    source = _domain_source(manifest)
    assert source.rows == 30 and sorted(source.files) == ["data/jsonl/part-0.jsonl", "data/jsonl/part-1.jsonl"]

    parquet = tmp_path / "c" / "data" / "pq"
    parquet.mkdir(parents=True)
    datasets.Dataset.from_list(rows).to_parquet(str(parquet / "train.parquet"))
    assert _domain_source(build(load_recipe(_project(tmp_path / "c", "data/pq"))).manifest).rows == 30


def test_bad_rows_of_a_dataset_are_rejects_naming_the_row(tmp_path):
    import datasets

    rows = _domain_rows(6) + [{"query": "Why is the answer missing?", "response": ""}]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "data" / "saved"))
    version = build(load_recipe(_project(tmp_path, "data/saved"))).version_dir
    bad = [r for r in read_jsonl(version / "rejects.jsonl") if r["id"] == "data/saved:7"]
    assert len(bad) == 1 and bad[0]["reason"] == "empty_answer" and bad[0]["line"] == 7


def test_a_dataset_folder_outside_the_roots_is_refused(tmp_path):
    import datasets

    datasets.Dataset.from_list(_domain_rows(5)).save_to_disk(str(tmp_path / "outside"))
    recipe = _project(tmp_path / "proj", "../outside")
    with pytest.raises(RecipeError, match="sources.0.path: ../outside resolves to .*--data-root"):
        build(load_recipe(recipe))
    assert _domain_source(build(load_recipe(recipe, data_roots=[tmp_path / "outside"])).manifest).rows == 5


@pytest.fixture
def hub_offline(monkeypatch):
    import datasets
    from huggingface_hub import constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


@pytest.mark.parametrize("source", ["hf:curatune-tests/nothing-here@train#5", "AI-ModelScope/alpaca-gpt4-data-zh#500"])
def test_a_hub_dataset_that_is_not_cached_fails_in_one_line_offline(tmp_path, hub_offline, source):
    recipe = _project(tmp_path, source)
    started = time.monotonic()
    with pytest.raises(BuildError) as info:
        build(load_recipe(recipe))
    message = str(info.value)
    assert time.monotonic() - started < 20 and "\n" not in message
    name = source.removeprefix("hf:").split("@")[0].split("#")[0]
    assert f"sources.0.path: hf:{name}" in message and "HF_HUB_OFFLINE" in message
    assert "save_to_disk" in message and f"modelscope download --dataset {name}" in message
    assert not (tmp_path / "bundle").exists() or not any((tmp_path / "bundle").glob("v*"))


def test_an_unreachable_hub_fails_after_one_probe(tmp_path, monkeypatch):
    """Not offline by setting, but the hub does not answer: one probe, then the same one line."""
    import datasets
    from huggingface_hub import HfApi, constants

    calls = []

    def no_network(self, repo_id, **kwargs):
        calls.append((repo_id, kwargs.get("timeout")))
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(HfApi, "dataset_info", no_network)
    monkeypatch.setattr(datasets, "load_dataset", _offline_only(datasets.load_dataset))
    with pytest.raises(BuildError, match=r"hf:org/data@train: not in the local datasets cache .*Name or service"):
        build(load_recipe(_project(tmp_path, "org/data#3")))
    assert calls == [("org/data", 10.0)]


def _offline_only(load):
    """datasets.load_dataset that refuses to go online in this test (the probe decides, not a download)."""
    import datasets

    def guarded(*args, **kwargs):
        if not datasets.config.HF_HUB_OFFLINE:
            raise AssertionError("went online although the probe failed")
        return load(*args, **kwargs)
    return guarded


def test_cli_prints_one_line_for_a_hub_source_offline(tmp_path):
    import os
    import subprocess
    import sys

    recipe = _project(tmp_path, "hf:curatune-tests/nothing-here#5")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "curate", "build", str(recipe)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "hf:curatune-tests/nothing-here@train" in lines[0]
