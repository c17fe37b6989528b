"""Reading every format and shape people have, and naming what is wrong with a bad record."""
import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from curate.cli import main
from curate.shapes import rows_to_records
from curate.sources import read_file, read_source
from schemas.shapes import detect_shape

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _records(path: Path, **kwargs):
    _, rows = read_file(path, path.name)
    return rows_to_records(rows, kind="general", **kwargs)


def test_every_format_reads_the_same_records(tmp_path):
    rows = [{"instruction": "Name a colour.", "input": "", "output": "Blue."},
            {"instruction": "Add 2 and 3.", "input": "", "output": "5"}]
    (tmp_path / "a.json").write_text(json.dumps(rows), encoding="utf-8")
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    pl.DataFrame(rows).write_csv(tmp_path / "a.csv")
    pl.DataFrame(rows).write_parquet(tmp_path / "a.parquet")
    results = {}
    for suffix in ("json", "jsonl", "csv", "parquet"):
        records, rejects = _records(tmp_path / f"a.{suffix}")
        assert not rejects, rejects
        results[suffix] = [r.messages for r in records]
    assert len({json.dumps([[m.model_dump() for m in ms] for ms in v]) for v in results.values()}) == 1


def test_bom_crlf_bad_utf8_and_bad_json_lines(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"query": "q1", "response": "a1"}\r\n'
                     b'{"query": "q2", "response": "\xff\xfe"}\r\n'
                     b'{"query": "q3", "response": \r\n'
                     b'\r\n'
                     b'[1, 2]\r\n'
                     b'{"query": "q6", "response": NaN}\r\n'
                     b'{"query": "q7", "response": "a7"}\r\n')
    records, rejects = _records(path)
    assert [r.messages[0].content for r in records] == ["q1", "q7"]
    assert [(r.line, r.reason) for r in rejects] == [(2, "bad_utf8"), (3, "bad_json"), (5, "not_an_object"),
                                                      (6, "bad_json")]


@pytest.mark.parametrize("row,reason,field", [
    ({"instruction": "x"}, "missing_field", "output"),
    ({"instruction": 3, "output": "y"}, "wrong_type", "instruction"),
    ({"instruction": "x", "output": ""}, "empty_answer", ""),
    ({"messages": [{"role": "user", "content": "hi"}]}, "ends_not_on_assistant", ""),
    ({"messages": [{"role": "assistant", "content": "hi"}, {"role": "user", "content": "x"}]}, "role_order", ""),
    ({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"},
                   {"role": "assistant", "content": "c"}]}, "role_order", ""),
    ({"conversations": [{"from": "alien", "value": "x"}]}, "invalid", ""),
    ({"text": "just text"}, "unknown_shape", ""),
])
def test_bad_records_get_a_reason_and_field(tmp_path, row, reason, field):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    records, rejects = _records(path)
    assert not records
    assert rejects[0].reason == reason
    assert field in rejects[0].message
    assert rejects[0].raw == row


def test_sharegpt_with_tools_and_function_calls_is_not_read_as_alpaca():
    path = SHARED / "glaive_toolcall_en_demo.json"
    if not path.exists():
        pytest.skip("shared data not present")
    records, rejects = _records(path)
    assert len(records) == 300 and not rejects
    with_tools = [r for r in records if r.tools]
    assert with_tools and json.loads(with_tools[0].tools)
    roles = {m.role for r in records for m in r.messages}
    assert roles == {"user", "assistant", "tool"}


def test_messages_with_content_parts():
    path = SHARED / "v1_sft_demo_messages.jsonl"
    if not path.exists():
        pytest.skip("shared data not present")
    records, rejects = _records(path)
    assert len(records) == 450
    assert {r.reason for r in rejects} == {"unrendered_placeholder"}
    assert all(isinstance(m.content, str) for r in records for m in r.messages)


def test_file_with_mixed_keys_loads(tmp_path):
    path = tmp_path / "mixed.jsonl"
    rows = [{"instruction": "a", "output": "b"}, {"query": "c", "response": "d", "tag": "en"},
            {"messages": [{"role": "user", "content": "e"}, {"role": "assistant", "content": "f"}]},
            {"conversations": [{"from": "human", "value": "g"}, {"from": "gpt", "value": "h"}], "instruction": "x"}]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    records, rejects = _records(path)
    assert not rejects
    assert [r.messages[-1].content for r in records] == ["b", "d", "f", "h"]
    assert detect_shape(rows[3]) == "sharegpt"


def test_declared_shape_with_column_mapping(tmp_path):
    path = tmp_path / "prompts.csv"
    pl.DataFrame({"act": ["Chef"], "prompt": ["Give me a recipe."], "answer": ["Boil pasta."]}).write_csv(path)
    records, rejects = _records(path, shape="alpaca", columns={"instruction": "prompt", "output": "answer"})
    assert not rejects and records[0].messages[0].content == "Give me a recipe."


def test_sampling_is_seeded_and_without_replacement(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps({"query": f"q{i}", "response": f"a{i}"}) + "\n" for i in range(100)))
    picks = []
    for _ in range(2):
        info, rows = read_source("s.jsonl", 10, tmp_path, seed=3)
        picks.append([r.line for r in rows])
    assert picks[0] == picks[1] and len(set(picks[0])) == 10
    _, other = read_source("s.jsonl", 10, tmp_path, seed=4)
    assert [r.line for r in other] != picks[0]


def test_glob_sources(tmp_path):
    for name in ("a", "b"):
        (tmp_path / f"{name}.jsonl").write_text(json.dumps({"query": name, "response": name}) + "\n")
    info, rows = read_source("*.jsonl", None, tmp_path, seed=1)
    assert sorted(info.files) == ["a.jsonl", "b.jsonl"] and len(list(rows)) == 2


def test_validate_cli_reports_each_bad_record_and_exits_non_zero(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"query": "q", "response": "a"}) + "\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"query": "q", "response": "a"}) + "\n" + json.dumps({"query": "q"}) + "\n{oops\n")
    runner = CliRunner()
    ok = runner.invoke(main, ["validate", str(good)])
    assert ok.exit_code == 0
    result = runner.invoke(main, ["validate", str(good), str(bad)])
    assert result.exit_code == 1
    lines = result.stdout.strip().splitlines()
    assert lines[0].endswith("bad.jsonl:2: missing_field: query_response: field 'response': Field required")
    assert "bad.jsonl:3: bad_json" in lines[1]
    assert "4 records: 2 valid, 2 invalid" in result.stderr
