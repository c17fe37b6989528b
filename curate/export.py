"""`curate export`: a bundle's splits in the files other trainers read as they are.

- llamafactory: LLaMA-Factory's sharegpt formatting with OpenAI-style role tags (`messages` of
  role/content; calls as `function_call` turns holding `{"name", "arguments"}` JSON, results as
  `tool` turns) plus `system` and `tools` columns, and the `dataset_info.json` that names them.
- sharegpt: the same in LLaMA-Factory's default spelling (`conversations` of from/value:
  human, gpt, function_call, observation), as glaive's files are; with its dataset_info.json.
- alpaca: instruction/input/output/system/history, with its dataset_info.json; a record that
  uses tools cannot be written in it and is skipped.
- swift: ms-swift's messages (roles system, user, assistant, tool_call, tool_response), `tools`
  as JSON text of the wrapped definitions.

Each split is one JSON array (train.json, val.json): `datasets.load_dataset("json")` reads an
array as a whole, so the file has one schema however its records differ. A record a format cannot
hold is listed in skipped.jsonl with its reason, never dropped silently.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from schemas.bundle import read_records, resolve_bundle, verify_bundle
from schemas.record import Message, Record

FORMATS = ("llamafactory", "sharegpt", "alpaca", "swift")
SPLITS = ("train", "val")
LF_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
           "observation_tag": "tool", "function_tag": "function_call", "system_tag": "system"}
SHAREGPT_TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                 "observation_tag": "observation", "function_tag": "function_call", "system_tag": "system"}


class ExportError(ValueError):
    """The bundle or the output folder cannot be used; one line."""


class Skip(Exception):
    """This record cannot be written in the chosen format; the message says why."""


@dataclass
class ExportResult:
    out: Path
    written: dict[str, int] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)


def _call_json(message: Message) -> str:
    """An assistant's calls as LLaMA-Factory's function_call value: one {"name", "arguments"}, or a list."""
    calls = [{"name": c.function.name, "arguments": json.loads(c.function.arguments)} for c in message.tool_calls or ()]
    return json.dumps(calls[0] if len(calls) == 1 else calls, ensure_ascii=False)


def _split_system(record: Record) -> tuple[str, list[Message]]:
    messages = record.messages
    if messages[0].role == "system":
        return messages[0].content, messages[1:]
    return "", messages


def _sharegpt(record: Record, tags: dict[str, str], key: str) -> dict[str, Any]:
    """LLaMA-Factory's alternation: user/observation, then assistant/function_call, in turn."""
    system, messages = _split_system(record)
    role, content = tags["role_tag"], tags["content_tag"]
    turns: list[dict[str, str]] = []
    for message in messages:
        if message.role == "assistant" and message.tool_calls:
            if message.content.strip():
                raise Skip("an assistant turn holds text and tool calls together; LLaMA-Factory's sharegpt has "
                           "one or the other per turn")
            turns.append({role: tags["function_tag"], content: _call_json(message)})
        elif message.role == "tool" and turns and turns[-1][role] == tags["observation_tag"]:
            turns[-1][content] += "\n" + message.content  # parallel results share the one observation slot
        else:
            name = {"user": "user_tag", "assistant": "assistant_tag", "tool": "observation_tag"}[message.role]
            turns.append({role: tags[name], content: message.content})
    tools = [t["function"] for t in record.tool_list()]  # LLaMA-Factory's own files list bare definitions
    return {key: turns, "system": system, "tools": json.dumps(tools, ensure_ascii=False) if tools else ""}


def to_llamafactory(record: Record) -> dict[str, Any]:
    return _sharegpt(record, LF_TAGS, "messages")


def to_sharegpt(record: Record) -> dict[str, Any]:
    return _sharegpt(record, SHAREGPT_TAGS, "conversations")


