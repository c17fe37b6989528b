"""End-to-end curation: accounting, determinism, dedup priority, placeholders, atomic versions."""
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from curate.pipeline import BuildError, build
from schemas.bundle import resolve_bundle, verify_bundle
from schemas.recipe import RecipeError, load_recipe
from tests.curate_helpers import make_project, read_jsonl, write_jsonl

ROOT = Path(__file__).resolve().parents[1]


def _build(recipe_path, **kwargs):
    return build(load_recipe(recipe_path), **kwargs)


def test_build_writes_a_complete_version(tmp_path):
    result = _build(make_project(tmp_path))
    version = result.version_dir
    assert version.name == "v0001"
    for name in ("train.jsonl", "val.jsonl", "rejects.jsonl", "manifest.json"):
        assert (version / name).is_file()
    manifest = verify_bundle(version)
    train, val = read_jsonl(version / "train.jsonl"), read_jsonl(version / "val.jsonl")
    assert manifest.files["train.jsonl"].records == len(train)
    assert manifest.files["val.jsonl"].records == len(val)
    # identity: 8 templates rendered, names filled in per language, no placeholder left
    identity = [r for r in train + val if r["meta"]["kind"] == "identity"]
    assert len(identity) == 8
    text = json.dumps(identity, ensure_ascii=False)
    assert "{{" not in text and "小格" in text and "Grace" in text and "唐寅" in text and "Tang Yin" in text
    zh = [r for r in identity if r["meta"]["lang"] == "zh"]
    assert all("Grace" not in json.dumps(r, ensure_ascii=False) for r in zh)
    # the val split holds identity questions too
    assert any(r["meta"]["kind"] == "identity" for r in val)
    # records in the messages format ms-swift / LLaMA-Factory / TRL read
    assert all(set(r) >= {"messages"} and r["messages"][-1]["role"] == "assistant" for r in train)


def test_counts_reconcile_per_source_and_stage(tmp_path):
    recipe = make_project(tmp_path, general_per_lang=30)
    # add bad rows to the zh source
    bad = tmp_path / "general" / "zh.jsonl"
    bad.write_text(bad.read_text(encoding="utf-8") + '{"instruction": "缺少答案"}\n{not json\n'
                   '{"instruction": "空", "output": ""}\n', encoding="utf-8")
    manifest = _build(recipe).manifest
    for source in manifest.sources:
        assert source.rows - source.sampled_out == source.kept + source.rejected + source.mixed_out, source
    counts = manifest.counts
    assert counts["read"] == counts["kept"] + counts["rejected"] + counts["mixed_out"]
    assert counts["kept"] == counts["train"] + counts["val"]
    flow = manifest.stages
    assert flow[0].records_in == counts["read"]
    for before, after in zip(flow, flow[1:]):
        assert after.records_in == before.records_out
        assert before.records_in - before.rejected == before.records_out
    assert flow[-1].records_out == counts["kept"]
    reasons = {reason for stage in flow for reason in stage.reasons}
    assert {"bad_json", "missing_field", "empty_answer"} <= reasons
    low, high = manifest.ratio.band
    assert low <= manifest.ratio.achieved_general_per_domain <= high


def test_every_input_record_is_in_the_bundle_or_rejects(tmp_path):
    recipe = make_project(tmp_path, general_per_lang=30)
    version = _build(recipe).version_dir
    ids = Counter(r["meta"]["id"] for name in ("train.jsonl", "val.jsonl") for r in read_jsonl(version / name))
    rejects = read_jsonl(version / "rejects.jsonl")
    ids.update(r["id"] for r in rejects)
    assert all(n == 1 for n in ids.values())
    from schemas.manifest import Reject
    from schemas.record import Record

    for reject in rejects:  # every line is a Reject, and a kept-then-dropped record's raw is a Record
        Reject.model_validate(reject)
        if reject["stage"] in ("exact_dedup", "near_dedup", "mix"):
            Record.model_validate(reject["raw"])
    assert len(ids) == 8 + 60


