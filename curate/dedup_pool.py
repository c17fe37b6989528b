"""Near dedup band by band: each band's candidate pairs are verified against their signatures as
soon as they are found, so only the pairs that pass are kept across bands (at 10M records the
candidates of all bands together took gigabytes; those that pass are a small share). With several
processes the bands are shared out over forked workers, which inherit the inputs instead of being
sent them.

The result is that of curate.dedup.minhash's verify(candidates(...)): the same pairs (a pair
found in several bands is kept once) with the same scores.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from curate.dedup.minhash import band_pairs, pair_array, verify_part
from curate.process_pool import fork_pool, ordered_map

_INHERITED: dict[str, Any] = {}  # set before the pool forks; read in the workers


def verified_band(columns: Any, index: np.ndarray, rows: Any, n: int, b: int, threshold: float,
                  chunk: int, fanout: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Band b's candidate pairs that reach the threshold, as codes i * n + j, with their scores;
    `columns[:, b]` gives the band's keys of the records at `index`, `rows[i]` signature rows."""
    codes = band_pairs(columns[:, b], index, n, fanout)
    passed, scores = [np.zeros(0, dtype=np.int64)], [np.zeros(0)]
    for start in range(0, len(codes), chunk):
        part, score = verify_part(rows, pair_array(codes[start:start + chunk], n), threshold)
        passed.append(part[:, 0] * n + part[:, 1])
        scores.append(score)
    return np.concatenate(passed), np.concatenate(scores)


def _verified_band(b: int) -> tuple[np.ndarray, np.ndarray]:
    return verified_band(b=b, **_INHERITED)


def near_pairs(columns: Any, valid: np.ndarray, rows: Any, threshold: float, processes: int,
               chunk: int, fanout: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """verify(rows, candidates(columns, valid), threshold): (pairs, scores), pairs in code order."""
    n, index = columns.shape[0], np.flatnonzero(valid)
    codes, scores = [np.zeros(0, dtype=np.int64)], [np.zeros(0)]
    # columns[index]: the records' places in the band files are looked up once, here, not in each worker
    _INHERITED.update(columns=columns[index], index=index, rows=rows, n=n, threshold=threshold, chunk=chunk,
                      fanout=fanout)
    bands = columns.shape[1]
    try:
        with fork_pool(processes) as pool:  # every band in flight at once: its result is small
            for passed, score in ordered_map(pool, _verified_band, ((b,) for b in range(bands)), window=bands):
                codes.append(passed)
                scores.append(score)
    finally:
        _INHERITED.clear()
    all_codes, all_scores = np.concatenate(codes), np.concatenate(scores)
    order = np.argsort(all_codes, kind="stable")
    all_codes, all_scores = all_codes[order], all_scores[order]
    first = np.concatenate(([True], all_codes[1:] != all_codes[:-1])) if len(all_codes) else np.zeros(0, bool)
    return pair_array(all_codes[first], n), all_scores[first]
