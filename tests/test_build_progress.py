"""A build reports every stage as it goes: lines off a terminal, bars on one; output unchanged."""
from curate import pipeline, progress
from curate.pipeline import build
from schemas.recipe import load_recipe
from tests.curate_helpers import make_project

FILES = ("train.jsonl", "val.jsonl", "rejects.jsonl", "manifest.json")


def test_the_build_is_the_listed_stages_in_order():
    names = [name for name, _ in pipeline.STAGES]
    assert names == ["read identity", "open sources", "prepare", "order", "exact dedup", "near dedup", "mix",
                     "split", "write", "manifest"]


def test_off_a_terminal_each_stage_logs_its_records_and_rate(tmp_path, monkeypatch):
    monkeypatch.setattr(progress, "EVERY_S", 0.0)  # a line at every update, not every few seconds
    lines: list[str] = []
    result = build(load_recipe(make_project(tmp_path)), log=lines.append)
    read = result.manifest.counts["read"]
    assert f"prepare: {read} records in" in "\n".join(lines)
    assert any(line.startswith("prepare: ") and f"/{read} records, " in line and "/s" in line for line in lines)
    for stage in ("exact dedup", "near dedup", "write"):
        assert any(line.startswith(f"{stage}: ") for line in lines), stage
    written = sum(1 for line in lines if line.startswith("write: ") and " records in " in line)
    assert written == 1


def test_live_bars_change_nothing_in_the_bundle(tmp_path):
    recipe = make_project(tmp_path)
    plain = build(load_recipe(recipe), output_root=tmp_path / "a", progress=False).version_dir
    live = build(load_recipe(recipe), output_root=tmp_path / "b", progress=True).version_dir
    for name in FILES:
        assert (plain / name).read_bytes() == (live / name).read_bytes()
