"""Tool use survives curation: definitions, calls and results stay structured from the input shapes
through the bundle (which `datasets` loads with one schema) to the tokens train learns."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from curate.raw_row import RawRow
from curate.shapes import row_to_record
from schemas.manifest import Reject
from schemas.record import Record, uniform_line
from tests.conftest import make_record
from tests.curate_helpers import make_project, read_jsonl, write_jsonl

SHARED = Path("/work/shared/data")
WEATHER = {"name": "get_weather", "description": "Weather of a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def _record(row: dict) -> Record | Reject:
    return row_to_record(RawRow("t.jsonl", 3, row=row), kind="domain")


def _calls(record: Record) -> list[tuple[str, dict]]:
    return [(c.function.name, json.loads(c.function.arguments)) for m in record.messages for c in m.tool_calls or ()]


def test_sharegpt_function_call_and_observation_become_tool_calls_and_tool_turns():
    row = {"conversations": [
        {"from": "human", "value": "Weather in Paris?"},
        {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}})},
        {"from": "observation", "value": '{"temp": 21}'},
        {"from": "gpt", "value": "It is 21 degrees."}], "tools": json.dumps([WEATHER])}
    record = _record(row)
    assert isinstance(record, Record)
    assert [m.role for m in record.messages] == ["user", "assistant", "tool", "assistant"]
    call = record.messages[1]
    assert call.content == "" and _calls(record) == [("get_weather", {"city": "Paris"})]
    assert record.messages[2].content == '{"temp": 21}'
    assert record.tool_list() == [{"type": "function", "function": WEATHER}]


def test_real_glaive_files_keep_every_call_and_definition():
    for name in ("glaive_toolcall_en_demo.json", "glaive_toolcall_zh_demo.json"):
        path = SHARED / name
        if not path.exists():
            pytest.skip("shared data not present")
        rows = json.loads(path.read_text(encoding="utf-8"))
        from curate.sources import load_file

        records, rejects = load_file(path)
        assert len(records) == len(rows) and not rejects
        for row, record in zip(rows, records):
            wanted = [json.loads(t["value"]) for t in row["conversations"] if t["from"] == "function_call"]
            assert _calls(record) == [(w["name"], w["arguments"]) for w in wanted]
            results = [t["value"] for t in row["conversations"] if t["from"] == "observation"]
            assert [m.content for m in record.messages if m.role == "tool"] == results
            tools = json.loads(row["tools"]) if row["tools"].strip() else []
            assert [t["function"] for t in record.tool_list()] == tools


@pytest.mark.parametrize("arguments", [{"city": "巴黎"}, '{"city": "巴黎"}'])
def test_openai_tool_calls_with_dict_or_text_arguments(arguments):
    row = {"messages": [
        {"role": "user", "content": "巴黎天气？"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "21"},
        {"role": "assistant", "content": "21度。"}], "tools": [{"type": "function", "function": WEATHER}]}
    record = _record(row)
    assert isinstance(record, Record)
    assert _calls(record) == [("get_weather", {"city": "巴黎"})]
    assert record.tool_list() == [{"type": "function", "function": WEATHER}]


def test_ms_swift_agent_roles_merge_thought_and_parallel_calls():
    row = {"messages": [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": "Let me look."},
        {"role": "tool_call", "content": '{"name": "get_weather", "arguments": {"city": "Paris"}}'},
        {"role": "tool_call", "content": '{"name": "get_weather", "arguments": {"city": "Rome"}}'},
        {"role": "tool_response", "content": "21"}, {"role": "tool_response", "content": "25"},
        {"role": "assistant", "content": "21 and 25."}], "tools": json.dumps([WEATHER])}
    record = _record(row)
    assert isinstance(record, Record)
    assert [m.role for m in record.messages] == ["user", "assistant", "tool", "tool", "assistant"]
    assert record.messages[1].content == "Let me look."
    assert _calls(record) == [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})]


@pytest.mark.parametrize("row, reason, where", [
    ({"conversations": [{"from": "human", "value": "q"}, {"from": "function_call", "value": "{not json"},
                        {"from": "observation", "value": "r"}, {"from": "gpt", "value": "a"}]},
     "bad_tool_call", "conversations.1.value"),
    ({"conversations": [{"from": "human", "value": "q"}, {"from": "function_call", "value": '{"arguments": {}}'},
                        {"from": "observation", "value": "r"}, {"from": "gpt", "value": "a"}]},
     "bad_tool_call", "no function name"),
    ({"messages": [{"role": "user", "content": "q"},
                   {"role": "assistant", "content": "",
                    "tool_calls": [{"function": {"name": "f", "arguments": "[1]"}}]},
                   {"role": "tool", "content": "r"}, {"role": "assistant", "content": "a"}]},
     "bad_tool_call", "messages.1.tool_calls.0"),
    ({"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}], "tools": "{oops"},
     "bad_tools", "tools"),
    ({"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}], "tools": '[{"x": 1}]'},
     "bad_tools", "tools[0]"),
])
def test_bad_tool_data_is_a_reject_naming_the_field(row, reason, where):
    out = _record(row)
    assert isinstance(out, Reject)
    assert (out.reason, out.line) == (reason, 3) and where in out.message and "\n" not in out.message


def test_a_record_may_end_on_a_tool_call_but_not_on_an_empty_answer():
    calls = {"conversations": [{"from": "human", "value": "q"},
                               {"from": "function_call", "value": '{"name": "f", "arguments": {}}'}]}
    assert isinstance(_record(calls), Record)
    empty = {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": " "}]}
    assert _record(empty).reason == "empty_answer"


# -- the bundle: one schema for datasets --------------------------------------------------------------

def _tool_record(i: int) -> Record:
    return Record.model_validate({
        "messages": [{"role": "user", "content": f"Weather {i}?"},
                     {"role": "assistant", "content": "", "tool_calls": [
                         {"type": "function", "function": {"name": "get_weather", "arguments": f'{{"day": {i}}}'}}]},
                     {"role": "tool", "content": f"{i} degrees"}, {"role": "assistant", "content": f"It is {i}."}],
        "tools": json.dumps([{"type": "function", "function": WEATHER if i % 2 else {"name": f"t{i}"}}]),
        "meta": {"id": f"t:{i}", "source": "t", "line": i, "kind": "domain"}})


def _late_tools_lines() -> list[str]:
    """300 plain records, then 100 that define and call tools (the chunk datasets infers from has none)."""
    plain = [Record.model_validate(make_record([(f"Question {i}?", f"Answer {i}.")], rid=f"p:{i}", lang="en"))
             for i in range(1, 301)]
    return [r.model_dump_json(exclude_none=True) for r in plain + [_tool_record(i) for i in range(1, 101)]]


def _load(path: Path, cache: Path):
    import datasets

    datasets.disable_progress_bars()
    return datasets.load_dataset("json", data_files=str(path), chunksize=4096, cache_dir=str(cache))["train"]


def test_datasets_loads_a_bundle_whose_tools_come_late(tmp_path):
    import datasets

    lines = _late_tools_lines()
    raw = tmp_path / "raw.jsonl"
    raw.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(datasets.exceptions.DatasetGenerationError):  # the CastError the uniform lines prevent
        _load(raw, tmp_path / "cache-raw")
    uniform = tmp_path / "train.jsonl"
    uniform.write_text("\n".join(uniform_line(line) for line in lines) + "\n", encoding="utf-8")
    assert len({tuple(json.loads(line)) for line in uniform.read_text().splitlines()}) == 1  # same top-level keys
    loaded = _load(uniform, tmp_path / "cache")
    assert len(loaded) == 400
    first, last = loaded[0], loaded[399]
    assert json.loads(first["tools"]) == [] and first["messages"][1]["tool_calls"] is None
    assert last["messages"][1]["tool_calls"] == [
        {"type": "function", "function": {"name": "get_weather", "arguments": '{"day": 100}'}}]
    assert json.loads(last["tools"]) == _tool_record(100).tool_list()
    for line in uniform.read_text().splitlines():  # and every line is still a valid Record
        Record.model_validate_json(line)


def test_build_with_tools_writes_uniform_lines_and_without_tools_leaves_lines_alone(tmp_path):
    from curate.pipeline import build
    from schemas.recipe import load_recipe

    plain = build(load_recipe(make_project(tmp_path / "plain"))).version_dir
    assert all("tools" not in r and all("tool_calls" not in m for m in r["messages"])
               for r in read_jsonl(plain / "train.jsonl"))

    rows = [_tool_record(i).model_dump(exclude_none=True) for i in range(1, 9)]
    for row in rows:
        row.pop("meta")
    write_jsonl(tmp_path / "tools" / "domain" / "calls.jsonl", rows)
    extra = {"sources": [{"path": "domain/calls.jsonl", "kind": "domain"},
                         {"path": "general/en.jsonl", "kind": "general", "languages": ["en"]}],
             "mix": {"ratio": "1:2"}, "split": {"val_ratio": 0.0, "seed": 1}}
    version = build(load_recipe(make_project(tmp_path / "tools", recipe_extra=extra, templates=False))).version_dir
    train = read_jsonl(version / "train.jsonl")
    assert {tuple(r) for r in train} == {("messages", "tools", "meta")}
    assert all("tool_calls" in m for r in train for m in r["messages"] if m["role"] == "assistant")
    with_calls = [Record.model_validate(r) for r in train if r["tools"] != "[]"]
    assert len(with_calls) == 8 and all(r.uses_tools() for r in with_calls)


# -- training: the calls are learned, the results are not ---------------------------------------------

def test_tool_calls_are_trained_and_tool_results_are_not(qwen_tokenizer):
    from train.encode import IGNORE_INDEX, encode_record

    record = _tool_record(7)
    encoded = encode_record(qwen_tokenizer, record)
    trained = qwen_tokenizer.decode([t for t, lab in zip(encoded.input_ids, encoded.labels) if lab != IGNORE_INDEX])
    assert trained == ('<tool_call>\n{"name": "get_weather", "arguments": {"day": 7}}\n</tool_call><|im_end|>'
                       "It is 7.<|im_end|>")
    prompt = qwen_tokenizer.decode(encoded.input_ids)
    assert "<tools>" in prompt and '"name": "get_weather"' in prompt and "<tool_response>\n7 degrees" in prompt


def test_bundles_written_before_wrapping_still_read():
    """Older bundles kept glaive's bare definitions as given; reading one brings them to the wrapped form."""
    old = make_record([("q?", "a.")], rid="o:1")
    old["tools"] = json.dumps([WEATHER])
    assert Record.model_validate(old).tool_list() == [{"type": "function", "function": WEATHER}]
    old["tools"] = "[1]"
    with pytest.raises(ValueError, match=r"tools\[0\] is int"):
        Record.model_validate(old)
