"""Input shapes people already have on disk, each able to turn itself into canonical messages.

Extra keys are ignored (real files carry ids, loss weights, categories); wrong types are errors.
"""
from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from schemas.record import Message
from schemas.tools import ToolFormatError, normalise_tools, one_call, parse_calls

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
    content: Union[str, list[_Part], None] = None
    tool_calls: list[Any] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        texts = []
        for part in self.content:
            if part.type != "text":
                raise ValueError(f"content part of type '{part.type}' is not text")
            texts.append(part.text if part.text is not None else (part.value or ""))
        return "".join(texts)


_OPENAI_ROLES = {"system": "system", "user": "user", "assistant": "assistant", "tool": "tool",
                 "tool_call": "assistant", "function_call": "assistant", "tool_response": "tool", "function": "tool",
                 "observation": "tool"}
_CALL_ROLES = {"tool_call", "function_call"}  # ms-swift's agent roles: the turn's content is the call


def _append(out: list[Message], role: str, content: str, calls: list[dict[str, Any]] | None) -> None:
    """Add a turn; calls that follow an assistant turn join it (ms-swift and sharegpt write an
    assistant's thought and its call, or parallel calls, as separate turns)."""
    if calls and out and out[-1].role == "assistant":
        last = out[-1]
        text = "\n".join(part for part in (last.content, content) if part)
        out[-1] = Message.model_validate({"role": "assistant", "content": text,
                                          "tool_calls": [*(c.model_dump() for c in last.tool_calls or ()), *calls]})
        return
    out.append(Message.model_validate({"role": role, "content": content, "tool_calls": calls}))


class MessagesRow(_Shape):
    """OpenAI-style messages; `content` may be a string or a list of text parts. Tool calls come as an
    assistant's `tool_calls` (OpenAI) or a `tool_call` turn (ms-swift); results as `tool`/`tool_response`."""

    messages: list[_ChatTurn] = Field(min_length=1)
    tools: Union[str, list[Any], None] = None

    def to_messages(self) -> list[Message]:
        out: list[Message] = []
        for number, turn in enumerate(self.messages):
            role = _OPENAI_ROLES.get(turn.role)
            if role is None:
                raise ValueError(f"unknown role '{turn.role}'")
            where = f"messages.{number}"
            if turn.role in _CALL_ROLES:
                _append(out, role, "", parse_calls(turn.text(), f"{where}.content: tool call"))
            elif turn.tool_calls:
                if role != "assistant":
                    raise ToolFormatError(f"{where}.tool_calls: on a '{turn.role}' turn; only assistant turns call "
                                          "tools")
                calls = [one_call(call, f"{where}.tool_calls.{n}") for n, call in enumerate(turn.tool_calls)]
                _append(out, role, turn.text(), calls)
            else:
                _append(out, role, turn.text(), None)
        return out

    def tools_json(self) -> str | None:
        return normalise_tools(self.tools)


class _ShareGPTTurn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    from_: str = Field(alias="from")
    value: str


_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "system": "system", "function_call": "assistant", "observation": "tool",
                   "tool": "tool"}


class ShareGPTRow(_Shape):
    """ShareGPT: `conversations` of {from, value}; a `function_call` turn becomes an assistant turn
    with `tool_calls`, an `observation` a `tool` turn; `tools` (often JSON text) a list of definitions."""

    conversations: list[_ShareGPTTurn] = Field(min_length=1)
    system: str | None = None
    tools: Union[str, list[Any], None] = None

    def to_messages(self) -> list[Message]:
        out = [Message(role="system", content=self.system)] if self.system else []
        for number, turn in enumerate(self.conversations):
            role = _SHAREGPT_ROLES.get(turn.from_)
            if role is None:
                raise ValueError(f"unknown 'from' value '{turn.from_}'")
            if turn.from_ == "function_call":
                _append(out, role, "", parse_calls(turn.value, f"conversations.{number}.value: tool call"))
            else:
                _append(out, role, turn.value, None)
        return out

    def tools_json(self) -> str | None:
        return normalise_tools(self.tools)


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
