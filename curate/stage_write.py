"""The build's last stages: write train.jsonl and val.jsonl with the report's figures (from the
summaries the per-record stages made: no second parse), then the manifest (counts that add up).
"""
from __future__ import annotations

import json
from concurrent.futures import Executor
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from curate import __version__, stage_read
from curate.build_state import BuildState
from curate.bundle import PlacedFile, write_at, write_chunks
from curate.kept_store import Places, read_kept
from curate.process_pool import fork_pool, ordered_map, worker_count
from curate.sinks import STAGES
from curate.stats_pass import StatsPass, new_pass
from schemas.bundle import manifest_id
from schemas.manifest import FileEntry, Manifest, RatioStats, StageStats
from schemas.recipe import RATIO_BAND
from schemas.record import uniform_line

SEGMENT = 10_000  # records one write task reads back: their lines and their share of the report's figures


def write(state: BuildState) -> None:
    """train.jsonl and val.jsonl in split order (every line with the same keys when any record uses
    tools), each record read back once: its line to the file, its summary to the report's figures.

    Segments of the split order are read by worker processes (a million records is ten seconds of
    reading alone); their figures are merged in order, so the files and figures are those of one
    process reading all. Each line's size is known, so each segment's place in its file is too:
    workers write their segments there themselves, and only the figures come back (sending a
    gigabyte of lines to this process and writing it from here was most of this stage's time).
    Uniform lines (tools) are remade, their sizes unknown: those segments come back to be written."""
    final, store = state.final, state.store
    uniform = bool(store.tools[final].any())
    wanted = state.shown_clusters
    state.records_pass = records_pass = new_pass(state.identity_info, wanted)
    processes = worker_count(state.workers, len(final), stage_read.PARALLEL_FROM)
    with fork_pool(processes) as pool, state.progress.stage("write", len(final)) as progress:
        def take(count: int, figures: StatsPass) -> None:
            records_pass.merge(figures)
            progress.advance(count)

        for split, indices in (("train", state.train_idx), ("val", state.val_idx)):
            parts = np.split(final[indices], range(SEGMENT, len(indices), SEGMENT))
            path = state.staging / f"{split}.jsonl"
            reads = ((store.places(part), uniform, split, state.identity_info, wanted)
                     for part in parts)  # made as the segments are taken: places of all are 18 B a record
            if pool is None or uniform:
                state.files[path.name] = _write_sent_back(path, reads, pool, take)
            else:
                sizes = np.array([int(store.line_sizes[part].sum(dtype=np.int64)) + len(part) for part in parts])
                state.files[path.name] = _write_in_place(path, reads, sizes, pool, take)
            state.chores.sync(path)
    state.chores.run(store.discard)  # the kept records are all written
    rejects = state.staging / "rejects.jsonl"
    state.files["rejects.jsonl"] = FileEntry(sha256=state.sink.digest.hexdigest(), records=state.sink.total,
                                             bytes=rejects.stat().st_size)


def _write_sent_back(path: Path, reads: Iterator[tuple], pool: Executor | None,
                     take: Callable[[int, StatsPass], None]) -> FileEntry:
    """Segments made by the workers (or here) and sent back to be written here, in order."""
    results = ordered_map(pool, write_segment, reads, window=4)

    def chunks() -> Iterator[tuple[bytes, int]]:
        for blob, count, figures in results:
            take(count, figures)
            yield blob, count

    return write_chunks(path, chunks())


def _write_in_place(path: Path, reads: Iterator[tuple], sizes: np.ndarray, pool: Executor,
                    take: Callable[[int, StatsPass], None]) -> FileEntry:
    """Segments written by the workers at their places in the file (`sizes`: each segment's bytes);
    only their figures come back, and the file is hashed here as the parts land."""
    starts = np.cumsum(sizes) - sizes
    tasks = ((*read, str(path), int(at)) for read, at in zip(reads, starts))
    records = 0
    with PlacedFile(path, int(sizes.sum())) as placed:
        for (count, figures, written), at, size in zip(ordered_map(pool, write_segment_at, tasks, window=4),
                                                       starts, sizes):
            if written != size:
                raise RuntimeError(f"{path.name}: a segment wrote {written} bytes where {size} were due")
            placed.hash(int(at), int(size))
            take(count, figures)
            records += count
    return placed.entry(records)


def write_segment(places: Places, uniform: bool, split: str, identity: dict | None,
                  wanted: frozenset[str]) -> tuple[bytes, int, StatsPass]:
    """One segment's bundle lines (as one blob) and report figures, from the kept records' spills."""
    figures = new_pass(identity, wanted)
    lines = []
    for item in read_kept(places):
        figures.add_summary(split, item.summary, lambda line=item.line: json.loads(line))
        lines.append(uniform_line(item.line).encode("utf-8") if uniform else item.line)
    return (b"\n".join(lines) + b"\n" if lines else b""), len(lines), figures


def write_segment_at(places: Places, uniform: bool, split: str, identity: dict | None, wanted: frozenset[str],
                     path: str, at: int) -> tuple[int, StatsPass, int]:
    """write_segment, its lines written at byte `at` of the bundle file; the figures come back."""
    blob, count, figures = write_segment(places, uniform, split, identity, wanted)
    return count, figures, write_at(Path(path), blob, at)


def manifest(state: BuildState) -> None:
    """The manifest: per-source and per-stage counts, the ratio reached, the files' hashes."""
    recipe, counts, sink, final = state.recipe, state.counts, state.sink, state.final
    kept_by_source = np.bincount(state.store.sources[final], minlength=max(state.source_stats, default=0) + 1)
    for index, stats in state.source_stats.items():
        stats.kept = int(kept_by_source[index])
        stats.mixed_out = sink.by_source[(index, "mix")]
        stats.rejected = sum(n for (i, stage), n in sink.by_source.items() if i == index and stage != "mix")
    recipe_dump = recipe.model_dump(mode="json")
    stage_stats = stage_flow([(stage, counts.stage_rejected[stage], dict(sorted(counts.reasons[stage].items())))
                              for stage in STAGES if stage != "render" or recipe.identity],
                             counts.stage_in["read"])
    achieved = state.achieved
    state.manifest = Manifest(
        curatune_version=__version__, id=manifest_id(state.files, recipe_dump), name=recipe.name, seed=state.seed,
        recipe=recipe_dump, sources=list(state.source_stats.values()), identity=state.identity_info,
        stages=stage_stats,
        ratio=RatioStats(requested=str(recipe.mix.ratio), requested_general_per_domain=recipe.mix.general_per_domain(),
                         achieved_general_per_domain=round(achieved, 6) if achieved is not None else None,
                         domain=len(state.domain), general=len(state.general), band=RATIO_BAND),
        counts={"read": counts.stage_in["read"], "kept": len(final),
                "rejected": sink.total - counts.stage_rejected["mix"],
                "mixed_out": counts.stage_rejected["mix"], "rejects_file": sink.total,
                "sampled_out": sum(s.sampled_out for s in state.source_stats.values()),
                "train": len(state.train_idx), "val": len(state.val_idx)},
        files=state.files)
    state.log("wrote train, val and rejects")
    (state.staging / "manifest.json").write_text(state.manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")


def stage_flow(stages: list[tuple[str, int, dict]], read: int) -> list[StageStats]:
    """Stages in order, each taking what the previous one let through."""
    out = []
    current = read
    for name, rejected, reasons in stages:
        out.append(StageStats(name=name, records_in=current, records_out=current - rejected,
                              rejected=rejected, reasons=reasons))
        current -= rejected
    return out
