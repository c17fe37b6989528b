"""What a build's stages hand each other: one object, filled in stage by stage.

Records live on disk between stages (curate.kept_store, curate.signature_spill); the state holds
their positions and counts.

Each stage (curate.stage_read, curate.stage_select, curate.stage_write) reads what earlier stages
left here and adds its own part; curate.pipeline lists them in order.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from curate.chunk_spill import ProcessSpill
from curate.file_chores import FileChores
from curate.kept_store import KeptStore
from curate.prepare import ChunkResult, Settings, SourceContext
from curate.progress import Progress
from curate.signature_spill import SignatureSpill
from curate.sinks import Counts, RejectSink
from curate.stats import largest_clusters
from schemas.manifest import FileEntry, Manifest, SourceStats
from schemas.recipe import Recipe


@dataclass
class OpenSource:
    """A source ready to read: its context for the per-record stages and its batches of rows."""

    ctx: SourceContext
    batches: Iterator[Any]
    rows: int  # rows it will yield (sampling applied)


@dataclass
class BuildState:
    recipe: Recipe
    staging: Path
    workers: int | None
    log: Callable[[str], None]
    progress: Progress
    counts: Counts
    sink: RejectSink
    settings: Settings
    store: KeptStore
    near_spill: SignatureSpill | None  # signatures and band keys, when near dedup is on
    chores: FileChores  # syncs of finished files and removals of spills, in the background
    own_spill: ProcessSpill  # where chunks prepared in this process are spilled (curate.chunk_spill)
    source_stats: dict[int, SourceStats] = field(default_factory=dict)
    identity_info: dict | None = None
    identity_rows: list = field(default_factory=list)  # rendered identity records and rejects
    sources: list[OpenSource] = field(default_factory=list)
    # From `order` on: the surviving records' store positions, in priority order
    kept: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    shown_clusters: frozenset[str] = frozenset()  # kept records of the near-dup clusters the report shows
    domain: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # store positions
    general: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    achieved: float | None = None
    train_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # into `final`
    val_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    files: dict[str, FileEntry] = field(default_factory=dict)
    manifest: Manifest | None = None
    records_pass: Any = None

    @property
    def seed(self) -> int:
        return self.recipe.split.seed

    @property
    def final(self) -> np.ndarray:
        """Store positions of the bundle's records: domain (identity included), then general."""
        return np.concatenate((self.domain, self.general))

    def take(self, result: ChunkResult, source_index: int) -> None:
        """One chunk's rejects to the rejects file, its kept records to the store, its signatures'
        places and band keys to the near-dedup spill. A chunk that comes unspilled (prepared here,
        or by another engine) is spilled here first."""
        for reject in result.rejects:
            self.sink.add(reject, source_index)
        if not len(result.kept):
            return
        result = self.own_spill.put(result)
        self.store.add(result.kept, source_index)
        if self.near_spill is not None:
            assert result.sig_at is not None and result.valid is not None and result.band_keys is not None
            self.near_spill.add(result.sig_at, result.valid, result.band_keys)

    def drop(self, removed: dict[int, tuple[int, float] | int], stage: str, reason: str) -> None:
        """Dedup's removals (positions in `kept`) to the rejects file, each naming the record it duplicates."""
        items = sorted((index, value if isinstance(value, tuple) else (value, 1.0)) for index, value in removed.items())
        where = np.array([index for index, _ in items], dtype=np.int64)
        twin_ids = self.store.ids(self.kept[np.array([twin for _, (twin, _) in items], dtype=np.int64)])
        if reason == "near_duplicate":  # the clusters the report shows: their members are kept as examples
            self.shown_clusters = frozenset(rid for rid, _ in largest_clusters(Counter(twin_ids)))
            self.sink.tally.wanted = self.shown_clusters
        records = self.store.get_many(self.kept[where])
        for (_, (_, score)), record, twin_id in zip(items, records, twin_ids, strict=True):
            similarity = "" if stage == "exact_dedup" else f" (estimated Jaccard {score:.2f})"
            self.sink.add_kept(record, stage, reason, f"duplicate of {twin_id}{similarity}", twin_id)

    def keep_only(self, removed) -> None:
        """Drop the removed positions from `kept`."""
        survives = np.ones(len(self.kept), dtype=bool)
        survives[np.fromiter(removed, dtype=np.int64, count=len(removed))] = False
        self.kept = self.kept[survives]
