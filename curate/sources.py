"""Reading source files into raw rows, each tagged with its file and line, so nothing goes unaccounted.

JSONL is read line by line (a bad line is a reject, not a crash); JSON arrays, CSV and Parquet
go through the json module and polars. `path#N` sampling happens here, seeded.
"""
from __future__ import annotations

import glob
import hashlib
import json
import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

SUPPORTED = (".jsonl", ".json", ".csv", ".parquet")


class SourceError(ValueError):
    """A source that cannot be read at all (missing file, unknown format)."""


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

    def parsed(self) -> "RawRow":
        """This row with its JSONL bytes parsed (rows from other formats come parsed already)."""
        return self if self.data is None else parse_json_line(self.file, self.line, self.data)


@dataclass
class SourceRead:
    files: dict[str, str] = field(default_factory=dict)  # file label -> sha256
    total: int = 0
    sampled_out: int = 0
    note: str | None = None


def expand(pattern: str, base: Path) -> list[Path]:
    """A path or glob relative to `base`, sorted so builds are deterministic."""
    full = base / pattern
    if any(ch in pattern for ch in "*?["):
        return sorted(Path(p) for p in glob.glob(str(full), recursive=True) if Path(p).is_file())
    return [full]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json_safe(value: Any, depth: int = 0) -> Any:
    """A raw value as JSON can hold it: NaN, bytes, dates and the like become strings."""
    if depth > 200:
        return "<nested too deep>"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v, depth + 1) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _reject_nan(token: str) -> float:
    raise ValueError(f"{token} is not valid JSON")


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
        row = json.loads(text, parse_constant=_reject_nan)
    except (ValueError, RecursionError) as exc:
        return RawRow(label, number, error="bad_json", message=f"invalid JSON: {str(exc)[:200]}", raw=text)
    if not isinstance(row, dict):
        return RawRow(label, number, error="not_an_object",
                      message=f"a record is a JSON object, got {type(row).__name__}", raw=_json_safe(row))
    if _SURROGATE_ESCAPE.search(text) and not _encodable(row):
        return RawRow(label, number, error="bad_unicode",
                      message="holds a lone surrogate escape (\\ud800-\\udfff), which is not text", raw=text)
    return RawRow(label, number, row=row)


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _encodable(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, ValueError, RecursionError):
        return False
    return True


def _split_jsonl(label: str, data: bytes) -> Iterator[RawRow]:
    """Lines are split here and parsed later, in parallel, by `RawRow.parsed`."""
    for number, line in enumerate(data.split(b"\n"), start=1):
        if line.strip():
            yield RawRow(label, number, data=line.rstrip(b"\r"))


def _read_json(label: str, data: bytes) -> Iterator[RawRow]:
    if not data.strip():
        return
    try:
        text = data.decode("utf-8").lstrip("\ufeff")
        value = json.loads(text, parse_constant=_reject_nan)
    except UnicodeDecodeError as exc:
        yield RawRow(label, 1, error="bad_utf8", message=f"file is not UTF-8 at byte {exc.start}")
        return
    except (ValueError, RecursionError) as exc:
        # A .json file that is really JSON Lines is common; read it that way before giving up.
        if b"\n" in data.strip():
            yield from _split_jsonl(label, data)
            return
        yield RawRow(label, 1, error="bad_json", message=f"invalid JSON: {str(exc)[:200]}",
                     raw=data[:2000].decode("utf-8", errors="replace"))
        return
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        yield RawRow(label, 1, error="not_an_object", message="a JSON source is an array of objects", raw=value)
        return
    for index, row in enumerate(value, start=1):
        if isinstance(row, dict):
            yield RawRow(label, index, row=row)
        else:
            yield RawRow(label, index, error="not_an_object",
                         message=f"a record is a JSON object, got {type(row).__name__}", raw=row)


def _read_table(label: str, path: Path, suffix: str) -> Iterator[RawRow]:
    import polars as pl

    try:
        if suffix == ".csv":
            frame = pl.read_csv(path, infer_schema=False, encoding="utf8-lossy")
            first = 2  # line 1 is the header
        else:
            frame = pl.read_parquet(path)
            first = 1
    except Exception as exc:  # polars raises many types; the file as a whole is unreadable
        yield RawRow(label, 1, error="bad_file", message=f"cannot read {suffix[1:]}: {str(exc).splitlines()[0][:200]}")
        return
    for index, row in enumerate(frame.iter_rows(named=True)):
        yield RawRow(label, first + index, row={k: v for k, v in row.items() if v is not None})


