"""The records the per-record stages kept, held on disk between stages.

A build's memory would otherwise grow with every record it keeps (a Python object, its JSON line
and report summary: about 3 KB each). Workers pack each chunk's kept records into one blob
(`KeptChunk`) and append it to a spill file of their own in the staging folder
(curate.chunk_spill); the parent keeps, per record, only the columns the global stages need:
kind, source, exact-dedup key, tools flag and where the record lies (file and offset: about 40
bytes). Later stages read records back by position: the dedup and mix rejects, the bundle's
lines, the report's summaries. The spills are our own files in our own staging folder, written
and read by this project only (marshal, never pickle).
"""
from __future__ import annotations

import marshal
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np

KIND_RANK = {"identity": 0, "domain": 1, "general": 2}  # the dedup keep rule's order
KIND_NAMES = tuple(KIND_RANK)
SPILL_PREFIX, IDS_NAME = ".kept.spill", ".kept.ids"  # spills are SPILL_PREFIX.<pid>
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
    """One chunk's kept records: a blob of marshalled records and their columns. Once spilled, the
    blob is in a spill file (`at`: its name and the blob's offset) and `blob` is empty."""

    blob: bytes
    sizes: np.ndarray  # int64: bytes of each record in the blob
    keys: np.ndarray  # S16: exact-dedup keys
    kinds: np.ndarray  # int8: KIND_RANK
    tools: np.ndarray  # bool
    ids: bytes = b""  # the records' ids, UTF-8, one after another: dedup names twins by them
    id_sizes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    line_sizes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))  # bytes of each line
    at: tuple[str, int] | None = None

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


def read_blobs(paths: list[Path], files: np.ndarray | None, offsets: np.ndarray, sizes: np.ndarray,
               batch: int = READ_BATCH) -> Iterator[bytes]:
    """The byte ranges at these offsets of these files (`files`: each range's index into `paths`,
    None for paths[0] only), in the order given. Each batch is read in file order (a spill larger
    than the page cache is then read forward, not at random)."""
    fds: dict[int, int] = {}
    try:
        for start in range(0, len(offsets), batch):
            where, size = offsets[start:start + batch], sizes[start:start + batch]
            which = files[start:start + batch] if files is not None else np.zeros(len(where), dtype=np.int16)
            order = np.lexsort((where, which))
            got = [b""] * len(where)
            for i, number, offset, length in zip(order.tolist(), which[order].tolist(), where[order].tolist(),
                                                 size[order].tolist(), strict=True):
                fd = fds.get(number)
                if fd is None:
                    fd = fds[number] = os.open(paths[number], os.O_RDONLY)
                got[i] = os.pread(fd, length, offset)
            yield from got
    finally:
        for fd in fds.values():
            os.close(fd)


class Places(NamedTuple):
    """Where some records lie: the spill files, and each record's file number, offset and size."""

    paths: list[Path]
    files: np.ndarray
    offsets: np.ndarray
    sizes: np.ndarray


def read_kept(places: Places) -> Iterator[Prepared]:
    """The records at these places, in the order given (a worker process opens the spills itself)."""
    for blob in read_blobs(*places):
        yield Prepared(*marshal.loads(blob))


class SpillFiles:
    """Spill files numbered in the order they first come up: a record's place names its file by
    number (curate.chunk_spill writes one file per process)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.paths: list[Path] = []
        self._numbers: dict[str, int] = {}

    def number(self, name: str) -> int:
        if name not in self._numbers:
            self._numbers[name] = len(self.paths)
            self.paths.append(self.folder / name)
        return self._numbers[name]


class KeptStore:
    """Kept records in spill files, with per-record columns in memory; positions are arrival order.
    Ids have a small file of their own, so naming a twin does not read its whole record."""

    def __init__(self, folder: Path):
        self.folder, self.ids_path = folder, folder / IDS_NAME
        self._ids_handle = open(self.ids_path, "wb")
        self.spills = SpillFiles(folder)
        self._parts: list[tuple[np.ndarray, ...]] = []
        self.offsets = self.sizes = self.id_offsets = np.zeros(0, dtype=np.int64)
        self.files = np.zeros(0, dtype=np.int16)
        self.id_sizes = np.zeros(0, dtype=np.int32)
        self.keys = np.zeros(0, dtype="S16")
        self.kinds = np.zeros(0, dtype=np.int8)
        self.sources = np.zeros(0, dtype=np.int32)
        self.tools = np.zeros(0, dtype=bool)
        self.line_sizes = np.zeros(0, dtype=np.int32)  # where each line goes in a bundle file is known ahead

    def add(self, chunk: KeptChunk, source: int) -> None:
        """A spilled chunk's columns (curate.chunk_spill wrote its blob)."""
        if not len(chunk):
            return
        if chunk.at is None:
            raise ValueError("a chunk is added to the store once it is spilled")
        name, start = chunk.at
        self._ids_handle.write(chunk.ids)
        offsets = start + np.cumsum(chunk.sizes) - chunk.sizes
        self._parts.append((chunk.sizes, offsets, np.full(len(chunk), self.spills.number(name), dtype=np.int16),
                            chunk.keys, chunk.kinds, np.full(len(chunk), source, dtype=np.int32), chunk.tools,
                            chunk.id_sizes, chunk.line_sizes))

    def __len__(self) -> int:
        return len(self.sizes)

    def close_writing(self) -> None:
        """Everything is in: the columns become arrays, and the spills are read from now on."""
        self._ids_handle.close()
        if self._parts:
            columns = [np.concatenate(column) for column in zip(*self._parts, strict=True)]
            (self.sizes, self.offsets, self.files, self.keys, self.kinds, self.sources, self.tools, self.id_sizes,
             self.line_sizes) = columns
            self.id_offsets = np.cumsum(self.id_sizes, dtype=np.int64) - self.id_sizes
        self._parts = []

    def places(self, positions: np.ndarray) -> Places:
        return Places(self.spills.paths, self.files[positions], self.offsets[positions], self.sizes[positions])

    def get_many(self, positions: np.ndarray) -> Iterator[Prepared]:
        """The records at these positions, in that order (read with pread, not mmap: mapped pages
        would count in the build's memory once touched)."""
        return read_kept(self.places(positions))

    def ids(self, positions: np.ndarray) -> list[str]:
        return [blob.decode("utf-8", "surrogatepass")
                for blob in read_blobs([self.ids_path], None, self.id_offsets[positions], self.id_sizes[positions])]

    def release(self, *columns: str) -> None:
        """Give back columns no later stage reads (exact-dedup keys, ids' places): 40 MB a million."""
        for name in columns:
            setattr(self, name, getattr(self, name)[:0].copy())

    def discard(self) -> None:
        """Remove the spills (they are never part of a bundle)."""
        if not self._ids_handle.closed:
            self._ids_handle.close()
        for path in (*self.folder.glob(f"{SPILL_PREFIX}.*"), self.ids_path):
            path.unlink(missing_ok=True)
