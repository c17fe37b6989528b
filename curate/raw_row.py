"""One input row as read (RawRow), what reading a source found (SourceRead), and the JSON value
checks every text format shares.

A row carries its file and physical line from the moment it is read, so every record and every
reject can say where it came from; a row that cannot be parsed is a RawRow with an error, never an
exception. JSONL lines are parsed here, late (`RawRow.parsed`), so the parsing runs in the workers.
"""
from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass, field
from typing import Any, Iterator


class SourceError(ValueError):
    """A source that cannot be read at all (missing file, unknown format)."""


@dataclass
class SourceRead:
    """What reading a source found, for the manifest: its files with their sha256, and counts."""

    files: dict[str, str] = field(default_factory=dict)  # file label -> sha256
    total: int = 0
    sampled_out: int = 0
    note: str | None = None

    def sample(self, wanted: int | None, seed: int, pattern: str) -> list[int] | None:
        """The 0-based positions `#N` keeps, sorted (None: all of them), seeded by the recipe's seed and
        the source's pattern so that a source samples the same rows wherever it sits in the recipe."""
        if wanted is None:
            return None
        if wanted >= self.total:
            self.note = f"asked for {wanted} records, the source has {self.total}: took all of them"
            return None
        self.sampled_out = self.total - wanted
        return sorted(random.Random(f"{seed}:{pattern}").sample(range(self.total), wanted))


@dataclass(slots=True)
class RawRow:
    """One input row as read: a dict, or the reason it could not be parsed."""

    file: str
    line: int
    row: Any = None
    error: str | None = None  # reason code when the row is unreadable
    message: str | None = None
    raw: Any = None  # the undecodable text, kept for the rejects file
    data: bytes | None = None  # a JSONL line not parsed yet: parsing happens in the worker
    index: int | None = None  # 1-based position in a JSON array, CSV or Parquet file (None for JSONL)
    shares_line: bool = False  # another record of the file starts on the same line (a one-line JSON array)

    def parsed(self) -> "RawRow":
        """This row with its JSONL bytes parsed (rows from other formats come parsed already)."""
        return self if self.data is None else parse_json_line(self.file, self.line, self.data)

    @property
    def id(self) -> str:
        """'file:line', or 'file:line#index' when the line holds the start of several records."""
        return f"{self.file}:{self.line}#{self.index}" if self.shares_line else f"{self.file}:{self.line}"


def json_safe(value: Any, depth: int = 0) -> Any:
    """A raw value as JSON can hold it: NaN, bytes, dates and the like become strings."""
    if depth > 200:
        return "<nested too deep>"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, depth + 1) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def reject_nan(token: str) -> float:
    """json's parse_constant: NaN and Infinity are not JSON, so a row holding one is a reject."""
    raise ValueError(f"{token} is not valid JSON")


DECODER = json.JSONDecoder(parse_constant=reject_nan)


def parse_json_line(label: str, number: int, data: bytes) -> RawRow:
    """One JSONL line: invalid UTF-8 and invalid JSON become rows with an error, never exceptions."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return RawRow(label, number, error="bad_utf8", message=f"not UTF-8 at byte {exc.start}",
                      raw=data.decode("utf-8", errors="replace"))
    if number == 1:
        text = text.lstrip("\ufeff")
    try:
        # json.loads says a BOM is a BOM; the shared decoder (json.loads with an option makes one a call) would not
        row = json.loads(text, parse_constant=reject_nan) if text.startswith("\ufeff") else DECODER.decode(text)
    except (ValueError, RecursionError) as exc:
        return RawRow(label, number, error="bad_json", message=f"invalid JSON: {str(exc)[:200]}", raw=text)
    if not isinstance(row, dict):
        return RawRow(label, number, error="not_an_object",
                      message=f"a record is a JSON object, got {type(row).__name__}", raw=json_safe(row))
    if SURROGATE_ESCAPE.search(text) and not encodable(row):
        return RawRow(label, number, error="bad_unicode",
                      message="holds a lone surrogate escape (\\ud800-\\udfff), which is not text", raw=text)
    return RawRow(label, number, row=row)


SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def encodable(value: Any) -> bool:
    """Whether `value` can be written back as UTF-8 JSON (a lone surrogate cannot)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, ValueError, RecursionError):
        return False
    return True


def split_jsonl(label: str, data: bytes) -> Iterator[RawRow]:
    """Lines are split here and parsed later, in parallel, by `RawRow.parsed`."""
    for number, line in enumerate(data.split(b"\n"), start=1):
        if line.strip():
            yield RawRow(label, number, data=line.rstrip(b"\r"))
