"""OpenAI's chat completion objects, whole and as server-sent-event chunks.

A stream is: one chunk with the assistant role, one chunk per piece of text as it is produced, one
chunk with the finish_reason, a usage chunk (choices: []) if the request asked for
`stream_options.include_usage`, then `data: [DONE]`. A failure after the stream began cannot change
the status any more: it is sent as one `data: {"error": {...}}` event before `[DONE]`.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

DONE = b"data: [DONE]\n\n"


def event(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode("utf-8") + b"\n\n"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


@dataclass
class Completion:
    """Ids and timestamps shared by every chunk of one answer."""

    model: str
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))

    def whole(self, text: str, finish_reason: str, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": finish_reason, "logprobs": None}],
                "usage": usage(prompt_tokens, completion_tokens)}

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        return event({"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                      "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]})

    def usage_chunk(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        return event({"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                      "choices": [], "usage": usage(prompt_tokens, completion_tokens)})