def to_alpaca(record: Record) -> dict[str, Any]:
    if record.uses_tools() or any(m.role == "tool" for m in record.messages):
        raise Skip("uses tools, which the alpaca format cannot hold (export to llamafactory, sharegpt or swift)")
    system, messages = _split_system(record)
    pairs = [(messages[i].content, messages[i + 1].content) for i in range(0, len(messages) - 1, 2)]
    *history, (instruction, output) = pairs
    return {"instruction": instruction, "input": "", "output": output, "system": system,
            "history": [list(pair) for pair in history]}


def to_swift(record: Record) -> dict[str, Any]:
    messages: list[dict[str, str]] = []
    for message in record.messages:
        if message.role == "tool":
            messages.append({"role": "tool_response", "content": message.content})
            continue
        if message.content or not message.tool_calls:
            messages.append({"role": message.role, "content": message.content})
        for call in message.tool_calls or ():
            text = json.dumps({"name": call.function.name, "arguments": json.loads(call.function.arguments)},
                              ensure_ascii=False)
            messages.append({"role": "tool_call", "content": text})
    out: dict[str, Any] = {"messages": messages}
    if record.tools:
        out["tools"] = record.tools
    return out


CONVERTERS: dict[str, Callable[[Record], dict[str, Any]]] = {
    "llamafactory": to_llamafactory, "sharegpt": to_sharegpt, "alpaca": to_alpaca, "swift": to_swift}


def dataset_info(fmt: str, name: str, files: dict[str, str]) -> dict[str, Any]:
    """LLaMA-Factory's dataset_info.json entries for the written splits (the key is --dataset's value)."""
    if fmt == "alpaca":
        extra: dict[str, Any] = {"columns": {"prompt": "instruction", "query": "input", "response": "output",
                                             "system": "system", "history": "history"}}
    elif fmt == "llamafactory":
        extra = {"formatting": "sharegpt", "columns": {"messages": "messages", "system": "system", "tools": "tools"},
                 "tags": {k: v for k, v in LF_TAGS.items()}}
    else:
        extra = {"formatting": "sharegpt",
                 "columns": {"messages": "conversations", "system": "system", "tools": "tools"}}
    return {(name if split == "train" else f"{name}_{split}"): {"file_name": file, **extra}
            for split, file in files.items()}


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out}: exists and is not an empty folder; choose a new OUT")


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def export_bundle(bundle: str | Path, fmt: str, out: str | Path) -> ExportResult:
    """Write the bundle's train and val splits in `fmt` under OUT (a new or empty folder)."""
    if fmt not in CONVERTERS:
        raise ExportError(f"--to {fmt}: not one of {', '.join(FORMATS)}")
    version = resolve_bundle(Path(bundle))
    manifest = verify_bundle(version)
    out = Path(out)
    _check_out(out)
    result = ExportResult(out=out)
    converted: dict[str, list[dict[str, Any]]] = {}
    for split in SPLITS:
        if f"{split}.jsonl" not in manifest.files:
            continue
        rows = []
        for record in read_records(version / f"{split}.jsonl"):
            try:
                rows.append(CONVERTERS[fmt](record))
            except Skip as exc:
                result.skipped.append({"split": split, "id": record.meta.id, "reason": str(exc)})
        converted[split] = rows
    if fmt == "swift" and any("tools" in row for rows in converted.values() for row in rows):
        for rows in converted.values():  # the same keys on every record, as ms-swift's loader needs
            for row in rows:
                row.setdefault("tools", "[]")
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    for split, rows in converted.items():
        if rows or split == "train":
            _write_json(out / f"{split}.json", rows)
            files[split] = f"{split}.json"
            result.written[split] = len(rows)
    if fmt != "swift":
        _write_json(out / "dataset_info.json", dataset_info(fmt, manifest.name, files))
    if result.skipped:
        (out / "skipped.jsonl").write_text("".join(json.dumps(s, ensure_ascii=False) + "\n" for s in result.skipped),
                                           encoding="utf-8")
    return result
