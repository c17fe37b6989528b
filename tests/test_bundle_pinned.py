"""The bytes of a built bundle, pinned.

Building the same recipe with the same seed must give byte-identical train.jsonl, val.jsonl and
rejects.jsonl, and the same per-stage counts in manifest.json, whatever the number of workers.
This file pins those bytes with sha256 constants so that speed work on `curate build` (issue 16)
cannot change the output unnoticed: a faster build must write exactly these bytes.

Update the constants ONLY for an intended change of the output (a new field, a changed filter,
a changed serialisation), and say so in the commit; never to make a refactor or a speed-up pass.
A failing test prints the new value in full, ready to paste.

(a) is the shipped recipes/identity.yaml, whose inputs all lie inside the repository; (b) is a
small generated recipe that exercises exact and near dedup, the length and language filters,
unreadable and invalid rows, identity rendering and the domain:general mix, with rejects.
"""
from __future__ import annotations

import hashlib
import json
import pprint
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from curate_helpers import general_rows, make_project, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
PINNED_FILES = ("train.jsonl", "val.jsonl", "rejects.jsonl")


def run_build(recipe: Path, output: Path, *extra: str) -> tuple[Path, str]:
    """`curate build RECIPE --output OUTPUT [extra]`, as a user runs it: (version folder, its log)."""
    done = subprocess.run([sys.executable, "-m", "curate", "build", str(recipe), "--output", str(output), *extra],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    version = Path(done.stdout.strip().splitlines()[-1])
    assert version.is_dir(), done.stdout[-2000:]
    return version, done.stderr


def curate_build(recipe: Path, output: Path, *extra: str) -> Path:
    return run_build(recipe, output, *extra)[0]


def assert_pinned(actual, expected, name: str) -> None:
    assert actual == expected, (
        f"{name} changed: the build no longer writes the pinned bytes. If (and only if) the output was "
        f"meant to change, set {name} to:\n{pprint.pformat(actual, width=110, sort_dicts=False)}")


def fingerprint(version: Path) -> dict:
    """What is pinned: the sha256 of the data files, the manifest's counts and per-stage stats."""
    manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    return {
        "sha256": {name: hashlib.sha256((version / name).read_bytes()).hexdigest() for name in PINNED_FILES},
        "counts": manifest["counts"],
        "stages": [[s["name"], s["records_in"], s["records_out"], s["rejected"], s["reasons"]]
                   for s in manifest["stages"]],
    }


def generated_project(tmp: Path) -> Path:
    """make_project plus rows that each stage must catch; returns the recipe path."""
    recipe = make_project(tmp, general_per_lang=30, recipe_extra={
        "filters": {"length": {"min_chars": 12, "max_chars": 400}, "language": {"backend": "fasttext"}},
        "dedup": {"exact": True, "near": {"threshold": 0.8, "num_perm": 128, "shingle": 5}},
        "split": {"val_ratio": 0.2, "seed": 7},
    })
    en, zh = general_rows("en", 30), general_rows("zh", 30)
    near_en = dict(en[3], output=en[3]["output"].replace("then the tens", "and then the tens"))
    near_zh = dict(zh[4], output=zh[4]["output"].replace("即可", "就可以了"))
    extra_en = [
        dict(en[0]), dict(en[1]), dict(en[1]),  # exact duplicates
        near_en,  # a near duplicate
        {"instruction": "Hi", "input": "", "output": "Yo"},  # too short
        {"instruction": "Describe the sea at length.", "input": "", "output": "The sea is wide and deep. " * 30},  # too long
        {"instruction": "Quelle est la capitale de la France, et pourquoi est-elle connue ?", "input": "",
         "output": "La capitale de la France est Paris, connue pour la tour Eiffel et ses musées."},  # not en
        {"instruction": "Wie spät ist es jetzt in Berlin, wenn es in London zwölf Uhr ist?", "input": "",
         "output": "In Berlin ist es dann dreizehn Uhr, denn Berlin liegt eine Stunde vor London."},  # not en
        {"instruction": "What is the answer?", "input": "", "output": ""},  # no answer
    ]
    extra_zh = [
        dict(zh[2]),  # exact duplicate
        near_zh,  # a near duplicate
        {"instruction": "What colour is the sky on a clear summer day?", "input": "",
         "output": "On a clear summer day the sky is a bright, deep blue."},  # not zh
    ]
    write_jsonl(tmp / "general" / "en.jsonl", en + extra_en)
    write_jsonl(tmp / "general" / "zh.jsonl", zh + extra_zh)
    with (tmp / "general" / "en.jsonl").open("a", encoding="utf-8") as handle:
        handle.write('{"instruction": "broken line", "output": \n')  # unreadable JSON
    return recipe


def with_a_large_source(recipe: Path, rows: int = 20_000) -> Path:
    """The generated recipe plus one general source big enough that `--workers 2` reads it in a
    worker pool (curate.stage_read.PARALLEL_FROM rows), so the pool's output order is pinned too."""
    write_jsonl(recipe.parent / "general" / "large.jsonl", general_rows("en", rows, start=1000))
    data = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    data["sources"].append({"path": "general/large.jsonl", "kind": "general", "languages": ["en"]})
    recipe.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return recipe


# Taken on 2026-11-25 from commit a9adc24 plus the SourceRead move (no output change), where a
# record's meta leaves out `index` and `needs` when they are unset (schemas/record.py to_json_dict).

# (a) recipes/identity.yaml: its inputs, then what it builds.
SHIPPED_INPUTS = {'general/general_en.jsonl': 'ea7b36d0df2bcea05d513485e9475a63fcb131b885c775e842153a506b50286e',
                 'general/general_zh.jsonl': 'b4d9814e217a3bda51519ed7e6f2597ecf59eb3368df0e775371a6d8cd18457f',
                 'identity/templates_en.jsonl': '47b21396a33b77e20637ee0d72f044f2a979a628dde6d205a1a309fa383164eb',
                 'identity/templates_zh.jsonl': '762c0ef30b1c12125f1d0075a5df7f97e6d303f1b49302c7f047503953b33fef'}
SHIPPED = {'sha256': {'train.jsonl': 'ccbef243bd2056a90039968cc38ed0b1f60e7831fa4c68c4507e2561236303dd',
                     'val.jsonl': 'f9495ac05a0990d9b84b552730d7e69869f44541d051a33d22a4a9db939c7e1c',
                     'rejects.jsonl': '3a6a89106b970a4256eae807aa99d4eb14726cb9cf49c631c7bf4f2535457de6'},
          'counts': {'read': 628,
                     'kept': 565,
                     'rejected': 0,
                     'mixed_out': 63,
                     'rejects_file': 63,
                     'sampled_out': 0,
                     'train': 509,
                     'val': 56},
          'stages': [['read', 628, 628, 0, {}],
                     ['validate', 628, 628, 0, {}],
                     ['render', 628, 628, 0, {}],
                     ['length', 628, 628, 0, {}],
                     ['language', 628, 628, 0, {}],
                     ['exact_dedup', 628, 628, 0, {}],
                     ['near_dedup', 628, 628, 0, {}],
                     ['mix', 628, 565, 63, {'over_ratio': 63}]]}

# (b) generated_project: the same with --workers 1 and --workers 2 (too few rows for a pool).
GENERATED = {'sha256': {'train.jsonl': '71731bdee3f06ad9742402c003e86bed0f2706a60090fc4529ba147b42623b00',
                       'val.jsonl': '0a3c900f73e89ff0db6f4d46bb84f8cfe52dafdad9cfba88a667fa202c2e7d96',
                       'rejects.jsonl': 'e836c4ee9f95a03adbbab06e801e7b9be31d72828673b2a1b8b50d07eaf5a080'},
            'counts': {'read': 81,
                       'kept': 40,
                       'rejected': 13,
                       'mixed_out': 28,
                       'rejects_file': 41,
                       'sampled_out': 0,
                       'train': 32,
                       'val': 8},
            'stages': [['read', 81, 80, 1, {'bad_json': 1}],
                       ['validate', 80, 79, 1, {'empty_answer': 1}],
                       ['render', 79, 79, 0, {}],
                       ['length', 79, 77, 2, {'too_long': 1, 'too_short': 1}],
                       ['language', 77, 74, 3, {'wrong_language': 3}],
                       ['exact_dedup', 74, 70, 4, {'exact_duplicate': 4}],
                       ['near_dedup', 70, 68, 2, {'near_duplicate': 2}],
                       ['mix', 68, 40, 28, {'over_ratio': 28}]]}

# (b) plus with_a_large_source: --workers 2 reads it in two worker processes.
GENERATED_LARGE = {'sha256': {'train.jsonl': '14b7fff581f4d79a54f24a1d2353279f4d5277cf514980b3967b6bcc399b1345',
                             'val.jsonl': '5847a2d6c9e3275c7eeec1417d875e45bfc32bfeb0069ec90d870f68d3b183aa',
                             'rejects.jsonl': 'e9c4402b31b5602d4917aaa5c1f837cc6bc911d0b528f194ecbe11ba0be39b42'},
                  'counts': {'read': 20081,
                             'kept': 40,
                             'rejected': 37,
                             'mixed_out': 20004,
                             'rejects_file': 20041,
                             'sampled_out': 0,
                             'train': 32,
                             'val': 8},
                  'stages': [['read', 20081, 20080, 1, {'bad_json': 1}],
                             ['validate', 20080, 20079, 1, {'empty_answer': 1}],
                             ['render', 20079, 20079, 0, {}],
                             ['length', 20079, 20077, 2, {'too_long': 1, 'too_short': 1}],
                             ['language', 20077, 20074, 3, {'wrong_language': 3}],
                             ['exact_dedup', 20074, 20070, 4, {'exact_duplicate': 4}],
                             ['near_dedup', 20070, 20044, 26, {'near_duplicate': 26}],
                             ['mix', 20044, 40, 20004, {'over_ratio': 20004}]]}


def inputs_of(version: Path) -> dict[str, str]:
    manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    return dict(sorted((label, sha) for source in manifest["sources"] for label, sha in source["files"].items()))


def test_shipped_recipe_bytes_are_pinned(tmp_path):
    version = curate_build(ROOT / "recipes" / "identity.yaml", tmp_path / "out")
    # the inputs first, so that a change of the shipped data is not taken for a change of the code
    assert_pinned(inputs_of(version), SHIPPED_INPUTS, "SHIPPED_INPUTS (the shipped data under recipes/; then SHIPPED too)")
    assert_pinned(fingerprint(version), SHIPPED, "SHIPPED")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_generated_recipe_bytes_are_pinned(tmp_path, workers):
    recipe = generated_project(tmp_path / "project")
    assert_pinned(fingerprint(curate_build(recipe, tmp_path / "out", "--workers", workers)), GENERATED, "GENERATED")


def test_generated_recipe_bytes_are_the_same_in_a_worker_pool(tmp_path):
    recipe = with_a_large_source(generated_project(tmp_path / "project"))
    one = fingerprint(curate_build(recipe, tmp_path / "one", "--workers", "1"))
    version, log = run_build(recipe, tmp_path / "two", "--workers", "2")
    assert "2 worker processes" in log, "the build did not start a worker pool: make with_a_large_source bigger"
    two = fingerprint(version)
    assert one == two, "--workers 1 and --workers 2 wrote different bundles"
    assert_pinned(two, GENERATED_LARGE, "GENERATED_LARGE")
