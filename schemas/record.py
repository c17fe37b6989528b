"""The canonical chat record every stage passes along and the bundle stores, one per JSONL line.

Tool use is kept structured, OpenAI-style: an assistant turn may carry `tool_calls`
([{"type": "function", "function": {"name", "arguments"}}], arguments as JSON object text), a
`tool` turn carries a result, and `tools` holds the tool definitions as the JSON text of a list
(schemas.tools). Open-ended JSON stays text so Arrow (`datasets`) reads every bundle with one schema.
"""
from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.tools import check_tools_text

Role = Literal["system", "user", "assistant", "tool"]
Kind = Literal["identity", "domain", "general"]


class ToolFunction(BaseModel):
    """The function a call names and its arguments, as JSON object text (the OpenAI wire form)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    arguments: str = Field(description="the call's arguments as the JSON text of an object")

    @field_validator("arguments")
    @classmethod
    def _an_object(cls, text: str) -> str:
        try:
            value = json.loads(text)
        except ValueError:
            raise ValueError("arguments is not JSON text") from None
        if not isinstance(value, dict):
            raise ValueError(f"arguments is JSON {type(value).__name__}, not an object")
        return text


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["function"] = "function"
    function: ToolFunction


class Message(BaseModel):
    """One chat turn. `tool` carries a tool's result back to the assistant; an assistant turn that
    calls tools lists them in `tool_calls` (its content may then be empty)."""

    model_config = ConfigDict(extra="forbid")
    role: Role
    content: str
    tool_calls: list[ToolCall] | None = None

    @model_validator(mode="after")
    def _calls_on_assistant(self) -> "Message":
        if self.tool_calls is not None and self.role != "assistant":
            raise ValueError(f"tool_calls on a '{self.role}' turn; only assistant turns call tools")
        return self

    def text(self) -> str:
        """Content plus the calls (as `name(arguments)` lines): what length, language and dedup see."""
        if not self.tool_calls:
            return self.content
        calls = "\n".join(f"{c.function.name}({c.function.arguments})" for c in self.tool_calls or ())
        return "\n".join(part for part in (self.content, calls) if part)


class RecordMeta(BaseModel):
    """Where a record came from, so every kept or rejected record can be traced to its file and line."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(description="stable id: '<source>:<line>'; '<source>:<line>#<index>' where several records "
                    "of a JSON array start on one line")
    source: str
    line: int | None = Field(default=None, description="1-based physical line where the record starts (for "
                             "Parquet, the row number)")
    index: int | None = Field(default=None, description="1-based position of the record in a JSON array, CSV "
                              "or Parquet file; absent for JSON Lines")
    lang: str | None = None
    kind: Kind = "general"
    needs: list[Literal["name", "author"]] | None = Field(
        default=None, description="identity records: what an answer to the question must state, when the "
        "template says so explicitly (otherwise read from the placeholders its answer holds)")


class Record(BaseModel):
    """Messages in the format ms-swift, LLaMA-Factory (sharegpt/openai tags) and TRL read as is."""

    model_config = ConfigDict(extra="forbid")
    messages: list[Message]
    tools: str | None = Field(default=None, description="tool definitions: the JSON text of a list of "
                              "{\"type\": \"function\", \"function\": {name, description, parameters}}")
    meta: RecordMeta

    @field_validator("tools")
    @classmethod
    def _tools_list(cls, text: str | None) -> str | None:
        return None if text is None else check_tools_text(text)

    @model_validator(mode="after")
    def _check_turns(self) -> "Record":
        check_turn_order([m.role for m in self.messages])
        for message in self.messages:
            if message.role == "user" and not message.content.strip():
                raise ValueError("a user turn is empty")
        last = self.messages[-1]
        if not last.content.strip() and not last.tool_calls:
            raise ValueError("the last assistant turn is empty")
        return self

    def conversation_text(self) -> str:
        """All turn texts joined (tool calls included): what length, language and dedup look at."""
        return "\n".join(m.text() for m in self.messages)

    def tool_list(self) -> list[dict[str, Any]]:
        """The tool definitions as a list (empty when there are none)."""
        return json.loads(self.tools) if self.tools else []

    def uses_tools(self) -> bool:
        return bool(self.tool_list()) or any(m.tool_calls for m in self.messages)

    def to_json_dict(self) -> dict[str, Any]:
        data = self.model_dump(exclude_none=True)
        unset = {name for name in ("index", "needs") if getattr(self.meta, name) is None}
        data["meta"] = self.meta.model_dump(exclude=unset or None)
        return data


def uniform_line(line: str) -> str:
    """A bundle line (compact JSON of a Record) with the keys every line of a bundle that uses tools
    carries: `tools` ("[]" when the record has none) and `tool_calls` (null when none) on every
    assistant turn. `datasets.load_dataset("json")` fixes its schema from the first chunk it reads,
    so a key that first shows up later is a CastError; with these keys every chunk is alike (and
    the assistant-only `tool_calls` key lets `datasets` read messages as JSON values). A bundle that
    uses no tools keeps its lines as they are."""
    data = json.loads(line)
    for message in data["messages"]:
        if message["role"] == "assistant":
            message.setdefault("tool_calls", None)
    out = {"messages": data["messages"], "tools": data.get("tools") or "[]", "meta": data["meta"]}
    return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


_MAY_FOLLOW = {"user": ("assistant",), "assistant": ("user", "tool"), "tool": ("assistant", "tool")}


def check_turn_order(roles: list[str]) -> None:
    """Raise ValueError unless roles read: [system] user assistant (tool assistant)* (user assistant ...)*."""
    if not roles:
        raise ValueError("no messages")
    i = 0
    if roles[0] == "system":
        i = 1
    if i >= len(roles) or roles[i] != "user":
        raise ValueError("the conversation must start with a user turn (after an optional system turn)")
    for prev, cur in zip(roles[i:], roles[i + 1:]):
        if cur not in _MAY_FOLLOW[prev]:
            if cur == "system":
                raise ValueError("a system turn may only come first")
            raise ValueError(f"roles out of order: '{cur}' after '{prev}'")
    if roles[-1] != "assistant":
        raise ValueError(f"the conversation ends on a '{roles[-1]}' turn, not an assistant turn")
