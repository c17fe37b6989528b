"""One pass over a JSONL file before anything reads it: its sha256, its number of non-blank lines,
and where to cut it into LineRanges for the workers.

Read in blocks: sha256 runs in a thread (curate.hashing) while the line ends are found with numpy,
so a gigabyte takes about a second instead of three (a Python loop over lines). Lines are what
iterating the file in binary mode gives: split after each b"\\n", the last one without it; a line is
blank when bytes.isspace() says so.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from curate.hashing import BackgroundHash

SCAN_BLOCK = 1 << 22  # bytes read at a time
_IS_SPACE = np.zeros(256, dtype=bool)
_IS_SPACE[list(b" \t\n\r\x0b\x0c")] = True  # what bytes.isspace() calls whitespace


class LineScan:
    """Non-blank lines counted block by block; with `every`, the (byte offset, line number) of
    every `every`-th of them. A line may run over several blocks."""

    def __init__(self, every: int = 0):
        self.every, self.count, self.lines = every, 0, 0
        self.cuts: list[tuple[int, int]] = []
        self.offset = 0  # of the next block in the file
        self.open_start = 0  # where the unfinished line began
        self.open_blank = True  # its bytes so far are all whitespace (or there are none)

    def feed(self, block: bytes) -> None:
        size = len(block)
        ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10) + 1
        if len(ends):
            starts = np.concatenate(([0], ends[:-1]))
            blank = _IS_SPACE[np.frombuffer(block, dtype=np.uint8)[starts]]
            for i in np.flatnonzero(blank).tolist():  # few lines start with whitespace: look at each
                blank[i] = block[starts[i]:ends[i]].isspace()
            blank[0] = self.open_blank and block[:ends[0]].isspace()
            places = self.offset + starts
            places[0] = self.open_start
            self._count(places, ~blank)
            self.open_start, self.open_blank = self.offset + int(ends[-1]), True
            block = block[int(ends[-1]):]  # the start of the next line: short
        self.open_blank = self.open_blank and (not block or block.isspace())
        self.offset += size

    def finish(self) -> None:
        """The last line, when the file does not end with b"\\n"."""
        if self.offset > self.open_start:
            self._count(np.array([self.open_start]), np.array([not self.open_blank]))

    def _count(self, places: np.ndarray, kept: np.ndarray) -> None:
        rows = np.flatnonzero(kept)
        if self.every:
            cut = rows[(self.count + np.arange(len(rows))) % self.every == 0]
            self.cuts += zip(places[cut].tolist(), (self.lines + 1 + cut).tolist())
        self.count += len(rows)
        self.lines += len(kept)


def scan_jsonl(path: Path, every: int = 0) -> tuple[str, int, list[tuple[int, int]]]:
    """sha256, number of non-blank lines and, with `every`, (byte offset, line number) of every
    `every`-th non-blank line: cut points for LineRanges. Streamed: a large file is never held whole."""
    scan = LineScan(every)
    with open(path, "rb") as handle, BackgroundHash() as digest:
        while block := handle.read(SCAN_BLOCK):
            digest.update(block)
            scan.feed(block)
        hexdigest = digest.hexdigest()
    scan.finish()
    return hexdigest, scan.count, scan.cuts
