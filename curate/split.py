"""Train/val split, stratified by kind so val holds identity questions too, then shuffled."""
from __future__ import annotations

import numpy as np


def split_indices(kinds: list[str], val_ratio: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, val) index lists, each in a seeded shuffled order (numpy's PCG64: fast at 1M)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    labels = np.array(kinds)
    train: list[np.ndarray] = []
    val: list[np.ndarray] = []
    for kind in sorted(set(kinds)):
        members = rng.permutation(np.flatnonzero(labels == kind))
        take = round(len(members) * val_ratio)
        if val_ratio > 0 and take == 0 and len(members) >= 2:
            take = 1
        val.append(members[:take])
        train.append(members[take:])
    return (rng.permutation(np.concatenate(train)).tolist() if train else [],
            rng.permutation(np.concatenate(val)).tolist() if val else [])
