"""`collect_stats` and `curate stats`: figures agree with the manifest, warnings fire, errors are one line."""
from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from _bundle_factory import default_records, record, write_bundle
from curate.stats import collect_stats, percentiles
from curate.stats_cli import stats_command
from schemas.manifest import Reject


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    write_bundle(tmp_path / "out" / "v0001")
    return tmp_path / "out" / "v0001"


def codes(stats: dict) -> set[str]:
    return {w["code"] for w in stats["warnings"]}


def test_figures_equal_the_manifest(bundle: Path) -> None:
    from schemas.bundle import load_manifest

    manifest = load_manifest(bundle)
    stats = collect_stats(bundle)
    assert stats["counts"] == manifest.counts
    assert stats["records"]["by_split"] == {"train": manifest.counts["train"], "val": manifest.counts["val"]}
    assert stats["records"]["total"] == manifest.counts["kept"]
    assert stats["ratio"]["achieved_general_per_domain"] == manifest.ratio.achieved_general_per_domain
    assert stats["ratio"]["requested"] == manifest.ratio.requested
    assert (stats["ratio"]["domain"], stats["ratio"]["general"]) == (manifest.ratio.domain, manifest.ratio.general)
    assert stats["rejects"]["total"] == manifest.counts["rejected"] == stats["rejects"]["lines"]
    for stage in manifest.stages:
        assert stats["rejects"]["by_stage"][stage.name]["reasons"] == stage.reasons
        assert stats["rejects"]["by_stage"][stage.name]["rejected"] == stage.rejected
    assert stats["duplicates"]["exact"] == 1 and stats["duplicates"]["near"] == 5
    assert stats["duplicates"]["largest_clusters"][0] == {"kept": "domain.jsonl:2", "removed": 4}
    assert [s["kept"] for s in stats["sources"]] == [s.kept for s in sorted(manifest.sources, key=lambda s: s.path)]
    ident = stats["identity"]
    assert ident["rendered"] == manifest.identity["rendered"] == ident["records"] == 60
    assert ident["by_language"] == {"en": 30, "zh": 30}
    assert ident["carrying"] == {"author.en": 30, "author.zh": 30, "name.en": 30, "name.zh": 30}
    assert ident["name"] == {"en": "Zhi", "zh": "小智"}


def test_output_root_reads_the_newest_version_and_output_is_deterministic(tmp_path: Path) -> None:
    write_bundle(tmp_path / "out" / "v0001", default_records()[:100])
    write_bundle(tmp_path / "out" / "v0002")
    stats = collect_stats(tmp_path / "out")
    assert stats["bundle"]["version"] == "v0002"
    assert stats["counts"]["kept"] == len(default_records())
    again = collect_stats(tmp_path / "out" / "v0002")
    assert json.dumps(stats, sort_keys=True) == json.dumps(again, sort_keys=True)
    assert list(stats) == sorted(stats)


def test_length_percentiles_and_turns(bundle: Path) -> None:
    stats = collect_stats(bundle)
    texts = []
    for split in ("train", "val"):
        for line in (bundle / f"{split}.jsonl").read_text(encoding="utf-8").splitlines():
            texts.append("\n".join(m["content"] for m in json.loads(line)["messages"]))
    lengths = sorted(len(t) for t in texts)
    assert stats["lengths"]["chars"]["all"]["p0"] == lengths[0]
    assert stats["lengths"]["chars"]["all"]["max"] == lengths[-1]
    assert stats["lengths"]["chars"]["all"] == percentiles(lengths)
    assert sum(n for _, n in stats["turns"]["distribution"]) == len(texts)
    assert stats["turns"]["max"] == 3
    hist = stats["lengths"]["chars"]["histogram"]
    assert sum(sum(v) for per in hist["by_kind_split"].values() for v in per.values()) == len(texts)


def test_percentiles_nearest_rank() -> None:
    assert percentiles([]) is None
    assert percentiles([5]) == {"p0": 5, "p50": 5, "p90": 5, "p99": 5, "max": 5}
    assert percentiles(range(1, 101)) == {"p0": 1, "p50": 50, "p90": 90, "p99": 99, "max": 100}


