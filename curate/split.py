"""Train/val split, stratified by kind so val holds identity questions too, then shuffled."""
from __future__ import annotations

import numpy as np


def split_indices(kinds: list[str] | np.ndarray, val_ratio: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) index arrays, each in a seeded shuffled order (numpy's PCG64: fast at 1M).

    Kinds are taken in sorted order; the build passes small integer codes that sort as the kinds'
    names do (10M Python strings or ints would cost ~0.5 GB)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    labels = np.asarray(kinds)
    train: list[np.ndarray] = []
    val: list[np.ndarray] = []
    for kind in np.unique(labels).tolist():
        members = rng.permutation(np.flatnonzero(labels == kind))
        take = round(len(members) * val_ratio)
        if val_ratio > 0 and take == 0 and len(members) >= 2:
            take = 1
        val.append(members[:take])
        train.append(members[take:])
    empty = np.zeros(0, dtype=np.int64)
    return (rng.permutation(np.concatenate(train)) if train else empty,
            rng.permutation(np.concatenate(val)) if val else empty)
