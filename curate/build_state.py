"""What a build's stages hand each other: one object, filled in stage by stage.

Each stage (curate.stage_read, curate.stage_select, curate.stage_write) reads what earlier stages
left here and adds its own part; curate.pipeline lists them in order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from curate.prepare import ChunkResult, Prepared, Settings, SourceContext
from curate.progress import Progress
from curate.sinks import Counts, RejectSink
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
    source_stats: dict[int, SourceStats] = field(default_factory=dict)
    identity_info: dict | None = None
    identity_rows: list = field(default_factory=list)  # rendered identity records and rejects
    sources: list[OpenSource] = field(default_factory=list)
    kept: list[Prepared] = field(default_factory=list)  # in priority order once `order` ran
    signatures: list[np.ndarray] = field(default_factory=list)
    sig: np.ndarray | None = None
    near_kept_ids: list[str] = field(default_factory=list)
    domain: list[Prepared] = field(default_factory=list)
    general: list[Prepared] = field(default_factory=list)
    achieved: float | None = None
    train_idx: list[int] = field(default_factory=list)
    val_idx: list[int] = field(default_factory=list)
    files: dict[str, FileEntry] = field(default_factory=dict)
    manifest: Manifest | None = None
    records_pass: Any = None

    @property
    def seed(self) -> int:
        return self.recipe.split.seed

    @property
    def final(self) -> list[Prepared]:
        return self.domain + self.general

    def take(self, result: ChunkResult, source_index: int) -> None:
        """One chunk's rejects to the rejects file, its kept records and signatures kept here."""
        for reject in result.rejects:
            self.sink.add(reject, source_index)
        self.kept.extend(result.kept)
        self.signatures.append(result.signatures)

    def drop(self, removed: dict[int, tuple[int, float] | int], stage: str, reason: str) -> None:
        """Dedup's removals to the rejects file, each naming the record it duplicates."""
        kept = self.kept
        for index, value in sorted(removed.items()):
            twin, score = value if isinstance(value, tuple) else (value, 1.0)
            similarity = "" if stage == "exact_dedup" else f" (estimated Jaccard {score:.2f})"
            self.sink.add_kept(kept[index], stage, reason, f"duplicate of {kept[twin].id}{similarity}", kept[twin].id)

    def keep_only(self, removed) -> None:
        """Drop the removed indices from the kept records (and their signatures, if still needed)."""
        remaining = [i for i in range(len(self.kept)) if i not in removed]
        self.kept = [self.kept[i] for i in remaining]
        if self.sig is not None:
            self.sig = self.sig[remaining]
