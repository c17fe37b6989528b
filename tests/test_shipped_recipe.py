"""The shipped default recipe builds offline out of the box, inside the ratio band."""
import json
from pathlib import Path

from curate.pipeline import build
from schemas.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_data_meets_the_minimums():
    identity = sum(1 for f in (ROOT / "recipes" / "identity").glob("*.jsonl") for _ in f.open(encoding="utf-8"))
    general = sum(1 for f in (ROOT / "recipes" / "general").glob("*.jsonl") for _ in f.open(encoding="utf-8"))
    assert identity >= 60 and general >= 300


def test_shipped_recipe_builds(tmp_path):
    result = build(load_recipe(ROOT / "recipes" / "identity.yaml"), tmp_path)
    manifest = result.manifest
    assert 2 <= manifest.ratio.achieved_general_per_domain <= 10
    assert manifest.counts["rejected"] == 0, "the shipped data should pass every filter"
    records = [json.loads(line) for name in ("train.jsonl", "val.jsonl")
               for line in (result.version_dir / name).read_text(encoding="utf-8").splitlines()]
    langs = {(r["meta"]["kind"], r["meta"]["lang"]) for r in records}
    assert {("identity", "zh"), ("identity", "en"), ("general", "zh"), ("general", "en")} <= langs
    assert not any("{{" in m["content"] for r in records for m in r["messages"] if r["meta"]["kind"] == "identity")
