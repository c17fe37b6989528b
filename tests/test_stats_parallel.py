"""The two-process stats pass of a big bundle gives exactly the figures of the one-process pass."""
import json

import curate.stats as stats
import curate.stats_pass as stats_pass
from curate.pipeline import build
from curate.report import write_report
from schemas.recipe import load_recipe
from tests.curate_helpers import make_project, write_jsonl


def test_parallel_stats_pass_equals_serial(tmp_path, monkeypatch):
    recipe = make_project(tmp_path, general_per_lang=200)
    base = "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen in green plants."
    write_jsonl(tmp_path / "general" / "near.jsonl", [
        {"instruction": "Explain photosynthesis.", "output": base},
        {"instruction": "Explain photosynthesis!", "output": base.replace("green", "most green")}])
    text = recipe.read_text(encoding="utf-8")
    recipe.write_text(text.replace("sources:\n", "sources:\n- path: general/near.jsonl\n  kind: general\n", 1))
    version = build(load_recipe(recipe)).version_dir
    monkeypatch.setattr(stats_pass, "PARALLEL_BYTES", 1 << 40)
    serial = stats.collect_stats(version)
    write_report(version, tmp_path / "serial.html")
    monkeypatch.setattr(stats_pass, "PARALLEL_BYTES", 1)
    parallel = stats.collect_stats(version)
    write_report(version, tmp_path / "parallel.html")
    assert json.dumps(serial, sort_keys=True) == json.dumps(parallel, sort_keys=True)
    assert serial["duplicates"]["near"] == 1
    assert (tmp_path / "serial.html").read_bytes() == (tmp_path / "parallel.html").read_bytes()


def test_build_report_equals_report_from_reading_the_bundle(tmp_path):
    """The build feeds the report from its workers' summaries; reading the bundle gives the same page."""
    recipe = make_project(tmp_path, general_per_lang=60)
    base = "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen in green plants."
    write_jsonl(tmp_path / "general" / "near.jsonl", [
        {"instruction": "Explain photosynthesis.", "output": base},
        {"instruction": "Explain photosynthesis!", "output": base.replace("green", "most green")},
        {"instruction": "Explain it.", "output": base + " Truly."}])
    text = recipe.read_text(encoding="utf-8")
    recipe.write_text(text.replace("sources:\n", "sources:\n- path: general/near.jsonl\n  kind: general\n", 1))
    version = build(load_recipe(recipe)).version_dir
    write_report(version, tmp_path / "again.html")
    built = (version / "report.html").read_text(encoding="utf-8")
    again = (tmp_path / "again.html").read_text(encoding="utf-8")
    # the build writes its report before the version has its name; all else is the same
    assert built == again.replace(" · v0001</h1>", "</h1>")
    assert "Photosynthesis" in built  # the near-duplicate cluster with its kept record is shown


def test_build_report_does_not_read_the_rejects_back(tmp_path, monkeypatch):
    """The build tallies the rejects' figures and examples as it writes them (curate.rejects_pass):
    its report reads neither rejects.jsonl nor the bundle, and equals the report made by reading them."""
    import curate.stats_inputs as stats_inputs

    recipe = make_project(tmp_path, general_per_lang=60)
    base = "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen in green plants."
    write_jsonl(tmp_path / "general" / "near.jsonl", [
        {"instruction": "Explain photosynthesis.", "output": base},
        {"instruction": "Explain photosynthesis!", "output": base.replace("green", "most green")},
        {"instruction": "Explain photosynthesis?", "output": base.replace("green", "many green")},
        {"instruction": "Explain photosynthesis.", "output": base}, {"bad": 1}])
    text = recipe.read_text(encoding="utf-8")
    recipe.write_text(text.replace("sources:\n", "sources:\n- path: general/near.jsonl\n  kind: general\n", 1))

    def no_reading(self):
        raise AssertionError("the build's report read a bundle file back")

    with monkeypatch.context() as patch:
        patch.setattr(stats_inputs.Inputs, "rejects", no_reading)
        patch.setattr(stats_inputs.Inputs, "records", no_reading)
        version = build(load_recipe(recipe)).version_dir
    write_report(version, tmp_path / "again.html")
    built = (version / "report.html").read_text(encoding="utf-8")
    again = (tmp_path / "again.html").read_text(encoding="utf-8")
    assert built == again.replace(" · v0001</h1>", "</h1>")
    assert built.count("Explain photosynthesis") >= 3  # the cluster: kept record and removed members
