"""The plain rows most data is made of, made into Records in one validation call.

An alpaca or query/response row whose fields are plain strings (no history) fixes the Record it
makes; building that Record's fields here and validating them in one pydantic call costs a third
of validating the shape's model, making each turn, and then the Record (curate.shapes). Anything
else, and anything this validation refuses, returns None and goes that longer way, which also
writes every reject's message.
"""
from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from curate.raw_row import RawRow
from schemas.record import Record

_FIELDS = {"alpaca": ("instruction", "input", "output"), "query_response": ("query", None, "response")}


def _text(value: Any) -> bool:
    return type(value) is str  # what a strict str field accepts from JSON; subclasses go the long way


def quick_record(row: dict[str, Any], shape: str, raw: RawRow, *, kind: str, system: str | None,
                 lang: str | None) -> Record | None:
    """The Record `row_to_record` would return for `row`, or None when it is not a plain row."""
    fields = _FIELDS.get(shape)
    if fields is None:
        return None
    question, extra, answer = row.get(fields[0]), row.get(fields[1]) if fields[1] else None, row.get(fields[2])
    own_system, tag = row.get("system"), row.get("tag") if shape == "query_response" else None
    if not (_text(question) and _text(answer) and (extra is None or _text(extra))
            and (own_system is None or _text(own_system)) and (tag is None or _text(tag))
            and row.get("history") is None):
        return None
    if extra:
        question = f"{question}\n{extra}"
    if not question.strip() or not answer.strip():
        return None
    messages = [{"role": "system", "content": own_system or system}] if own_system or system else []
    messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    meta = {"id": raw.id, "source": raw.file, "line": raw.line, "index": raw.index,
            "lang": lang or (tag if tag in ("zh", "en") else None), "kind": kind}
    try:
        return Record.model_validate({"messages": messages, "meta": meta})
    except ValidationError:
        return None
