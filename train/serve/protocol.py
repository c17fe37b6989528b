"""What a client may send, in OpenAI's shapes, and how a bad request is answered.

Bodies are parsed here rather than by FastAPI so that every refusal has OpenAI's error shape,
`{"error": {"message", "type", "param", "code"}}`, with the status a client library expects
(400 bad request, 404 unknown model, 413 body too large, 429 queue full) instead of FastAPI's 422.
Unknown fields are ignored, as OpenAI-compatible servers do; fields that would change the answer
in a way this server cannot honour (n > 1, tools, logprobs) are refused.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from train.serve.sampling import SamplingParams

ROLES = ("system", "user", "assistant")
MAX_STOPS, MAX_STOP_CHARS = 4, 200


@dataclass(frozen=True)
class ApiLimits:
    max_tokens: int = 1024  # the most a request may ask for
    default_max_tokens: int = 256  # when it does not say
    max_prompt_tokens: int = 4096
    max_body_bytes: int = 1 << 20
    timeout_s: float = 300.0


class ApiError(Exception):
    """A refusal the client sees as OpenAI's error JSON with `status`."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())


class TextPart(_Lenient):
    type: Literal["text"]
    text: str


class Message(_Lenient):
    role: str
    content: str | list[TextPart] | None = None


class StreamOptions(_Lenient):
    include_usage: bool = False


class ChatCompletionRequest(_Lenient):
    model: str = Field(min_length=1)
    messages: list[Message]
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    tools: list[Any] | None = None
    logprobs: bool | None = None


class ChatRequest(_Lenient):
    """The tutorial shape of POST /chat: one message, earlier turns as [user, assistant] pairs or messages."""

    message: str = Field(min_length=1)
    history: list[tuple[str, str] | Message] = Field(default_factory=list)
    model: str | None = None
    system: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = None


Model = TypeVar("Model", bound=BaseModel)


def parse_body(body: bytes, model: type[Model]) -> Model:
    """The request body as `model`, or a 400 naming what is wrong (malformed JSON, a field's type or range)."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {getattr(exc, 'msg', 'not UTF-8 text')}",
                       code="invalid_json") from None
    except RecursionError:
        raise ApiError(400, "the body is not valid JSON: nested too deeply", code="invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, f"the body must be a JSON object, not {type(data).__name__}", code="invalid_json")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(part) for part in first["loc"]) or None
        raise ApiError(400, f"{param}: {first['msg']}" if param else first["msg"], param=param) from None


def _text(content: str | list[TextPart] | None) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    return "".join(part.text for part in content)


def chat_messages(messages: list[Message]) -> list[dict[str, str]]:
    """The conversation as plain dicts; refused unless it is system?, then user/assistant turns ending with user."""
    if not messages:
        raise ApiError(400, "messages: at least one message is needed", param="messages")
    out = []
    for i, message in enumerate(messages):
        role = "system" if message.role == "developer" else message.role
        if role not in ROLES:
            raise ApiError(400, f"messages.{i}.role: {message.role!r} is not supported here; use system, user or "
                           "assistant", param=f"messages.{i}.role")
        if role == "system" and i:
            raise ApiError(400, f"messages.{i}: a system message may only come first", param=f"messages.{i}.role")
        out.append({"role": role, "content": _text(message.content)})
    if out[-1]["role"] != "user":
        raise ApiError(400, "messages: the last message must be the user's", param="messages")
    return out


def history_messages(req: ChatRequest) -> list[dict[str, str]]:
    """POST /chat's system + history + message as a conversation."""
    messages: list[Message] = [Message(role="system", content=req.system)] if req.system else []
    for turn in req.history:
        if isinstance(turn, tuple):
            messages += [Message(role="user", content=turn[0]), Message(role="assistant", content=turn[1])]
        else:
            messages.append(turn)
    return chat_messages([*messages, Message(role="user", content=req.message)])


def sampling(limits: ApiLimits, max_tokens: int | None, temperature: float | None, top_p: float | None,
             stop: str | list[str] | None = None, seed: int | None = None,
             default_temperature: float = 1.0) -> SamplingParams:
    """The request's decoding settings, checked against the server's limits."""
    wanted = max_tokens if max_tokens is not None else min(limits.default_max_tokens, limits.max_tokens)
    if wanted > limits.max_tokens:
        raise ApiError(400, f"max_tokens: {wanted} is over this server's limit of {limits.max_tokens} "
                       "(train serve --max_tokens_limit)", param="max_tokens", code="max_tokens_too_large")
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    if len(stops) > MAX_STOPS or any(not s or len(s) > MAX_STOP_CHARS for s in stops):
        raise ApiError(400, f"stop: up to {MAX_STOPS} non-empty strings of at most {MAX_STOP_CHARS} characters",
                       param="stop")
    return SamplingParams(temperature=default_temperature if temperature is None else temperature,
                          top_p=1.0 if top_p is None else top_p, max_tokens=wanted, stop=tuple(stops), seed=seed)


def check_completion_request(req: ChatCompletionRequest) -> None:
    if req.n not in (None, 1):
        raise ApiError(400, f"n: only n=1 is supported here (got {req.n})", param="n")
    if req.tools:
        raise ApiError(400, "tools: tool calls are not supported by this server", param="tools")
    if req.logprobs:
        raise ApiError(400, "logprobs: not supported by this server", param="logprobs")
