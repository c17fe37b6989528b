"""Where a prepared chunk's kept records and signatures go: to spill files of the process that
prepared it, written there, so only their places travel back to the parent.

Sending them back through the pool's pipe and writing them from the parent cost the parent more
CPU than the writes themselves (a 1M-record build moved 2 GB through pipes). Each process appends
to its own pair of files in the staging folder (named by its pid, so forked workers never share
one); chunks that come back unspilled (identity records, one process, another engine) are spilled
by the parent the same way. curate.kept_store and curate.signature_spill read them by place.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from curate.bundle import write_at
from curate.dedup.minhash import _EMPTY
from curate.kept_store import SPILL_PREFIX
from curate.prepare import ChunkResult, SourceContext, prepare_rows
from curate.raw_row import RawRow
from curate.signature_spill import SIG_PREFIX
from curate.sources import LineRange


class ProcessSpill:
    """This process's spill files: kept records' blobs, and signature rows."""

    def __init__(self, folder: Path):
        self.kept_path = folder / f"{SPILL_PREFIX}.{os.getpid()}"
        self.sig_path = folder / f"{SIG_PREFIX}.{os.getpid()}"
        self.kept_bytes = self.sig_rows = 0

    def put(self, result: ChunkResult) -> ChunkResult:
        """Write the chunk's blob and signatures here; the result keeps only their places."""
        kept = result.kept
        if kept.at is None:
            kept.at = (self.kept_path.name, self.kept_bytes)
            self.kept_bytes += write_at(self.kept_path, kept.blob, self.kept_bytes, create=True)
            kept.blob = b""
        signatures = result.signatures
        if result.sig_at is None and signatures.shape[1] and len(signatures):
            result.sig_at = (self.sig_path.name, self.sig_rows)
            result.valid = signatures[:, 0] != _EMPTY
            data = np.ascontiguousarray(signatures, dtype=np.uint32).tobytes()
            write_at(self.sig_path, data, self.sig_rows * signatures.shape[1] * 4, create=True)
            self.sig_rows += len(signatures)
            result.signatures = signatures[:0]
        return result


_OWN: ProcessSpill | None = None  # a prepare worker's spill, made in the worker after the fork


def start_spilling(folder: Path) -> None:
    global _OWN
    _OWN = ProcessSpill(folder)


def prepare_and_spill(rows: list[RawRow] | LineRange, ctx: SourceContext) -> ChunkResult:
    """Pool entry point: prepare_rows, its kept records and signatures then written here."""
    assert _OWN is not None
    return _OWN.put(prepare_rows(rows, ctx))
