"""Figures over whole columns of per-record numbers (lengths, answer and question hashes), as
numpy arrays: at 10M records Python lists or a table of them would take gigabytes."""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np

PERCENTILES = (0, 50, 90, 99, 100)  # reported as p0 p50 p90 p99 max


def percentiles(values: Iterable[int] | np.ndarray) -> dict[str, int] | None:
    """Nearest-rank p0/p50/p90/p99/max: integers that are real record lengths, None when empty.
    Sorted as an int64 array (10M lengths as Python ints would take 400 MB)."""
    ordered = np.sort(np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=np.int64))
    if not len(ordered):
        return None
    out = {}
    for p in PERCENTILES:
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        out["max" if p == 100 else f"p{p}"] = int(ordered[rank - 1])
    return out


def histogram(values: Iterable[int] | np.ndarray, edges: list[int]) -> list[int]:
    """Counts per fixed bin [edges[i], edges[i+1]); the last bin takes everything above."""
    values = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=np.int64)
    bins = np.maximum(np.searchsorted(np.asarray(edges, dtype=np.int64), values, side="right") - 1, 0)
    return np.bincount(bins, minlength=len(edges)).tolist()


def answers_with_many_questions(answers: np.ndarray, questions: np.ndarray,
                                least: int) -> list[tuple[int, int, int]]:
    """(answer hash, distinct question hashes, records) of every answer given to at least `least`
    distinct questions, by answer hash. Sorted arrays, not a table per record: a few hundred MB at
    10M records, where a group-by took 1.4 GB."""
    order = np.argsort(answers, kind="stable")
    ordered = answers[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    sizes = np.diff(np.append(starts, len(ordered)))
    in_big = np.flatnonzero(np.repeat(sizes >= least, sizes))  # sorted positions in groups that could qualify
    if not len(in_big):
        return []
    group = np.repeat(np.arange(len(sizes)), sizes)[in_big]
    asked = questions[order[in_big]]
    by = np.lexsort((asked, group))
    group, asked = group[by], asked[by]
    first = np.concatenate(([True], (group[1:] != group[:-1]) | (asked[1:] != asked[:-1])))
    distinct = np.bincount(group[first], minlength=len(sizes))
    return [(int(ordered[starts[g]]), int(distinct[g]), int(sizes[g])) for g in np.flatnonzero(distinct >= least)]
