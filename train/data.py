"""Examples, their order and batching: a deterministic stream of micro-batches across epochs.

An example is a list of encoded records: one record when padding, several when packing. The order
of epoch e is a permutation drawn from (seed, e) alone, so a resumed run can jump to micro-batch g
without replaying anything, and every rank of a distributed run agrees on the order.
"""
from __future__ import annotations

import math

import torch

from train.encode import IGNORE_INDEX, Encoded
from train.packing import pack_records, packed_row

Example = list[Encoded]


def make_examples(encoded: list[Encoded], packing: bool, max_length: int, seed: int) -> list[Example]:
    """One example per record, or packs built once from a seeded shuffle of the records."""
    if not packing:
        return [[item] for item in encoded]
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(encoded), generator=generator).tolist()
    return pack_records([encoded[i] for i in order], max_length)


class BatchStream:
    """Micro-batch g of the whole run, for this rank: epoch g // per_epoch, slot g % per_epoch."""

    def __init__(self, examples: list[Example], batch_size: int, seed: int, rank: int = 0, world: int = 1):
        self.examples = examples
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world = world
        per_rank = len(examples) // world if world > 1 else len(examples)
        if per_rank == 0:
            raise ValueError(f"{len(examples)} training examples cannot be shared by {world} processes")
        self.per_rank = per_rank
        self.batches_per_epoch = math.ceil(per_rank / batch_size)
        self._epoch = -1
        self._order: list[int] = []

    def _epoch_order(self, epoch: int) -> list[int]:
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 1000003 + epoch)
            order = torch.randperm(len(self.examples), generator=generator).tolist()
            self._order = order[self.rank::self.world][: self.per_rank]
            self._epoch = epoch
        return self._order

    def batch(self, g: int) -> list[Example]:
        epoch, slot = divmod(g, self.batches_per_epoch)
        order = self._epoch_order(epoch)
        return [self.examples[i] for i in order[slot * self.batch_size:(slot + 1) * self.batch_size]]


def collate(batch: list[Example], pad_id: int, packing: bool, pad_to: int | None = None) -> dict[str, torch.Tensor]:
    """Pad the batch to its longest row (or to `pad_to`); packed rows carry position ids and no 2D mask."""
    rows = []
    for example in batch:
        if packing:
            rows.append(packed_row(example))
        else:
            item = example[0]
            rows.append((item.input_ids, item.labels, list(range(len(item.input_ids)))))
    width = pad_to or max(len(ids) for ids, _, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    position_ids = torch.zeros((len(rows), width), dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, (ids, labs, pos) in enumerate(rows):
        n = len(ids)
        input_ids[r, :n] = torch.tensor(ids)
        labels[r, :n] = torch.tensor(labs)
        attention_mask[r, :n] = 1
        # Padding gets its own restarting positions: a separate (ignored) sequence in packed mode.
        position_ids[r, :n] = torch.tensor(pos)
        position_ids[r, n:] = torch.arange(width - n)
    out = {"input_ids": input_ids, "labels": labels}
    if packing:
        out["position_ids"] = position_ids
    else:
        out["attention_mask"] = attention_mask
    return out


def count_targets(labels: torch.Tensor) -> int:
    """Tokens that contribute to the loss (labels shifted by one, as the model predicts the next token)."""
    return int((labels[:, 1:] != IGNORE_INDEX).sum())