def test_warnings(tmp_path: Path) -> None:
    recs = [record(f"identity:{i}", f"Who? {i}", f"I am Zhi ({i}).", kind="identity", lang="en") for i in range(1, 5)]
    recs += [record(f"g.jsonl:{i}", f"Question {i}", "Same answer.", lang="en") for i in range(1, 7)]
    write_bundle(tmp_path / "v0001", recs, rejects=[], val_every=2)  # 4 domain : 6 general = 1:1.5
    stats = collect_stats(tmp_path / "v0001")
    assert codes(stats) == {"ratio_out_of_band", "few_identity", "language_missing", "repeated_answer"}
    assert "no 'zh' records at all" in {w["message"] for w in stats["warnings"]}
    assert stats["repeated_answers"][0] == {"answer": "Same answer.", "questions": 6, "records": 6}


def test_val_without_identity_and_identity_language_missing(tmp_path: Path) -> None:
    recs = [record(f"identity:{i}", f"Who? {i}", f"I am Zhi ({i}).", kind="identity", lang="en") for i in range(1, 4)]
    recs += [record(f"g.jsonl:{i}", f"Question {i}", f"Answer {i}", lang="zh") for i in range(1, 8)]
    write_bundle(tmp_path / "v0001", recs, rejects=[], val_every=10)  # only the last general record is val
    stats = collect_stats(tmp_path / "v0001")
    assert stats["records"]["by_split"] == {"train": 9, "val": 1}
    assert {"val_without_identity", "identity_language_missing"} <= codes(stats)
    assert "ratio_out_of_band" not in codes(stats)


def test_clean_bundle_has_only_the_intended_warning(bundle: Path) -> None:
    assert codes(collect_stats(bundle)) == {"repeated_answer"}


def test_identity_empty_and_repeated_answers(tmp_path: Path) -> None:
    recs = [record(f"identity:{i}", f"Who are you {i}?", "I am Zhi.", kind="identity") for i in range(1, 4)]
    recs.append(record("identity:9", "Name?", "Zhi by Galaxy Lab", kind="identity"))
    multi = record("identity:10", "Hi", "ok", kind="identity", turns=2)
    multi.messages[1].content = "  "
    recs.append(multi)
    write_bundle(tmp_path / "v0001", recs, rejects=[])
    ident = collect_stats(tmp_path / "v0001")["identity"]
    assert ident["empty_answers"] == 1
    assert ident["repeated_answers"] == {"distinct": 1, "records": 3, "top": [{"answer": "I am Zhi.", "records": 3}]}
    assert ident["carrying"]["name.en"] == 4 and ident["carrying"]["author.en"] == 1


