"""Input shapes people already have on disk, each able to turn itself into canonical messages.

Extra keys are ignored (real files carry ids, loss weights, categories); wrong types are errors.
"""
from __future__ import annotations

import json
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from schemas.record import Message

ShapeName = Literal["alpaca", "query_response", "messages", "sharegpt"]


class _Shape(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    def to_messages(self) -> list[Message]:  # pragma: no cover - abstract
        raise NotImplementedError

    def tools_json(self) -> str | None:
        return None


def _history(pairs: list[list[str]] | None) -> list[Message]:
    out: list[Message] = []
    for pair in pairs or []:
        if len(pair) != 2:
            raise ValueError("history entries must be [question, answer] pairs")
        out += [Message(role="user", content=pair[0]), Message(role="assistant", content=pair[1])]
    return out


class AlpacaRow(_Shape):
    """Stanford alpaca and LLaMA-Factory: instruction + optional input -> output."""

    instruction: str
    input: str | None = ""
    output: str
    system: str | None = None
    history: list[list[str]] | None = None

    def to_messages(self) -> list[Message]:
        prompt = self.instruction if not self.input else f"{self.instruction}\n{self.input}"
        head = [Message(role="system", content=self.system)] if self.system else []
        return head + _history(self.history) + [
            Message(role="user", content=prompt),
            Message(role="assistant", content=self.output),
        ]


class QueryResponseRow(_Shape):
    """ms-swift's query/response shape (self-cognition files add a zh/en `tag`)."""

    query: str
    response: str
    system: str | None = None
    history: list[list[str]] | None = None
    tag: str | None = None

    def to_messages(self) -> list[Message]:
        head = [Message(role="system", content=self.system)] if self.system else []
        return head + _history(self.history) + [
            Message(role="user", content=self.query),
            Message(role="assistant", content=self.response),
        ]


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    type: str = "text"
    text: str | None = None
    value: str | None = None


class _ChatTurn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    role: str
    content: Union[str, list[_Part]]

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        texts = []
        for part in self.content:
            if part.type != "text":
                raise ValueError(f"content part of type '{part.type}' is not text")
            texts.append(part.text if part.text is not None else (part.value or ""))
        return "".join(texts)


_OPENAI_ROLES = {"system": "system", "user": "user", "assistant": "assistant", "tool": "tool",
                 "tool_call": "assistant", "tool_response": "tool", "function": "tool"}


class MessagesRow(_Shape):
    """OpenAI-style messages; `content` may be a string or a list of text parts."""

    messages: list[_ChatTurn] = Field(min_length=1)
    tools: Union[str, list[Any], None] = None

    def to_messages(self) -> list[Message]:
        out = []
        for turn in self.messages:
            role = _OPENAI_ROLES.get(turn.role)
            if role is None:
                raise ValueError(f"unknown role '{turn.role}'")
            out.append(Message(role=role, content=turn.text()))
        return out

    def tools_json(self) -> str | None:
        return _tools_json(self.tools)


class _ShareGPTTurn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    from_: str = Field(alias="from")
    value: str


_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "system": "system", "function_call": "assistant", "observation": "tool",
                   "tool": "tool"}


class ShareGPTRow(_Shape):
    """ShareGPT: `conversations` of {from, value}; function_call/observation map to assistant/tool."""

    conversations: list[_ShareGPTTurn] = Field(min_length=1)
    system: str | None = None
    tools: Union[str, list[Any], None] = None

    def to_messages(self) -> list[Message]:
        out = [Message(role="system", content=self.system)] if self.system else []
        for turn in self.conversations:
            role = _SHAREGPT_ROLES.get(turn.from_)
            if role is None:
                raise ValueError(f"unknown 'from' value '{turn.from_}'")
            out.append(Message(role=role, content=turn.value))
        return out

    def tools_json(self) -> str | None:
        return _tools_json(self.tools)


def _tools_json(tools: Union[str, list[Any], None]) -> str | None:
    if tools is None or tools == "" or tools == []:
        return None
    if isinstance(tools, str):
        return tools
    return json.dumps(tools, ensure_ascii=False, sort_keys=True)


SHAPES: dict[str, type[_Shape]] = {
    "alpaca": AlpacaRow,
    "query_response": QueryResponseRow,
    "messages": MessagesRow,
    "sharegpt": ShareGPTRow,
}


def detect_shape(row: dict[str, Any]) -> str | None:
    """Name the shape a row's keys announce; conversation keys win so sharegpt is never read as alpaca."""
    if "conversations" in row:
        return "sharegpt"
    if "messages" in row:
        return "messages"
    if "query" in row:
        return "query_response"
    if "instruction" in row:
        return "alpaca"
    return None
