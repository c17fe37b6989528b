"""Near dedup's two heavy steps spread over worker processes: finding each band's candidate pairs,
and verifying the candidates against their signatures.

The workers are forked after the inputs are set here, so the band files' positions and the
candidate pairs are inherited, not sent; each task is a band number or a range of pairs, and the
results are merged in order: the same pairs and scores as curate.dedup.minhash's candidates and
verify in one process.
"""
from __future__ import annotations

import contextlib
import multiprocessing
from typing import Any, Iterator

import numpy as np

from curate.dedup.minhash import band_pairs, pair_array, sorted_unique, verify_part

_INHERITED: dict[str, Any] = {}  # set before the pool forks; read in the workers


@contextlib.contextmanager
def _forked(processes: int, **inputs: Any) -> Iterator[Any]:
    _INHERITED.update(inputs)
    try:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            yield pool
    finally:
        _INHERITED.clear()


def _band(b: int) -> np.ndarray:
    columns, index = _INHERITED["columns"], _INHERITED["index"]
    return band_pairs(columns[index, b], index, columns.shape[0], _INHERITED["fanout"])


def pooled_candidates(columns: Any, valid: np.ndarray, processes: int, fanout: int = 8) -> np.ndarray:
    """curate.dedup.minhash.candidates with the bands shared out; `columns[index, b]` gives band b's
    keys (a BandColumns reads them from the band's file)."""
    codes = np.zeros(0, dtype=np.int64)
    with _forked(processes, columns=columns, index=np.flatnonzero(valid), fanout=fanout) as pool:
        for found in pool.imap(_band, range(columns.shape[1])):
            codes = sorted_unique(np.concatenate((codes, found)))  # unique band by band: memory stays bounded
    return pair_array(codes, columns.shape[0])


def _verify(bounds: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    start, end = bounds
    return verify_part(_INHERITED["rows"], _INHERITED["pairs"][start:end], _INHERITED["threshold"])


def pooled_verify(rows: Any, pairs: np.ndarray, threshold: float, processes: int,
                  chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """curate.dedup.minhash.verify with the pairs shared out in chunks; `rows[i]` gives signature rows."""
    bounds = [(start, min(start + chunk, len(pairs))) for start in range(0, len(pairs), chunk)]
    if not bounds:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0)
    with _forked(processes, rows=rows, pairs=pairs, threshold=threshold) as pool:
        parts = pool.map(_verify, bounds)
    return np.concatenate([p for p, _ in parts]), np.concatenate([s for _, s in parts])
