"""MinHash signatures and their LSH band keys, on disk between the per-record stages and near dedup.

Signatures are the largest thing a build holds (128 x 4 bytes a record: 5 GB at 10M records).
The workers compute each chunk's band keys next to its signatures and write the signatures to a
file of their own (curate.chunk_spill); the parent appends each band's keys to a file of their
own, keeping in memory only whether a record has any shingles and where each chunk's rows lie.
Near dedup then reads one band column at a time (8 bytes a
record) to find candidates, and only the candidates' signature rows to verify them
(curate.dedup.minhash's candidates and verify, unchanged, over the views below).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from curate.dedup.minhash import LshParams
from curate.kept_store import SpillFiles, read_blobs

PREFIX = ".near"
SIG_PREFIX = f"{PREFIX}.sig"  # signature files are SIG_PREFIX.<pid>


class SignatureSpill:
    """Signatures and band keys in arrival order (the KeptStore's positions)."""

    def __init__(self, folder: Path, num_perm: int, params: LshParams):
        self.folder, self.num_perm, self.params = folder, num_perm, params
        self._bands = [open(folder / f"{PREFIX}.band{b}", "wb") for b in range(params.bands)]
        self._valid: list[np.ndarray] = []
        self.valid = np.zeros(0, dtype=bool)
        self.rows = 0
        self.spills = SpillFiles(folder)
        self._chunks: list[tuple[int, int, int]] = []  # (first position, file number, first row)
        self.chunk_first = self.chunk_file = self.chunk_row = np.zeros(0, dtype=np.int64)

    def add(self, at: tuple[str, int], valid: np.ndarray, band_keys: np.ndarray) -> None:
        """A chunk's signatures, written at row at[1] of file at[0] (curate.chunk_spill), and band keys."""
        if not len(valid):
            return
        name, row = at
        self._chunks.append((self.rows, self.spills.number(name), row))
        for b, handle in enumerate(self._bands):
            handle.write(np.ascontiguousarray(band_keys[:, b]).tobytes())
        self._valid.append(valid)
        self.rows += len(valid)

    def close_writing(self) -> None:
        for handle in self._bands:
            handle.close()
        self.valid = np.concatenate(self._valid) if self._valid else np.zeros(0, dtype=bool)
        self._valid = []
        if self._chunks:
            self.chunk_first, self.chunk_file, self.chunk_row = np.array(self._chunks, dtype=np.int64).T.copy()

    def locate(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(file number, row) of each position's signature."""
        chunk = np.searchsorted(self.chunk_first, positions, side="right") - 1
        return self.chunk_file[chunk], self.chunk_row[chunk] + positions - self.chunk_first[chunk]

    def band_columns(self, positions: np.ndarray) -> BandColumns:
        return BandColumns(self, positions)

    def signature_rows(self, positions: np.ndarray) -> SignatureRows:
        return SignatureRows(self, positions)

    def discard(self) -> None:
        for path in self.folder.glob(f"{PREFIX}.*"):
            path.unlink(missing_ok=True)


class BandColumns:
    """keys[index, b] of `candidates`, read from band b's file: one column in memory at a time.
    columns[index] is the same view over the records at `index` only."""

    def __init__(self, spill: SignatureSpill, positions: np.ndarray):
        self.spill, self.positions = spill, positions
        self.shape = (len(positions), spill.params.bands)
        self._last: tuple[np.ndarray, np.ndarray] | None = None  # (index, positions[index]): the same every band

    def __getitem__(self, key: tuple[np.ndarray | slice, int] | np.ndarray) -> np.ndarray | BandColumns:
        if not isinstance(key, tuple):
            return BandColumns(self.spill, self.positions[key])
        index, b = key
        if self._last is None or self._last[0] is not index:
            self._last = (index, self.positions[index])
        return _gather(self.spill.folder / f"{PREFIX}.band{b}", self._last[1])


_READ_AT_ONCE = 1 << 20  # band keys read from a file at a time


def _gather(path: Path, positions: np.ndarray) -> np.ndarray:
    """np.fromfile(path, uint64)[positions], the file read a piece at a time: only the result is
    the column's size."""
    out = np.empty(len(positions), dtype=np.uint64)
    with open(path, "rb") as handle:
        for low in range(0, os.path.getsize(path) // 8, _READ_AT_ONCE):
            piece = np.fromfile(handle, dtype=np.uint64, count=_READ_AT_ONCE)
            inside = np.flatnonzero((positions >= low) & (positions < low + len(piece)))
            out[inside] = piece[positions[inside] - low]
    return out


class SignatureRows:
    """sig[rows] of `verify`, read from the signatures file: only the rows asked for, with pread
    (a memory map would count every page it touched in the build's memory)."""

    def __init__(self, spill: SignatureSpill, positions: np.ndarray):
        self.spill, self.positions = spill, positions
        self.shape = (len(positions), spill.num_perm)

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        width = self.spill.num_perm
        wanted, inverse = np.unique(self.positions[rows], return_inverse=True)
        if not len(wanted):
            return np.zeros((0, width), dtype=np.uint32)
        size = width * 4
        files, places = self.spill.locate(wanted)
        data = b"".join(read_blobs(self.spill.spills.paths, files, places * size, np.full(len(wanted), size)))
        return np.frombuffer(data, dtype=np.uint32).reshape(len(wanted), width)[inverse.reshape(-1)]