def _check(path: Path, label: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise SourceError(f"{label}: unsupported file type '{suffix}' (use {', '.join(SUPPORTED)})")
    if not path.is_file():
        raise SourceError(f"{label}: no such file")
    return suffix


def _scan_jsonl(path: Path, every: int = 0) -> tuple[str, int, list[tuple[int, int]]]:
    """sha256, number of non-blank lines and, with `every`, (byte offset, line number) of every
    `every`-th non-blank line: cut points for LineRanges. Streamed: a large file is never held whole."""
    digest = hashlib.sha256()
    count = offset = 0
    cuts: list[tuple[int, int]] = []
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            digest.update(line)
            if not line.isspace():
                if every and count % every == 0:
                    cuts.append((offset, number))
                count += 1
            offset += len(line)
    return digest.hexdigest(), count, cuts


@dataclass(frozen=True)
class LineRange:
    """A run of JSONL lines named by byte range, so a worker reads them itself instead of the
    parent reading and shipping each line."""

    path: str
    label: str
    start: int
    end: int
    first_line: int

    def rows(self) -> list[RawRow]:
        with open(self.path, "rb") as handle:
            handle.seek(self.start)
            data = handle.read(self.end - self.start)
        out = []
        for number, line in enumerate(data.split(b"\n"), start=self.first_line):
            if line and not line.isspace():
                out.append(RawRow(self.label, number, data=line.rstrip(b"\r")))
        return out


def _stream_jsonl(path: Path, label: str, keep: set[int] | None) -> Iterator[RawRow]:
    """Non-blank lines as unparsed rows; `keep` selects rows by their position among them."""
    position = 0
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if line.isspace() or not line:
                continue
            if keep is None or position in keep:
                yield RawRow(label, number, data=line.rstrip(b"\r\n"))
            position += 1


def read_file(path: Path, label: str) -> tuple[str, list[RawRow]]:
    """sha256 of the file and all its rows; raises SourceError when missing or of unknown type."""
    suffix = _check(path, label)
    if suffix == ".jsonl":
        digest, _, _ = _scan_jsonl(path)
        return digest, list(_stream_jsonl(path, label, None))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{label}: cannot read: {exc.strerror or exc}") from None
    rows = list(_read_json(label, data)) if suffix == ".json" else list(_read_table(label, path, suffix))
    return sha256_bytes(data), rows


def label_for(path: Path, base: Path) -> str:
    """A path as the manifest names it: relative to the recipe folder, with forward slashes."""
    try:
        return Path(path).resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        import os

        return Path(os.path.relpath(Path(path).resolve(), base.resolve())).as_posix()


def read_source(pattern: str, sample: int | None, base: Path, seed: int) -> tuple[SourceRead, Iterator[RawRow]]:
    """A source's files and counts, and an iterator over its (sampled) rows in file order.

    `path#N` takes a seeded sample of N rows without replacement across all the source's files;
    N at or above the source's size takes everything and says so in `note`.
    """
    files = expand(pattern, base)
    if not files:
        raise SourceError(f"{pattern}: no file matches")
    out = SourceRead()
    loaded: list[tuple[Path, str, list[RawRow] | None, int]] = []
    for path in files:
        label = label_for(path, base)
        if _check(path, label) == ".jsonl":
            digest, count, _ = _scan_jsonl(path)
            loaded.append((path, label, None, count))
        else:
            digest, rows = read_file(path, label)
            loaded.append((path, label, rows, len(rows)))
        out.files[label] = digest
    out.total = sum(count for *_, count in loaded)
    chosen: set[int] | None = None
    if sample is not None:
        if sample >= out.total:
            out.note = f"asked for {sample} records, the source has {out.total}: took all of them"
        else:
            chosen = set(random.Random(f"{seed}:{pattern}").sample(range(out.total), sample))
            out.sampled_out = out.total - sample

    def rows() -> Iterator[RawRow]:
        offset = 0
        for path, label, parsed, count in loaded:
            local = None if chosen is None else {i - offset for i in chosen if offset <= i < offset + count}
            if parsed is None:
                yield from _stream_jsonl(path, label, local)
            else:
                yield from (row for i, row in enumerate(parsed) if local is None or i in local)
            offset += count

    return out, rows()


def read_source_batches(pattern: str, sample: int | None, base: Path, seed: int,
                        size: int) -> tuple[SourceRead, Iterator[list[RawRow] | LineRange]]:
    """Like read_source, in batches of about `size` rows; whole JSONL files come as LineRanges."""
    files = expand(pattern, base)
    if sample is not None or any(_check(path, label_for(path, base)) != ".jsonl" for path in files):
        info, rows = read_source(pattern, sample, base, seed)
        return info, _batched(rows, size)
    info = SourceRead()
    ranges: list[LineRange] = []
    for path in files:
        label = label_for(path, base)
        digest, count, cuts = _scan_jsonl(path, every=size)
        info.files[label] = digest
        info.total += count
        ends = [offset for offset, _ in cuts[1:]] + [path.stat().st_size]
        ranges += [LineRange(str(path), label, start, end, line) for (start, line), end in zip(cuts, ends)]
    return info, iter(ranges)


def _batched(rows: Iterator[RawRow], size: int) -> Iterator[list[RawRow]]:
    batch: list[RawRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def load_file(path: Path):
    """Records and rejects of one source file, shape detected per row (for `curate stats FILE`)."""
    from curate.shapes import rows_to_records

    path = Path(path)
    digest, rows = read_file(path, path.as_posix())
    return rows_to_records(rows, kind="general")
