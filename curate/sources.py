"""Reading source files into raw rows, each tagged with its file and line, so nothing goes unaccounted.

JSONL is read line by line (a bad line is a reject, not a crash). JSON arrays are decoded one
element at a time, so each record knows the physical line it starts on; CSV goes through the csv
module record by record, so one malformed row or undecodable byte rejects that row only; Parquet
through polars. `path#N` sampling happens here, seeded.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

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
    index: int | None = None  # 1-based position in a JSON array, CSV or Parquet file (None for JSONL)
    shares_line: bool = False  # another record of the file starts on the same line (a one-line JSON array)

    def parsed(self) -> "RawRow":
        """This row with its JSONL bytes parsed (rows from other formats come parsed already)."""
        return self if self.data is None else parse_json_line(self.file, self.line, self.data)

    @property
    def id(self) -> str:
        """'file:line', or 'file:line#index' when the line holds the start of several records."""
        return f"{self.file}:{self.line}#{self.index}" if self.shares_line else f"{self.file}:{self.line}"


@dataclass
class SourceRead:
    files: dict[str, str] = field(default_factory=dict)  # file label -> sha256
    total: int = 0
    sampled_out: int = 0
    note: str | None = None


GLOB_BUDGET = 200_000  # directory entries one glob may look at


def expand(pattern: str, base: Path, roots: Sequence[Path] | None = None) -> list[Path]:
    """A path or glob relative to `base`, sorted so builds are deterministic.

    Globs follow glob.glob's rules (`**` is any depth, names starting with '.' only match a part
    that starts with '.'), except that `**` never descends into a symlinked folder, so a symlink
    loop cannot make it run forever, and a glob that looks at more than GLOB_BUDGET entries stops
    with a SourceError. With `roots` (the recipe's folder first, then --data-root folders), the
    path, or a glob's fixed leading folder and then each of its matches, must resolve (symlinks
    followed) inside one of them, else SourceError naming the resolved path.
    """
    full = base / pattern
    if not any(ch in pattern for ch in "*?["):
        if roots is not None:
            inside(full, roots, pattern)
        return [full]
    parts = Path(pattern).parts
    fixed = next(i for i, part in enumerate(parts) if any(ch in part for ch in "*?["))
    start = base.joinpath(*parts[:fixed])
    if roots is not None:
        inside(start, roots, Path(*parts[:fixed]).as_posix() if fixed else ".")
    budget = [GLOB_BUDGET]
    matches = sorted({p for p in _glob(start, parts[fixed:], budget, pattern) if p.is_file()})
    if roots is not None:
        for match in matches:
            inside(match, roots, Path(os.path.relpath(match, base)).as_posix())
    return matches


def _glob(folder: Path, parts: Sequence[str], budget: list[int], pattern: str, depth: int = 0) -> Iterator[Path]:
    if depth > 64:
        raise SourceError(f"{pattern}: the glob reaches folders nested more than 64 deep; narrow it")
    if not parts:
        yield folder
        return
    part, rest = parts[0], parts[1:]
    if part == "**":
        yield from _glob(folder, rest, budget, pattern, depth + 1)
        for entry in _entries(folder, budget, pattern):
            if entry.name.startswith("."):
                continue
            if not rest:
                yield folder / entry.name
            if entry.is_dir(follow_symlinks=False):
                yield from _glob(folder / entry.name, parts, budget, pattern, depth + 1)
    elif any(ch in part for ch in "*?["):
        for entry in _entries(folder, budget, pattern):
            if (part.startswith(".") or not entry.name.startswith(".")) and fnmatch.fnmatchcase(entry.name, part):
                yield from _glob(folder / entry.name, rest, budget, pattern, depth + 1)
    else:
        yield from _glob(folder / part, rest, budget, pattern, depth + 1)


def _entries(folder: Path, budget: list[int], pattern: str) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except OSError:
        return []
    budget[0] -= len(entries)
    if budget[0] < 0:
        raise SourceError(f"{pattern}: the glob looks at more than {GLOB_BUDGET} files and folders; narrow it")
    return entries


def inside(path: Path, roots: Sequence[Path], shown: str) -> Path:
    """`path` resolved, symlinks followed; SourceError unless it lies inside one of `roots`."""
    try:
        resolved = Path(path).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
        raise SourceError(f"{shown}: cannot resolve (a symlink loop?)") from None
    if any(resolved.is_relative_to(root) for root in roots):
        return resolved
    where = "the recipe's folder" + (" and the --data-root folders" if len(roots) > 1 else "")
    raise SourceError(f"{shown} resolves to {resolved}, outside {where}; pass --data-root DIR to allow it")


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


_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder(parse_constant=_reject_nan)
_BAD_BYTE = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of a byte that is not UTF-8


def _json_elements(text: str) -> tuple[bool, list[tuple[int, int, Any]]]:
    """Whether the document is an array, and (start, end, value) of each element (of the one value
    otherwise), decoded one at a time so each keeps its offset. Raises ValueError as json.loads does."""
    space = _JSON_SPACE.match
    scan = _DECODER.scan_once
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


def _read_json(label: str, data: bytes) -> Iterator[RawRow]:
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
            yield from _split_jsonl(label, data)
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
    some_escape = _SURROGATE_ESCAPE.search(text) is not None
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
            yield RawRow(label, line, error="not_an_object", message=message, raw=_json_safe(value), index=index,
                         shares_line=shared)
        elif some_escape and _SURROGATE_ESCAPE.search(text, start, end) and not _encodable(value):
            yield RawRow(label, line, error="bad_unicode", raw=text[start:end], index=index, shares_line=shared,
                         message="holds a lone surrogate escape (\\ud800-\\udfff), which is not text")
        else:
            yield RawRow(label, line, row=value, index=index, shares_line=shared)


def _read_csv(label: str, data: bytes) -> Iterator[RawRow]:
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


def _read_parquet(label: str, path: Path) -> Iterator[RawRow]:
    import polars as pl

    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises many types; the file as a whole is unreadable
        yield RawRow(label, 1, error="bad_file", message=f"cannot read parquet: {str(exc).splitlines()[0][:200]}")
        return
    # Parquet has no lines: `line` is the 1-based row number, as `index` is.
    for index, row in enumerate(frame.iter_rows(named=True), start=1):
        yield RawRow(label, index, row={k: v for k, v in row.items() if v is not None}, index=index)


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
    if suffix == ".json":
        rows = list(_read_json(label, data))
    elif suffix == ".csv":
        rows = list(_read_csv(label, data))
    else:
        rows = list(_read_parquet(label, path))
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