def test_manifest_mismatch_is_a_warning(bundle: Path) -> None:
    lines = (bundle / "train.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (bundle / "train.jsonl").write_text("".join(lines[:-1]), encoding="utf-8")
    assert "manifest_mismatch" in codes(collect_stats(bundle))


def test_source_file_uses_load_file(tmp_path: Path) -> None:
    source = tmp_path / "data.jsonl"
    source.write_text('{"instruction": "hi", "output": "hello"}\n{"query": "q", "response": "r"}\nnot json\n',
                      encoding="utf-8")
    stats = collect_stats(source)
    assert stats["source"] == "file" and stats["bundle"] is None
    assert stats["counts"] == {"kept": 2, "read": 3, "rejected": 1}
    assert stats["records"]["by_split"] == {"source": 2}
    assert stats["rejects"]["by_reason"] == {"bad_json": 1}


def test_source_file_with_a_stand_in_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import curate.sources

    source = tmp_path / "anything.parquet"
    source.write_bytes(b"")

    def fake_load(path: Path):
        recs = [record(f"{path.name}:{i}", f"q{i}", "same", lang="zh") for i in range(1, 6)]
        return recs, [Reject(source=path.name, line=9, stage="validate", reason="no_answer", message="m")]

    monkeypatch.setattr(curate.sources, "load_file", fake_load)
    stats = collect_stats(source)
    assert stats["records"]["by_language"] == {"zh": 5}
    assert stats["rejects"]["by_stage"]["validate"]["reasons"] == {"no_answer": 1}
    assert [w["code"] for w in stats["warnings"]] == ["repeated_answer"]


def test_tokenizer_lengths_with_a_stand_in_transformers(bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Tok:
        def __call__(self, texts, add_special_tokens=False):
            return {"input_ids": [t.split() for t in texts]}

    fake = types.ModuleType("transformers")
    fake.AutoTokenizer = types.SimpleNamespace(from_pretrained=lambda path: Tok())
    monkeypatch.setitem(sys.modules, "transformers", fake)
    stats = collect_stats(bundle, tokenizer="/models/tok")
    tokens = stats["lengths"]["tokens"]
    assert stats["lengths"]["tokenizer"] == "/models/tok"
    assert tokens["all"]["p0"] >= 1 and tokens["all"]["max"] < stats["lengths"]["chars"]["all"]["max"]
    assert sum(sum(v) for per in tokens["histogram"]["by_kind_split"].values() for v in per.values()) == 426


def _cli() -> click.Group:
    group = click.Group("curate")
    group.add_command(stats_command, "stats")
    return group


def test_cli_json_equals_collect_stats(bundle: Path) -> None:
    result = CliRunner().invoke(_cli(), ["stats", str(bundle), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == collect_stats(bundle)


def test_cli_tables(bundle: Path) -> None:
    result = CliRunner().invoke(_cli(), ["stats", str(bundle.parent)])
    assert result.exit_code == 0, result.output
    for text in ("Counts", "Rejects by stage", "Identity coverage", "near_duplicate 5", "repeated_answer"):
        assert text in result.output


@pytest.mark.parametrize("make", ["missing", "empty_dir", "bad_manifest", "no_transformers"])
def test_cli_errors_are_one_clean_line(tmp_path: Path, make: str, monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["stats", str(tmp_path / "nope")]
    if make == "empty_dir":
        args = ["stats", str(tmp_path)]
    elif make == "bad_manifest":
        (tmp_path / "manifest.json").write_text("{", encoding="utf-8")
        args = ["stats", str(tmp_path)]
    elif make == "no_transformers":
        write_bundle(tmp_path / "v0001")
        monkeypatch.setitem(sys.modules, "transformers", None)
        args = ["stats", str(tmp_path), "--tokenizer", "/x"]
    result = CliRunner().invoke(_cli(), args)
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    assert "Traceback" not in result.output


def test_answers_with_many_questions_counts_distinct_questions() -> None:
    import numpy as np

    from curate.stats_arrays import answers_with_many_questions

    answers = np.array([7, 7, 7, 7, 7, 9, 9, 9, 9, 9, 9, 3], dtype=np.uint64)
    questions = np.array([1, 2, 3, 4, 5, 1, 1, 2, 2, 3, 4, 1], dtype=np.uint64)
    # 7: five distinct questions in five records; 9: four distinct in six; 3: one
    assert answers_with_many_questions(answers, questions, 5) == [(7, 5, 5)]
    assert answers_with_many_questions(answers, questions, 4) == [(7, 5, 5), (9, 4, 6)]
    assert answers_with_many_questions(answers[:0], questions[:0], 5) == []


def test_the_builds_summary_of_a_record_equals_the_one_read_from_its_line():
    """The build summarises Record objects in its workers; `curate stats` summarises the bundle's
    lines: tool calls, system prompts and several turns count the same in both."""
    from curate.stats_pass import summarise, summarise_record
    from schemas.record import Record

    call = {"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    conversations = [
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": " Hello! "}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather?"},
         {"role": "assistant", "content": "", "tool_calls": [call, call]},
         {"role": "tool", "content": "sunny"}, {"role": "assistant", "content": "Sunny."}],
        [{"role": "user", "content": "a"}, {"role": "assistant", "content": "Let me check.", "tool_calls": [call]},
         {"role": "tool", "content": "{}"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"},
         {"role": "assistant", "content": "d"}],
    ]
    for number, messages in enumerate(conversations, start=1):
        record = Record.model_validate({"messages": messages, "meta": {
            "id": f"s.jsonl:{number}", "source": "s.jsonl", "line": number, "kind": "domain", "lang": "en"}})
        assert summarise_record(record) == summarise(record.to_json_dict())


def test_reject_examples_are_capped_per_reason_and_per_source():
    from curate.rejects_pass import MAX_REASONS, MAX_SOURCES, PER_REASON, PER_SOURCE, tally_rejects

    rejects = [{"stage": "language", "reason": f"reason_{r}", "source": f"shard_{r}.jsonl", "message": "m",
                "raw": "x"} for r in range(MAX_REASONS + 10) for _ in range(PER_REASON + 2)]
    tally = tally_rejects(rejects)
    assert len(tally.by_reason) == MAX_REASONS and len(tally.by_source) == MAX_SOURCES
    assert sorted(tally.by_reason) == sorted(f"reason_{r}" for r in range(MAX_REASONS))  # the first ones seen
    assert all(len(found) == PER_REASON for found in tally.by_reason.values())
    assert all(len(found) == PER_SOURCE for found in tally.by_source.values())
    assert sum(tally.file_counts["language"].values()) == len(rejects)  # counted, shown or not
