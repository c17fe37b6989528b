"""Packing several encoded records into one row, without letting them see each other.

Each record keeps its own position ids (restarting at 0). transformers 5 reads a row whose position
ids restart as several independent sequences when no 2D attention mask is passed (see
`masking_utils.find_packed_sequence_indices`), and builds a block-diagonal causal mask for
eager/sdpa. The test `test_train_packing` checks that a record's logits inside a pack equal its
logits alone, which is what guards this assumption.
"""
from __future__ import annotations

from train.encode import IGNORE_INDEX, Encoded


def pack_records(encoded: list[Encoded], max_length: int) -> list[list[Encoded]]:
    """Greedy, order-preserving packing: records go into the current row until the next does not fit."""
    packs: list[list[Encoded]] = []
    current: list[Encoded] = []
    used = 0
    for item in encoded:
        n = len(item.input_ids)
        if current and used + n > max_length:
            packs.append(current)
            current, used = [], 0
        current.append(item)
        used += n
    if current:
        packs.append(current)
    return packs


def packed_row(pack: list[Encoded]) -> tuple[list[int], list[int], list[int]]:
    """(input_ids, labels, position_ids) for one pack; each record's first token is never a target."""
    ids: list[int] = []
    labels: list[int] = []
    positions: list[int] = []
    for item in pack:
        ids.extend(item.input_ids)
        record_labels = list(item.labels)
        record_labels[0] = IGNORE_INDEX  # would otherwise be predicted from the previous record
        labels.extend(record_labels)
        positions.extend(range(len(item.input_ids)))
    return ids, labels, positions
