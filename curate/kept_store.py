"""The records the per-record stages kept, held on disk between stages.

A build's memory would otherwise grow with every record it keeps (a Python object, its JSON line
and report summary: about 3 KB each). Workers pack each chunk's kept records into one blob
(`KeptChunk`, also far cheaper to send between processes than objects); the parent appends the
blobs to a spill file in the staging folder and keeps, per record, only the columns the global
stages need: kind, source, exact-dedup key, tools flag and where the record lies in the spill
(about 40 bytes). Later stages read records back by position: the dedup and mix rejects, the
bundle's lines, the report's summaries. The spill is our own file in our own staging folder,
written and read by this module only (marshal, never pickle).
"""
from __future__ import annotations

import marshal
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

KIND_RANK = {"identity": 0, "domain": 1, "general": 2}  # the dedup keep rule's order
KIND_NAMES = tuple(KIND_RANK)
SPILL_NAME, IDS_NAME = ".kept.spill", ".kept.ids"
READ_BATCH = 20_000  # records read back at a time, in file order: ~30 MB


@dataclass(slots=True)
class Prepared:
    """A record that passed the per-record stages, in the compact form the global stages need."""

    line: bytes  # the record's bundle line (compact JSON, UTF-8): written as is, never decoded
    id: str
    file: str
    row: int | None
    kind: str
    source: int
    lang: str | None
    key: bytes
    summary: tuple  # what the report needs of this record, see curate.stats_pass.summarise
    tools: bool = False  # defines or calls tools: the bundle then writes uniform lines (schemas.record)


@dataclass
class KeptChunk:
    """One chunk's kept records: a blob of marshalled records and their columns."""

    blob: bytes
    sizes: np.ndarray  # int64: bytes of each record in the blob
    keys: np.ndarray  # S16: exact-dedup keys
    kinds: np.ndarray  # int8: KIND_RANK
    tools: np.ndarray  # bool
    ids: bytes = b""  # the records' ids, UTF-8, one after another: dedup names twins by them
    id_sizes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    line_sizes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))  # bytes of each line

    def __len__(self) -> int:
        return len(self.sizes)

    @classmethod
    def pack(cls, items: list[Prepared]) -> KeptChunk:
        parts = [marshal.dumps((p.line, p.id, p.file, p.row, p.kind, p.source, p.lang, p.key, p.summary, p.tools))
                 for p in items]
        ids = [p.id.encode("utf-8", "surrogatepass") for p in items]
        return cls(blob=b"".join(parts), sizes=np.fromiter(map(len, parts), dtype=np.int64, count=len(parts)),
                   ids=b"".join(ids), id_sizes=np.fromiter(map(len, ids), dtype=np.int32, count=len(ids)),
                   keys=np.array([p.key for p in items], dtype="S16"),
                   kinds=np.fromiter((KIND_RANK[p.kind] for p in items), dtype=np.int8, count=len(items)),
                   tools=np.fromiter((p.tools for p in items), dtype=bool, count=len(items)),
                   line_sizes=np.fromiter((len(p.line) for p in items), dtype=np.int32, count=len(items)))


def read_blobs(path: Path, offsets: np.ndarray, sizes: np.ndarray, batch: int = READ_BATCH) -> Iterator[bytes]:
    """The byte ranges of a file at these offsets, in the order given. Each batch is read in file
    order (a spill larger than the page cache is then read forward, not at random)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        for start in range(0, len(offsets), batch):
            where, size = offsets[start:start + batch], sizes[start:start + batch]
            order = np.argsort(where, kind="stable")
            got = [b""] * len(where)
            for i, offset, length in zip(order.tolist(), where[order].tolist(), size[order].tolist(), strict=True):
                got[i] = os.pread(fd, length, offset)
            yield from got
    finally:
        os.close(fd)


def read_kept(path: Path, offsets: np.ndarray, sizes: np.ndarray) -> Iterator[Prepared]:
    """The records at these places of a spill, in the order given (a worker process opens the
    spill itself)."""
    for blob in read_blobs(path, offsets, sizes):
        yield Prepared(*marshal.loads(blob))


class KeptStore:
    """Kept records in a spill file, with per-record columns in memory; positions are arrival order.
    Ids have a small file of their own, so naming a twin does not read its whole record."""

    def __init__(self, folder: Path):
        self.path, self.ids_path = folder / SPILL_NAME, folder / IDS_NAME
        self._handle, self._ids_handle = open(self.path, "wb"), open(self.ids_path, "wb")
        self._parts: list[tuple[np.ndarray, ...]] = []
        self.offsets = self.sizes = self.id_offsets = np.zeros(0, dtype=np.int64)
        self.id_sizes = np.zeros(0, dtype=np.int32)
        self.keys = np.zeros(0, dtype="S16")
        self.kinds = np.zeros(0, dtype=np.int8)
        self.sources = np.zeros(0, dtype=np.int32)
        self.tools = np.zeros(0, dtype=bool)
        self.line_sizes = np.zeros(0, dtype=np.int32)  # where each line goes in a bundle file is known ahead

    def add(self, chunk: KeptChunk, source: int) -> None:
        if not len(chunk):
            return
        self._handle.write(chunk.blob)
        self._ids_handle.write(chunk.ids)
        self._parts.append((chunk.sizes, chunk.keys, chunk.kinds, np.full(len(chunk), source, dtype=np.int32),
                            chunk.tools, chunk.id_sizes, chunk.line_sizes))

    def __len__(self) -> int:
        return len(self.sizes)

    def close_writing(self) -> None:
        """Everything is in: the columns become arrays, and the spill is read from now on."""
        self._handle.close()
        self._ids_handle.close()
        if self._parts:
            columns = [np.concatenate(column) for column in zip(*self._parts, strict=True)]
            self.sizes, self.keys, self.kinds, self.sources, self.tools, self.id_sizes, self.line_sizes = columns
            self.offsets = np.cumsum(self.sizes) - self.sizes
            self.id_offsets = np.cumsum(self.id_sizes, dtype=np.int64) - self.id_sizes
        self._parts = []

    def get_many(self, positions: np.ndarray) -> Iterator[Prepared]:
        """The records at these positions, in that order (read with pread, not mmap: mapped pages
        would count in the build's memory once touched)."""
        return read_kept(self.path, self.offsets[positions], self.sizes[positions])

    def ids(self, positions: np.ndarray) -> list[str]:
        return [blob.decode("utf-8", "surrogatepass")
                for blob in read_blobs(self.ids_path, self.id_offsets[positions], self.id_sizes[positions])]

    def release(self, *columns: str) -> None:
        """Give back columns no later stage reads (exact-dedup keys, ids' places): 40 MB a million."""
        for name in columns:
            setattr(self, name, getattr(self, name)[:0].copy())

    def discard(self) -> None:
        """Remove the spill (it is never part of a bundle)."""
        for handle in (self._handle, self._ids_handle):
            if not handle.closed:
                handle.close()
        self.path.unlink(missing_ok=True)
        self.ids_path.unlink(missing_ok=True)
