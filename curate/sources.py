"""Reading a source's files into raw rows, each tagged with its file and line, so nothing goes unaccounted.

JSONL is streamed line by line (a bad line is a reject, not a crash) and, for the workers, cut
into byte ranges; JSON arrays, CSV and Parquet are read whole by curate.readers; datasets (hub
names, dataset folders) by curate.dataset_sources. `path#N`
sampling happens here, seeded. Paths and globs resolve through curate.paths.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from curate.dataset_sources import dataset_ref, read_dataset
from curate.line_scan import scan_jsonl
from curate.paths import expand, label_for
from curate.raw_row import RawRow, SourceError, SourceRead  # SourceRead lives there: curate.dataset_sources fills one too
from curate.readers import read_csv, read_json, read_parquet
from curate.shapes import rows_to_records  # one way: curate.shapes never imports this module

SUPPORTED = (".jsonl", ".json", ".csv", ".parquet")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check(path: Path, label: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise SourceError(f"{label}: unsupported file type '{suffix}' (use {', '.join(SUPPORTED)})")
    if not path.is_file():
        raise SourceError(f"{label}: no such file")
    return suffix


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
        digest, _, _ = scan_jsonl(path)
        return digest, list(_stream_jsonl(path, label, None))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{label}: cannot read: {exc.strerror or exc}") from None
    if suffix == ".json":
        rows = list(read_json(label, data))
    elif suffix == ".csv":
        rows = list(read_csv(label, data))
    else:
        rows = list(read_parquet(label, path))
    return sha256_bytes(data), rows


def read_source(pattern: str, sample: int | None, base: Path, seed: int) -> tuple[SourceRead, Iterator[RawRow]]:
    """A source's files and counts, and an iterator over its (sampled) rows in file order.

    `path#N` takes a seeded sample of N rows without replacement across all the source's files;
    N at or above the source's size takes everything and says so in `note`. A dataset (a hub name,
    a dataset folder) is read by curate.dataset_sources with the same rules.
    """
    ref = dataset_ref(pattern, base)
    if ref is not None:
        return read_dataset(ref, pattern, sample, base, seed)
    files = expand(pattern, base)
    if not files:
        raise SourceError(f"{pattern}: no file matches")
    out = SourceRead()
    loaded: list[tuple[Path, str, list[RawRow] | None, int]] = []
    for path in files:
        label = label_for(path, base)
        if _check(path, label) == ".jsonl":
            digest, count, _ = scan_jsonl(path)
            loaded.append((path, label, None, count))
        else:
            digest, rows = read_file(path, label)
            loaded.append((path, label, rows, len(rows)))
        out.files[label] = digest
    out.total = sum(count for *_, count in loaded)
    positions = out.sample(sample, seed, pattern)
    chosen = None if positions is None else set(positions)

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
    is_dataset = dataset_ref(pattern, base) is not None
    files = [] if is_dataset else expand(pattern, base)
    if is_dataset or sample is not None or any(_check(path, label_for(path, base)) != ".jsonl" for path in files):
        info, rows = read_source(pattern, sample, base, seed)
        return info, _batched(rows, size)
    info = SourceRead()
    ranges: list[LineRange] = []
    for path in files:
        label = label_for(path, base)
        digest, count, cuts = scan_jsonl(path, every=size)
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
    path = Path(path)
    digest, rows = read_file(path, path.as_posix())
    return rows_to_records(rows, kind="general")
