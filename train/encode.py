"""Turning a chat record into token ids and labels with the tokenizer's own chat template.

Only assistant turns are learned: their content, their tool calls and the end-of-turn token that
closes them (so the model learns to stop), in every assistant turn of a multi-turn record. Everything
else (system, user, tool definitions and results, the `<|im_start|>assistant\\n` header) gets label -100.

The template is rendered prefix by prefix (as the conversation would be rendered at inference,
with the generation prompt), which gives the character span of each assistant turn; the pieces are
then tokenized one by one, so the trained/untrained boundary falls exactly between tokens and the
prompt side tokenizes as it will when chatting.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from schemas.record import Record

IGNORE_INDEX = -100
_SENTINEL = "\u2063curatune-sentinel\u2063"


class EncodeError(ValueError):
    """The tokenizer's chat template cannot be split into prompt and answer spans."""


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    record_id: str = ""

    @property
    def trained_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE_INDEX)


def message_dict(message) -> dict[str, Any]:
    """One turn as chat templates take it: tool calls with their arguments as a dict (the form
    transformers documents; Qwen2.5's template writes them with `tojson`)."""
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [{"type": "function", "function": {"name": call.function.name,
                                                               "arguments": json.loads(call.function.arguments)}}
                             for call in message.tool_calls]
    return out


def record_messages(record: Record, system: str | None = None) -> list[dict[str, Any]]:
    """The record's turns as plain dicts; `system` replaces the record's system prompt (or adds one)."""
    messages = [message_dict(m) for m in record.messages]
    if system is not None:
        if messages and messages[0]["role"] == "system":
            messages[0] = {"role": "system", "content": system}
        else:
            messages.insert(0, {"role": "system", "content": system})
    return messages


def record_tools(record: Record) -> list[dict[str, Any]] | None:
    """The tool definitions for the template's `tools=`, None when the record has none."""
    return record.tool_list() or None


def render(tokenizer, messages: list[dict], tools=None, add_generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(
        messages, tools=tools, tokenize=False, add_generation_prompt=add_generation_prompt)


def end_of_turn_token(tokenizer) -> str | None:
    """The token the template closes an assistant turn with (<|im_end|> for ChatML), if it is one token."""
    text = render(tokenizer, [{"role": "user", "content": "hi"}, {"role": "assistant", "content": _SENTINEL}])
    tail = text[text.rfind(_SENTINEL) + len(_SENTINEL):].strip()
    if tail:
        ids = tokenizer(tail, add_special_tokens=False)["input_ids"]
        if len(ids) == 1:
            return tail
    return tokenizer.eos_token


def _trained_end(span: str, eot: str | None) -> int:
    """End of the learned part of an assistant span: through the end-of-turn token, not the newline after."""
    if eot:
        idx = span.rfind(eot)
        if idx >= 0 and not span[idx + len(eot):].strip():
            return idx + len(eot)
    return len(span)


def split_conversation(tokenizer, messages: list[dict], tools=None, eot: str | None = None) -> list[tuple[str, bool]]:
    """The full rendering cut into (text, trained) pieces; their concatenation is the full rendering.

    `eot` defaults to the template's own end-of-turn token (see end_of_turn_token).
    """
    if eot is None:
        eot = end_of_turn_token(tokenizer)
    full = render(tokenizer, messages, tools)
    pieces: list[tuple[str, bool]] = []
    pos = 0
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = render(tokenizer, messages[:i], tools, add_generation_prompt=True)
        through = render(tokenizer, messages[: i + 1], tools)
        if not (full.startswith(before) and full.startswith(through) and pos <= len(before) <= len(through)):
            raise EncodeError(
                "the chat template does not render conversations prefix by prefix "
                f"(turn {i} changes earlier text), so assistant spans cannot be located")
        span = full[len(before):len(through)]
        cut = len(before) + _trained_end(span, eot)
        pieces.append((full[pos:len(before)], False))
        pieces.append((full[len(before):cut], True))
        pos = cut
    pieces.append((full[pos:], False))
    pieces = [(text, trained) for text, trained in pieces if text]
    if "".join(text for text, _ in pieces) != full:  # pragma: no cover - guarded by the checks above
        raise EncodeError("pieces do not add up to the full rendering")
    return pieces


def encode_messages(tokenizer, messages: list[dict], tools=None, max_length: int | None = None,
                    eot: str | None = None) -> Encoded:
    input_ids: list[int] = []
    labels: list[int] = []
    for text, trained in split_conversation(tokenizer, messages, tools, eot):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        input_ids.extend(ids)
        labels.extend(ids if trained else [IGNORE_INDEX] * len(ids))
    if max_length is not None:
        input_ids, labels = input_ids[:max_length], labels[:max_length]
    return Encoded(input_ids, labels)


def encode_record(tokenizer, record: Record, max_length: int | None = None, system: str | None = None,
                  eot: str | None = None) -> Encoded:
    """Ids and labels for one record (truncated to max_length)."""
    encoded = encode_messages(tokenizer, record_messages(record, system), record_tools(record), max_length, eot)
    encoded.record_id = record.meta.id
    return encoded


def encode_records(tokenizer, records: list[Record], max_length: int, system: str | None = None,
                   log=None) -> list[Encoded]:
    """Encode all records; those with nothing left to learn after truncation are dropped (and counted)."""
    eot = end_of_turn_token(tokenizer)
    out, dropped = [], 0
    for record in records:
        encoded = encode_record(tokenizer, record, max_length, system, eot)
        if encoded.trained_tokens == 0:
            dropped += 1
            continue
        out.append(encoded)
    if dropped and log is not None:
        log(f"encode: dropped {dropped} record(s) with no assistant tokens within max_length={max_length}")
    return out
