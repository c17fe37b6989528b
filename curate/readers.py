"""Readers for the formats read whole: JSON arrays, CSV and Parquet, each row tagged with the
physical line it starts on and its 1-based index, so a reject names the line to look at.

JSON arrays are decoded one element at a time, so each record knows its line; CSV goes through
the csv module record by record, so one malformed row or undecodable byte rejects that row only.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

from curate.raw_row import DECODER, SURROGATE_ESCAPE, RawRow, encodable, json_safe, split_jsonl

_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_BAD_BYTE = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of a byte that is not UTF-8


def _json_elements(text: str) -> tuple[bool, list[tuple[int, int, Any]]]:
    """Whether the document is an array, and (start, end, value) of each element (of the one value
    otherwise), decoded one at a time so each keeps its offset. Raises ValueError as json.loads does."""
    space = _JSON_SPACE.match
    scan = DECODER.scan_once
    blank = " \t\n\r"
    pos = space(text, 0).end()
    items: list[tuple[int, int, Any]] = []
    try:
        if not text.startswith("[", pos):
            value, end = scan(text, pos)
            items.append((pos, end, value))
            is_array = False
        else:
            is_array = True
            pos = space(text, pos + 1).end()
            if text.startswith("]", pos):
                end = pos + 1
            else:
                append = items.append
                while True:
                    value, end = scan(text, pos)
                    append((pos, end, value))
                    char = text[end:end + 1]
                    if char in blank and char:
                        end = space(text, end).end()
                        char = text[end:end + 1]
                    if char == ",":
                        pos = end + 1
                        if text[pos:pos + 1] in blank:
                            pos = space(text, pos).end()
                    elif char == "]":
                        end += 1
                        break
                    else:
                        raise json.JSONDecodeError("Expecting ',' delimiter or ']'", text, end)
    except StopIteration as exc:
        raise json.JSONDecodeError("Expecting value", text, exc.value) from None
    if space(text, end).end() != len(text):
        raise json.JSONDecodeError("Extra data", text, space(text, end).end())
    return is_array, items


def _undecodable(label: str, line: int, text: str, start: int = 0, end: int | None = None,
                 index: int | None = None) -> RawRow | None:
    """A row rejected as bad_utf8 when text[start:end] (decoded with surrogateescape) holds a byte
    that is not UTF-8, naming its byte offset; the raw text keeps U+FFFD in its place."""
    end = len(text) if end is None else end
    bad = _BAD_BYTE.search(text, start, end)
    if bad is None:
        return None
    offset = len(text[start:bad.start()].encode("utf-8", "surrogateescape"))
    raw = text[start:end].encode("utf-8", "surrogateescape").decode("utf-8", errors="replace")
    return RawRow(label, line, error="bad_utf8", message=f"not UTF-8 at byte {offset}", raw=raw, index=index)


def read_json(label: str, data: bytes) -> Iterator[RawRow]:
    """A JSON array (or one object): each record tagged with the physical line its value starts on
    and its 1-based index. A file that is not one JSON value but has several lines is read as JSONL."""
    if not data.strip():
        return
    text = data.decode("utf-8", errors="surrogateescape").lstrip("\ufeff")
    try:
        is_array, items = _json_elements(text)
    except (ValueError, RecursionError) as exc:
        # A .json file that is really JSON Lines is common; read it that way before giving up.
        if b"\n" in data.strip():
            yield from split_jsonl(label, data)
            return
        yield (_undecodable(label, 1, text)
               or RawRow(label, 1, error="bad_json", message=f"invalid JSON: {str(exc)[:200]}", raw=text[:2000]))
        return
    line = 1
    counted = 0
    starts = []
    for start, _, _ in items:
        line += text.count("\n", counted, start)
        counted = start
        starts.append(line)
    some_bad = _BAD_BYTE.search(text) is not None
    some_escape = SURROGATE_ESCAPE.search(text) is not None
    previous = 0
    following = starts[1:] + [0]
    for number, ((start, end, value), line, after) in enumerate(zip(items, starts, following), start=1):
        index = number if is_array else None
        shared = is_array and (line == previous or line == after)
        previous = line
        if isinstance(value, dict) and not some_bad and not some_escape:
            yield RawRow(label, line, row=value, index=index, shares_line=shared)
            continue
        bad = _undecodable(label, line, text, start, end, index) if some_bad else None
        if bad is not None:
            bad.shares_line = shared
            yield bad
        elif not isinstance(value, dict):
            message = (f"a record is a JSON object, got {type(value).__name__}" if is_array
                       else "a JSON source is an array of objects")
            yield RawRow(label, line, error="not_an_object", message=message, raw=json_safe(value), index=index,
                         shares_line=shared)
        elif some_escape and SURROGATE_ESCAPE.search(text, start, end) and not encodable(value):
            yield RawRow(label, line, error="bad_unicode", raw=text[start:end], index=index, shares_line=shared,
                         message="holds a lone surrogate escape (\\ud800-\\udfff), which is not text")
        else:
            yield RawRow(label, line, row=value, index=index, shares_line=shared)


def read_csv(label: str, data: bytes) -> Iterator[RawRow]:
    """CSV with a header line, record by record: each row is tagged with the physical line it starts
    on (a quoted field may span lines) and its 1-based index among the data rows. A row with more
    fields than the header, broken quoting or bytes that are not UTF-8 is rejected alone; after a
    broken row, reading resumes on the line after the one it started on."""
    import csv
    import sys

    text = data.decode("utf-8", errors="surrogateescape").lstrip("\ufeff")
    lines = text.split("\n")
    last = lines.pop()
    lines = [line + "\n" for line in lines] + ([last] if last else [])
    header: list[str] | None = None
    index = 0
    first = 0  # 0-based line the current reader started on
    limit = csv.field_size_limit()
    csv.field_size_limit(sys.maxsize)  # a long answer is the length filter's business, not a read error
    try:
        while first < len(lines):
            reader = csv.reader(map(lines.__getitem__, range(first, len(lines))), strict=True)
            while True:
                start = first + reader.line_num  # 0-based line this record starts on
                try:
                    fields = next(reader)
                except StopIteration:
                    first = len(lines)
                    break
                except csv.Error as exc:
                    error: str | None = f"malformed CSV: {exc}"
                    fields, stop = [], start + 1  # reject the record's first line, resume after it
                else:
                    error, stop = None, first + reader.line_num
                    if not fields or (len(fields) == 1 and not fields[0].strip() and stop - start == 1):
                        continue  # a blank line
                raw_text = "".join(lines[start:stop])
                if header is None:
                    bad = _undecodable(label, start + 1, raw_text)
                    if error or bad:
                        yield RawRow(label, start + 1, error="bad_file", raw=bad.raw if bad else raw_text,
                                     message=f"cannot read the CSV header: {error or bad.message}")
                        return
                    header = _column_names(fields)
                    continue
                index += 1
                bad = _undecodable(label, start + 1, raw_text, index=index)
                if bad is not None:
                    yield bad
                elif error or len(fields) > len(header):
                    yield RawRow(label, start + 1, error="bad_csv", raw=raw_text, index=index,
                                 message=error or f"row has {len(fields)} fields, the header has {len(header)}")
                else:
                    yield RawRow(label, start + 1, row={k: v for k, v in zip(header, fields) if v != ""},
                                 index=index)
                if error:
                    first = stop
                    break
    finally:
        csv.field_size_limit(limit)


def _column_names(fields: list[str]) -> list[str]:
    """Header names, a repeated one renamed as polars does ('x', 'x_duplicated_0', ...)."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for name in fields:
        if name in seen:
            seen[name] += 1
            name = f"{name}_duplicated_{seen[name] - 1}"
        else:
            seen[name] = 0
        names.append(name)
    return names


def read_parquet(label: str, path: Path) -> Iterator[RawRow]:
    import polars as pl

    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises many types; the file as a whole is unreadable
        yield RawRow(label, 1, error="bad_file", message=f"cannot read parquet: {str(exc).splitlines()[0][:200]}")
        return
    # Parquet has no lines: `line` is the 1-based row number, as `index` is.
    for index, row in enumerate(frame.iter_rows(named=True), start=1):
        yield RawRow(label, index, row={k: v for k, v in row.items() if v is not None}, index=index)