def test_two_builds_give_two_versions_with_identical_content(tmp_path):
    recipe = make_project(tmp_path)
    first = _build(recipe)
    second = _build(recipe)
    assert (first.version_dir.name, second.version_dir.name) == ("v0001", "v0002")
    for name in ("train.jsonl", "val.jsonl", "rejects.jsonl", "manifest.json"):
        assert (first.version_dir / name).read_bytes() == (second.version_dir / name).read_bytes()
    assert resolve_bundle(tmp_path / "bundle") == second.version_dir


def test_build_is_byte_identical_across_processes_and_hash_seeds(tmp_path):
    recipe = make_project(tmp_path)
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / f"out{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-m", "curate.cli", "build", str(recipe), "--output", str(out)],
                       check=True, cwd=ROOT, env=env, capture_output=True)
        outputs.append(out / "v0001")
    for name in ("train.jsonl", "val.jsonl", "rejects.jsonl", "manifest.json"):
        assert (outputs[0] / name).read_bytes() == (outputs[1] / name).read_bytes()


def test_dedup_keeps_identity_over_general_and_names_the_twin(tmp_path):
    recipe = make_project(tmp_path)
    # a general record equal to a rendered identity record, modulo case and punctuation
    write_jsonl(tmp_path / "general" / "dup.jsonl", [
        {"query": "who are you", "response": "I am Grace an assistant developed by Tang Yin"},
        {"query": "Who are you?", "response": "I am Grace, an assistant developed by Tang Yin!!"},
    ])
    text = recipe.read_text(encoding="utf-8")
    recipe.write_text(text.replace("sources:\n", "sources:\n- path: general/dup.jsonl\n  kind: general\n", 1),
                      encoding="utf-8")
    version = _build(recipe).version_dir
    rejects = [r for r in read_jsonl(version / "rejects.jsonl") if r["stage"] == "exact_dedup"]
    assert len(rejects) == 2
    assert {r["duplicate_of"] for r in rejects} == {"identity/en.jsonl:1"}


def test_near_duplicates_removed_with_twin_named(tmp_path):
    recipe = make_project(tmp_path)
    base = ("Photosynthesis turns light, water and carbon dioxide into sugar and oxygen inside the "
            "chloroplasts of green plants, and it feeds nearly every food chain on the planet.")
    write_jsonl(tmp_path / "general" / "near.jsonl", [
        {"instruction": "Explain photosynthesis briefly.", "output": base},
        {"instruction": "Explain photosynthesis briefly!", "output": base.replace("nearly", "almost")},
    ])
    text = recipe.read_text(encoding="utf-8")
    recipe.write_text(text.replace("sources:\n", "sources:\n- path: general/near.jsonl\n  kind: general\n", 1),
                      encoding="utf-8")
    version = _build(recipe).version_dir
    near = [r for r in read_jsonl(version / "rejects.jsonl") if r["stage"] == "near_dedup"]
    assert [(r["id"], r["duplicate_of"]) for r in near] == [("general/near.jsonl:2", "general/near.jsonl:1")]


def test_identity_placeholder_styles_are_all_rendered(tmp_path):
    recipe = make_project(tmp_path)
    write_jsonl(tmp_path / "identity" / "styles.jsonl", [
        {"query": "你好", "response": "我是{{NAME}}，由{{AUTHOR}}训练。", "tag": "zh"},
        {"instruction": "hi there", "input": "", "output": "Hello, I am {{name}} by {{author}}."},
        {"instruction": "介绍一下你自己", "input": "", "output": "我是 <NAME>，一个由 <AUTHOR> 开发的助手。"},
    ])
    text = recipe.read_text(encoding="utf-8")
    recipe.write_text(text.replace("  - identity/en.jsonl\n", "  - identity/en.jsonl\n  - identity/styles.jsonl\n"),
                      encoding="utf-8")
    version = _build(recipe).version_dir
    rendered = {r["meta"]["id"]: r["messages"][-1]["content"]
                for name in ("train.jsonl", "val.jsonl") for r in read_jsonl(version / name)
                if r["meta"]["source"] == "identity/styles.jsonl"}
    assert rendered == {
        "identity/styles.jsonl:1": "我是小格，由唐寅训练。",
        "identity/styles.jsonl:2": "Hello, I am Grace by Tang Yin.",
        "identity/styles.jsonl:3": "我是小格，一个由唐寅开发的助手。",
    }


