"""The canonical chat record every stage passes along and the bundle stores, one per JSONL line."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Role = Literal["system", "user", "assistant", "tool"]
Kind = Literal["identity", "domain", "general"]


class Message(BaseModel):
    """One chat turn. `tool` carries a tool's observation back to the assistant."""

    model_config = ConfigDict(extra="forbid")
    role: Role
    content: str


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
    tools: str | None = Field(default=None, description="tool definitions as a JSON string, if any")
    meta: RecordMeta

    @model_validator(mode="after")
    def _check_turns(self) -> "Record":
        check_turn_order([m.role for m in self.messages])
        for message in self.messages:
            if message.role == "user" and not message.content.strip():
                raise ValueError("a user turn is empty")
        last = self.messages[-1]
        if not last.content.strip():
            raise ValueError("the last assistant turn is empty")
        return self

    def conversation_text(self) -> str:
        """All turn contents joined: what length, language and dedup look at."""
        return "\n".join(m.content for m in self.messages)

    def to_json_dict(self) -> dict[str, Any]:
        data = self.model_dump(exclude_none=True)
        unset = {name for name in ("index", "needs") if getattr(self.meta, name) is None}
        data["meta"] = self.meta.model_dump(exclude=unset or None)
        return data


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
