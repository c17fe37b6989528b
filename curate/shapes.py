"""Raw rows -> canonical Records: detect or apply the declared shape, validate, name every failure.

Each failure becomes a Reject whose reason code says what kind of problem it is and whose
message names the field, so `curate validate` and the rejects file read the same way.
"""
from __future__ import annotations

import re
from typing import Any, Iterable

from pydantic import ValidationError

from curate.quick_rows import quick_record
from curate.raw_row import RawRow, json_safe
from schemas.manifest import Reject
from schemas.record import Record, RecordMeta
from schemas.shapes import SHAPES, detect_shape

PLACEHOLDER = re.compile(r"\{\{\s*(?:name|author|NAME|AUTHOR|AUTHOER)\s*\}\}|<NAME>|<AUTHOR>")

_TURN_REASONS = (
    ("ends on", "ends_not_on_assistant"),
    ("out of order", "role_order"),
    ("must start", "role_order"),
    ("system turn", "role_order"),
    ("last assistant turn is empty", "empty_answer"),
    ("user turn is empty", "empty_question"),
    ("no messages", "empty_conversation"),
)


def _reason_for(exc: ValidationError) -> tuple[str, str]:
    """A reason code and a one-line message naming the field, from a pydantic error."""
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"] if p not in ("function-after[_check_turns()]",))
    kind = err["type"]
    msg = err["msg"].removeprefix("Value error, ")
    if kind == "missing":
        code = "missing_field"
    elif kind.endswith("_type") or kind in ("model_type", "list_type", "dict_type", "union_tag_invalid"):
        code = "wrong_type"
    elif kind in ("too_short",):
        code = "empty_field"
    else:
        code = next((c for key, c in _TURN_REASONS if key in msg), "invalid")
    where = f"field '{field}': " if field else ""
    return code, f"{where}{msg}"


def _may_hold_placeholder(text: str) -> bool:
    """What every PLACEHOLDER match contains: a substring test first spares most texts the regex."""
    return "{{" in text or "<NAME>" in text or "<AUTHOR>" in text


def _apply_columns(row: dict[str, Any], columns: dict[str, str] | None) -> dict[str, Any]:
    if not columns:
        return row
    mapped = {k: v for k, v in row.items() if k not in columns.values()}
    for shape_field, column in columns.items():
        if column in row:
            mapped[shape_field] = row[column]
    return mapped


def _empty_answer(messages) -> bool:
    last = messages[-1] if messages else None
    return last is not None and last.role == "assistant" and not last.content.strip() and not last.tool_calls


def row_to_record(raw: RawRow, *, kind: str, shape: str | None = None,
                  columns: dict[str, str] | None = None, system: str | None = None,
                  lang: str | None = None, check_placeholders: bool = True) -> Record | Reject:
    """One raw row as a Record, or a Reject saying which field is wrong and why."""

    def reject(stage: str, reason: str, message: str) -> Reject:
        return Reject(source=raw.file, line=raw.line, index=raw.index, stage=stage, reason=reason, message=message,
                      raw=json_safe(raw.row if raw.row is not None else raw.raw), id=raw.id, kind=kind)

    raw = raw.parsed()
    if raw.error:
        return reject("read", raw.error, raw.message or raw.error)
    row = _apply_columns(raw.row, columns)
    name = shape or detect_shape(row)
    if name is None:
        keys = ", ".join(sorted(map(str, row))[:8]) or "none"
        return reject("validate", "unknown_shape",
                      f"keys ({keys}) match no shape: alpaca, query/response, messages or sharegpt")
    record = quick_record(row, name, raw, kind=kind, system=system, lang=lang)
    if record is None:
        record = _validated(raw, row, name, kind=kind, system=system, lang=lang)
        if isinstance(record, tuple):
            return reject("validate", *record)
    if check_placeholders and any(_may_hold_placeholder(m.content) and PLACEHOLDER.search(m.content)
                                  for m in record.messages):
        return reject("validate", "unrendered_placeholder",
                      f"{name}: holds an identity placeholder such as {{{{name}}}} or <NAME>; "
                      "list the file under identity.templates to render it")
    return record


def _validated(raw: RawRow, row: dict[str, Any], name: str, *, kind: str, system: str | None,
               lang: str | None) -> Record | tuple[str, str]:
    """The row through its shape's model and the Record's validation: a Record, or (reason, message)."""
    try:
        parsed = SHAPES[name].model_validate(row)
        messages = parsed.to_messages()
        tools = parsed.tools_json()
    except ValidationError as exc:
        code, message = _reason_for(exc)
        return code, f"{name}: {message}"
    except (ValueError, TypeError) as exc:  # ToolFormatError carries its own reason code
        return getattr(exc, "reason", "invalid"), f"{name}: {exc}"
    if system and messages[0].role != "system":
        messages = [type(messages[0])(role="system", content=system)] + messages
    if _empty_answer(messages):
        return "empty_answer", f"{name}: the answer is empty"
    tag = parsed.__dict__.get("tag")  # not getattr: a pydantic model without the field raises inside, slowly
    meta = RecordMeta(id=raw.id, source=raw.file, line=raw.line, index=raw.index,
                      lang=lang or (tag if tag in ("zh", "en") else None), kind=kind)
    try:
        return Record(messages=messages, tools=tools, meta=meta)
    except ValidationError as exc:
        code, message = _reason_for(exc)
        return code, f"{name}: {message}"


def rows_to_records(rows: Iterable[RawRow], *, kind: str, shape: str | None = None,
                    columns: dict[str, str] | None = None,
                    system: str | None = None) -> tuple[list[Record], list[Reject]]:
    records: list[Record] = []
    rejects: list[Reject] = []
    for raw in rows:
        out = row_to_record(raw, kind=kind, shape=shape, columns=columns, system=system)
        (rejects if isinstance(out, Reject) else records).append(out)
    return records, rejects
