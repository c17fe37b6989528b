"""`curate export`: what LLaMA-Factory and ms-swift read as is, checked against their documented formats
and loaded with `datasets.load_dataset("json")`."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from curate.cli import main
from curate.export import LF_TAGS, export_bundle
from tests.conftest import make_record, write_bundle

WEATHER = {"name": "get_weather", "description": "Weather of a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
TOOLS = json.dumps([{"type": "function", "function": WEATHER}])


def _call(city: str) -> dict:
    return {"type": "function", "function": {"name": "get_weather", "arguments": json.dumps({"city": city})}}


def _records() -> tuple[list[dict], list[dict]]:
    plain = make_record([("Hello?", "Hi there."), ("How are you?", "Fine.")], rid="p:1", system="Be kind.")
    one = make_record([{"role": "user", "content": "Paris weather?"},
                       {"role": "assistant", "content": "", "tool_calls": [_call("Paris")]},
                       {"role": "tool", "content": "21"}, {"role": "assistant", "content": "21 degrees."}], rid="t:1")
    one["tools"] = TOOLS
    parallel = make_record([{"role": "user", "content": "Paris and Rome?"},
                            {"role": "assistant", "content": "", "tool_calls": [_call("Paris"), _call("Rome")]},
                            {"role": "tool", "content": "21"}, {"role": "tool", "content": "25"},
                            {"role": "assistant", "content": "21 and 25."}], rid="t:2")
    parallel["tools"] = TOOLS
    thought = make_record([{"role": "user", "content": "Oslo?"},
                           {"role": "assistant", "content": "Let me check.", "tool_calls": [_call("Oslo")]},
                           {"role": "tool", "content": "3"}, {"role": "assistant", "content": "3 degrees."}], rid="t:3")
    thought["tools"] = TOOLS
    return [plain, one, parallel, thought], [make_record([("Bye?", "Bye.")], rid="v:1")]


@pytest.fixture
def bundle(tmp_path) -> Path:
    train, val = _records()
    return write_bundle(tmp_path / "bundle", train, val, name="tools-demo")


def _load(path: Path, tmp_path: Path):
    import datasets

    datasets.disable_progress_bars()
    return datasets.load_dataset("json", data_files=str(path), cache_dir=str(tmp_path / "hf-cache"))["train"]


def _lf_valid(row: dict, key: str, tags: dict) -> None:
    """LLaMA-Factory's sharegpt converter rules: user/observation turns at even places,
    assistant/function_call at odd ones, an even count; function_call values are call JSON."""
    turns = row[key]
    assert len(turns) % 2 == 0
    for i, turn in enumerate(turns):
        names = ("user_tag", "observation_tag") if i % 2 == 0 else ("assistant_tag", "function_tag")
        allowed = tuple(tags[name] for name in names)
        assert turn[tags["role_tag"]] in allowed
        if turn[tags["role_tag"]] == tags["function_tag"]:
            calls = json.loads(turn[tags["content_tag"]])
            for call in calls if isinstance(calls, list) else [calls]:
                assert isinstance(call["name"], str) and isinstance(call["arguments"], dict)
    tools = json.loads(row["tools"]) if row["tools"] else []
    assert all("name" in tool and "type" not in tool for tool in tools)


def test_llamafactory_export_with_dataset_info(bundle, tmp_path):
    out = tmp_path / "lf"
    result = export_bundle(bundle, "llamafactory", out)
    assert result.written == {"train": 3, "val": 1}
    assert [s["id"] for s in result.skipped] == ["t:3"] and "text and tool calls" in result.skipped[0]["reason"]
    info = json.loads((out / "dataset_info.json").read_text())
    assert info == {name: {"file_name": file, "formatting": "sharegpt",
                           "columns": {"messages": "messages", "system": "system", "tools": "tools"}, "tags": LF_TAGS}
                    for name, file in (("tools-demo", "train.json"), ("tools-demo_val", "val.json"))}
    rows = json.loads((out / "train.json").read_text())
    for row in rows:
        _lf_valid(row, "messages", LF_TAGS)
    plain, one, parallel = rows
    assert plain["system"] == "Be kind." and plain["tools"] == ""
    assert json.loads(one["tools"]) == [WEATHER]
    assert [t["role"] for t in parallel["messages"]] == ["user", "function_call", "tool", "assistant"]
    assert json.loads(parallel["messages"][1]["content"]) == [{"name": "get_weather", "arguments": {"city": c}}
                                                               for c in ("Paris", "Rome")]
    assert parallel["messages"][2]["content"] == "21\n25"
    assert len(_load(out / "train.json", tmp_path)) == 3
    assert (out / "skipped.jsonl").read_text().count("\n") == 1


def test_sharegpt_export_spells_roles_as_glaive_does(bundle, tmp_path):
    from curate.export import SHAREGPT_TAGS

    out = tmp_path / "sg"
    export_bundle(bundle, "sharegpt", out)
    rows = json.loads((out / "train.json").read_text())
    for row in rows:
        _lf_valid(row, "conversations", SHAREGPT_TAGS)
    assert {t["from"] for r in rows for t in r["conversations"]} == {"human", "gpt", "function_call", "observation"}
    info = json.loads((out / "dataset_info.json").read_text())["tools-demo"]
    assert info["columns"] == {"messages": "conversations", "system": "system", "tools": "tools"} and "tags" not in info
    assert len(_load(out / "train.json", tmp_path)) == 3


def test_alpaca_export_keeps_history_and_skips_tool_records(bundle, tmp_path):
    out = tmp_path / "alpaca"
    result = export_bundle(bundle, "alpaca", out)
    assert sorted(s["id"] for s in result.skipped) == ["t:1", "t:2", "t:3"]
    (row,) = json.loads((out / "train.json").read_text())
    assert row == {"instruction": "How are you?", "input": "", "output": "Fine.", "system": "Be kind.",
                   "history": [["Hello?", "Hi there."]]}
    assert json.loads((out / "dataset_info.json").read_text())["tools-demo"]["columns"]["history"] == "history"


def test_swift_export_uses_agent_roles_and_tools_text(bundle, tmp_path):
    out = tmp_path / "swift"
    result = export_bundle(bundle, "swift", out)
    assert not result.skipped and result.written == {"train": 4, "val": 1} and not (out / "dataset_info.json").exists()
    rows = json.loads((out / "train.json").read_text())
    assert all(set(r) == {"messages", "tools"} for r in rows)
    assert rows[0]["tools"] == "[]" and json.loads(rows[1]["tools"]) == [{"type": "function", "function": WEATHER}]
    roles = [[m["role"] for m in r["messages"]] for r in rows]
    assert roles[2] == ["user", "tool_call", "tool_call", "tool_response", "tool_response", "assistant"]
    assert roles[3] == ["user", "assistant", "tool_call", "tool_response", "assistant"]
    assert {role for r in roles for role in r} == {"system", "user", "assistant", "tool_call", "tool_response"}
    assert json.loads(rows[2]["messages"][2]["content"]) == {"name": "get_weather", "arguments": {"city": "Rome"}}
    loaded = _load(out / "train.json", tmp_path)
    assert loaded[1]["messages"][1]["role"] == "tool_call"


def test_real_glaive_bundle_exports_for_llamafactory(tmp_path):
    shared = Path("/work/shared/data/glaive_toolcall_zh_demo.json")
    if not shared.exists():
        pytest.skip("shared data not present")
    from curate.sources import load_file

    records, _ = load_file(shared)
    rows = [r.to_json_dict() for r in records]
    version = write_bundle(tmp_path / "b", rows[:250], rows[250:], name="glaive")
    result = export_bundle(version, "llamafactory", tmp_path / "lf")
    assert not result.skipped and result.written == {"train": 250, "val": 50}
    original = json.loads(shared.read_text(encoding="utf-8"))
    exported = json.loads((tmp_path / "lf" / "train.json").read_text(encoding="utf-8"))
    for before, after in zip(original, exported):
        _lf_valid(after, "messages", LF_TAGS)
        names = {"human": "user", "gpt": "assistant", "function_call": "function_call", "observation": "tool"}
        assert [names[t["from"]] for t in before["conversations"]] == [t["role"] for t in after["messages"]]
        assert (json.loads(after["tools"]) if after["tools"] else []) == (
            json.loads(before["tools"]) if before["tools"].strip() else [])


def test_cli_export_and_refusing_a_used_folder(bundle, tmp_path):
    out = tmp_path / "swift"
    result = CliRunner().invoke(main, ["export", str(bundle), "--to", "swift", str(out)])
    assert result.exit_code == 0 and result.stdout.strip().splitlines()[-1] == str(out)
    again = CliRunner().invoke(main, ["export", str(bundle), "--to", "swift", str(out)])
    assert again.exit_code == 2 and "exists and is not an empty folder" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
