"""Tool definitions and tool calls as the input formats spell them, brought to one OpenAI form.

Inputs differ: glaive/LLaMA-Factory keep `tools` as JSON text of bare function definitions and a
call as the JSON text `{"name", "arguments": {...}}`; ms-swift and OpenAI wrap definitions in
`{"type": "function", "function": {...}}` and calls in `tool_calls`. Records hold one form
(schemas.record): definitions wrapped, the whole list as JSON text; each call's arguments as the
JSON text of an object. Every failure is a ValueError whose message says what is wrong.
"""
from __future__ import annotations

import json
from typing import Any


class ToolFormatError(ValueError):
    """A tool definition or call that cannot be read; `reason` is the reject reason code."""

    def __init__(self, message: str, reason: str = "bad_tool_call"):
        super().__init__(message)
        self.reason = reason


def _loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ToolFormatError(f"{what} is not valid JSON ({str(exc)[:80]})") from None


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def wrap_tool(tool: Any, number: int) -> dict[str, Any]:
    """One definition as {"type": "function", "function": {...}}; a bare {"name", ...} is wrapped."""
    if not isinstance(tool, dict):
        raise ToolFormatError(f"tools[{number}] is {type(tool).__name__}, not an object")
    inner = tool.get("function") if tool.get("type") == "function" else tool
    if not isinstance(inner, dict) or not isinstance(inner.get("name"), str) or not inner["name"]:
        raise ToolFormatError(f"tools[{number}] has no function name")
    return tool if inner is not tool else {"type": "function", "function": tool}


def normalise_tools(value: str | list[Any] | dict[str, Any] | None) -> str | None:
    """Tool definitions (JSON text, a list or one object) as the record's JSON text; None when empty."""
    try:
        return _normalise_tools(value)
    except ToolFormatError as exc:
        raise ToolFormatError(str(exc), reason="bad_tools") from None


def _normalise_tools(value: str | list[Any] | dict[str, Any] | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        if not value.strip():
            return None
        value = _loads(value, "tools")
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise ToolFormatError(f"tools is JSON {type(value).__name__}, not a list of tool definitions")
    if not value:
        return None
    return _dumps([wrap_tool(tool, n) for n, tool in enumerate(value)])


def check_tools_text(text: str) -> str:
    """A record's `tools`: unchanged when it is the JSON text of a list of wrapped definitions (what
    builds write; "[]" included), else brought to that form (bundles written before definitions were
    wrapped hold glaive's bare ones); ValueError when it holds no tool definitions at all."""
    value = _loads(text, "tools")
    if isinstance(value, list) and all(isinstance(t, dict) and wrap_tool(t, n) is t for n, t in enumerate(value)):
        return text
    return normalise_tools(value) or "[]"


def _arguments(value: Any, where: str) -> str:
    if value is None:
        return "{}"
    if isinstance(value, str):
        value = _loads(value, f"{where} arguments") if value.strip() else {}
    if not isinstance(value, dict):
        raise ToolFormatError(f"{where} arguments are JSON {type(value).__name__}, not an object")
    return _dumps(value)


def one_call(call: Any, where: str = "tool call") -> dict[str, Any]:
    """{"name", "arguments"} (or "parameters", Llama 3.1's word), or an OpenAI {"type", "function"}
    entry, as {"type": "function", "function": {"name", "arguments": JSON text}}."""
    if not isinstance(call, dict):
        raise ToolFormatError(f"{where} is {type(call).__name__}, not an object")
    inner = call.get("function") if isinstance(call.get("function"), dict) else call
    name = inner.get("name")
    if not isinstance(name, str) or not name:
        raise ToolFormatError(f"{where} has no function name")
    arguments = inner.get("arguments", inner.get("parameters"))
    return {"type": "function", "function": {"name": name, "arguments": _arguments(arguments, where)}}


def parse_calls(value: Any, where: str = "tool call") -> list[dict[str, Any]]:
    """A turn's call(s): JSON text or a value holding one call or a list of them."""
    if isinstance(value, str):
        value = _loads(value, where)
    calls = value if isinstance(value, list) else [value]
    if not calls:
        raise ToolFormatError(f"{where} lists no call")
    return [one_call(call, f"{where} {n}" if len(calls) > 1 else where) for n, call in enumerate(calls)]