def test_unrendered_placeholder_in_general_data_is_rejected(tmp_path):
    recipe = make_project(tmp_path)
    with open(tmp_path / "general" / "en.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"instruction": "Who are you?", "output": "I am <NAME>."}) + "\n")
    version = _build(recipe).version_dir
    reasons = [r["reason"] for r in read_jsonl(version / "rejects.jsonl")]
    assert "unrendered_placeholder" in reasons
    assert "<NAME>" not in (version / "train.jsonl").read_text(encoding="utf-8")


def test_template_error_names_file_and_line(tmp_path):
    recipe = make_project(tmp_path)
    write_jsonl(tmp_path / "identity" / "zh.jsonl", [{"query": "你是谁", "response": "我是{{ name }}", "tag": "zh"},
                                                     {"query": "谁", "response": "{{ nickname }}", "tag": "zh"}])
    with pytest.raises(RecipeError, match=r"identity/zh.jsonl:2: template error.*nickname"):
        _build(recipe)
    write_jsonl(tmp_path / "identity" / "zh.jsonl", [{"query": "你是谁", "response": "我是{% if %}", "tag": "zh"}])
    with pytest.raises(RecipeError, match=r"identity/zh.jsonl:1: template error \(template line 1\)"):
        _build(recipe)


def test_template_needs_reach_the_bundle_and_bad_needs_name_the_line(tmp_path):
    """A template may say what a correct answer must state; it travels in meta.needs (absent otherwise)."""
    recipe = make_project(tmp_path)
    write_jsonl(tmp_path / "identity" / "zh.jsonl", [
        {"query": "你是谁？", "response": "我是{{ name }}，由{{ author }}开发。", "tag": "zh", "needs": ["name"]},
        {"query": "你会累吗？", "response": "我是{{ name }}，不会累。", "tag": "zh", "needs": []},
        {"query": "谁创造了你？", "response": "{{ author }}创造了我。", "tag": "zh"}])
    version = _build(recipe).version_dir
    records = read_jsonl(version / "train.jsonl") + read_jsonl(version / "val.jsonl")
    needs = {r["messages"][0]["content"]: r["meta"].get("needs", "absent") for r in records
             if r["meta"]["kind"] == "identity" and r["meta"]["lang"] == "zh"}
    assert needs == {"你是谁？": ["name"], "你会累吗？": [], "谁创造了你？": "absent"}
    write_jsonl(tmp_path / "identity" / "zh.jsonl", [
        {"query": "你是谁？", "response": "我是{{ name }}。", "tag": "zh", "needs": ["nickname"]}])
    with pytest.raises(RecipeError, match=r"identity/zh.jsonl:1: field 'needs': want 'name', 'author'"):
        _build(recipe)


def test_sandbox_blocks_python_internals(tmp_path):
    recipe = make_project(tmp_path)
    for attack in ("{{ ''.__class__.__mro__ }}", "{{ name.__class__.__base__.__subclasses__() }}",
                   "{{ cycler.__init__.__globals__ }}"):
        write_jsonl(tmp_path / "identity" / "zh.jsonl", [{"query": "你是谁", "response": attack, "tag": "zh"}])
        with pytest.raises(RecipeError, match="template error"):
            _build(recipe)


def test_ratio_impossible_with_data_is_a_clear_error(tmp_path):
    recipe = make_project(tmp_path, general_per_lang=4)  # 8 identity, 8 general: 1:1
    with pytest.raises(BuildError, match=r"mix.ratio: achieved 1:1.00 .* outside 1:2..1:10"):
        _build(recipe)
    assert not any(p.name.startswith("v") for p in (tmp_path / "bundle").iterdir())
    assert not any(p.name.startswith(".building") for p in (tmp_path / "bundle").iterdir())


def test_sampling_takes_n_and_says_when_n_exceeds_the_source(tmp_path):
    recipe = make_project(tmp_path, general_per_lang=30)
    text = recipe.read_text(encoding="utf-8")
    recipe.write_text(text.replace("general/zh.jsonl", "general/zh.jsonl#20").replace("general/en.jsonl", "general/en.jsonl#99"),
                      encoding="utf-8")
    logs = []
    manifest = build(load_recipe(recipe), log=logs.append).manifest
    zh, en = manifest.sources[1], manifest.sources[2]
    assert (zh.rows, zh.sample, zh.sampled_out) == (30, 20, 10)
    assert en.sampled_out == 0 and "took all of them" in en.note
    assert any("took all of them" in line for line in logs)


def test_strict_stops_at_first_bad_record(tmp_path):
    recipe = make_project(tmp_path)
    with open(tmp_path / "general" / "en.jsonl", "a", encoding="utf-8") as handle:
        handle.write("{broken\n")
    with pytest.raises(BuildError, match=r"general/en.jsonl:21: read: invalid JSON"):
        _build(recipe, strict=True)


@pytest.mark.parametrize("tools", [False, True])
def test_parallel_build_equals_serial_build(tmp_path, monkeypatch, tools):
    """Workers write their segments in place (or, when a record uses tools and every line is
    remade, send them back): the same bytes as one process writing all."""
    import curate.stage_read as stage_read
    import curate.stage_write as stage_write

    recipe = make_project(tmp_path, general_per_lang=300)
    if tools:
        call = {"type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}
        write_jsonl(tmp_path / "general" / "tools.jsonl", [{"messages": [
            {"role": "user", "content": "Weather in Oslo?"}, {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "content": "rain"}, {"role": "assistant", "content": "It rains in Oslo."}]}])
        text = recipe.read_text(encoding="utf-8")
        recipe.write_text(text.replace("sources:\n", "sources:\n- path: general/tools.jsonl\n  kind: domain\n", 1))
    serial = _build(recipe, output_root=tmp_path / "a", workers=1).version_dir
    monkeypatch.setattr(stage_read, "PARALLEL_FROM", 10)
    monkeypatch.setattr(stage_read, "CHUNK", 64)
    monkeypatch.setattr(stage_write, "SEGMENT", 50)  # the bundle and the report's figures written in segments
    parallel = _build(recipe, output_root=tmp_path / "b", workers=2).version_dir
    for name in ("train.jsonl", "val.jsonl", "rejects.jsonl", "manifest.json", "report.html"):
        assert (serial / name).read_bytes() == (parallel / name).read_bytes()
    lines = (serial / "train.jsonl").read_text(encoding="utf-8") + (serial / "val.jsonl").read_text(encoding="utf-8")
    assert ('"tool_calls":' in lines) == tools


def test_cli_build_prints_the_version_path_last(tmp_path):
    from click.testing import CliRunner

    from curate.cli import main

    result = CliRunner().invoke(main, ["build", str(make_project(tmp_path))])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str((tmp_path / "bundle" / "v0001").resolve())


@pytest.mark.parametrize("text,error", [
    ("name: x\nsources: [{path: a.jsonl, kind: domain}]\nbogus: 1\n", "bogus: unknown key"),
    ("name: x\nsources: [{path: nothere.jsonl, kind: domain}]\n", "sources.0.path: nothere.jsonl: no such file"),
])
def test_cli_recipe_errors_are_one_line(tmp_path, text, error):
    from click.testing import CliRunner

    from curate.cli import main

    path = tmp_path / "r.yaml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["build", str(path)])
    assert result.exit_code != 0
    assert result.output.strip() == f"Error: {path}: {error}"
