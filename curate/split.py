"""Train/val split, stratified by kind so val holds identity questions too, then shuffled."""
from __future__ import annotations

import random


def split_indices(kinds: list[str], val_ratio: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, val) index lists, each in a seeded shuffled order."""
    rng = random.Random(f"{seed}:split")
    train: list[int] = []
    val: list[int] = []
    for kind in sorted(set(kinds)):
        members = [i for i, k in enumerate(kinds) if k == kind]
        rng.shuffle(members)
        take = round(len(members) * val_ratio)
        if val_ratio > 0 and take == 0 and len(members) >= 2:
            take = 1
        val += members[:take]
        train += members[take:]
    rng.shuffle(train)
    rng.shuffle(val)
    return train, val
