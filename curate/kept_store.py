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
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

KIND_RANK = {"identity": 0, "domain": 1, "general": 2}  # the dedup keep rule's order
KIND_NAMES = tuple(KIND_RANK)
SPILL_NAME = ".kept.spill"


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

    def __len__(self) -> int:
        return len(self.sizes)

    @classmethod
    def pack(cls, items: list[Prepared]) -> KeptChunk:
        parts = [marshal.dumps((p.line, p.id, p.file, p.row, p.kind, p.source, p.lang, p.key, p.summary, p.tools))
                 for p in items]
        return cls(blob=b"".join(parts), sizes=np.fromiter(map(len, parts), dtype=np.int64, count=len(parts)),
                   keys=np.array([p.key for p in items], dtype="S16"),
                   kinds=np.fromiter((KIND_RANK[p.kind] for p in items), dtype=np.int8, count=len(items)),
                   tools=np.fromiter((p.tools for p in items), dtype=bool, count=len(items)))


def read_kept(path: Path, offsets: np.ndarray, sizes: np.ndarray) -> Iterator[Prepared]:
    """The records at these places of a spill, in the order given: for a worker process, which
    opens the spill itself."""
    fd = os.open(path, os.O_RDONLY)
    try:
        for offset, size in zip(offsets.tolist(), sizes.tolist(), strict=True):
            yield Prepared(*marshal.loads(os.pread(fd, size, offset)))
    finally:
        os.close(fd)


class KeptStore:
    """Kept records in a spill file, with per-record columns in memory; positions are arrival order."""

    def __init__(self, folder: Path):
        self.path = folder / SPILL_NAME
        self._handle = open(self.path, "wb")
        self._parts: list[tuple[np.ndarray, ...]] = []
        self._fd: int | None = None
        self.offsets = self.sizes = np.zeros(0, dtype=np.int64)
        self.keys = np.zeros(0, dtype="S16")
        self.kinds = np.zeros(0, dtype=np.int8)
        self.sources = np.zeros(0, dtype=np.int32)
        self.tools = np.zeros(0, dtype=bool)

    def add(self, chunk: KeptChunk, source: int) -> None:
        if not len(chunk):
            return
        self._handle.write(chunk.blob)
        self._parts.append((chunk.sizes, chunk.keys, chunk.kinds, np.full(len(chunk), source, dtype=np.int32),
                            chunk.tools))

    def __len__(self) -> int:
        return len(self.sizes)

    def close_writing(self) -> None:
        """Everything is in: the columns become arrays and the spill is mapped for reading."""
        self._handle.close()
        if self._parts:
            columns = [np.concatenate(column) for column in zip(*self._parts, strict=True)]
            self.sizes, self.keys, self.kinds, self.sources, self.tools = columns
            self.offsets = np.concatenate(([0], np.cumsum(self.sizes)[:-1])).astype(np.int64)
        self._parts = []
        # read with pread, not mmap: mapped pages would count in the build's memory once touched
        self._fd = os.open(self.path, os.O_RDONLY)

    def get(self, position: int) -> Prepared:
        assert self._fd is not None
        size = int(self.sizes[position])
        return Prepared(*marshal.loads(os.pread(self._fd, size, int(self.offsets[position]))))

    def discard(self) -> None:
        """Remove the spill (it is never part of a bundle)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if not self._handle.closed:
            self._handle.close()
        self.path.unlink(missing_ok=True)
