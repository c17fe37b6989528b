"""The build's last stages: write train.jsonl and val.jsonl with the report's figures (from the
summaries the per-record stages made: no second parse), then the manifest (counts that add up).
"""
from __future__ import annotations

import json
from collections import Counter
from typing import Iterable

import numpy as np

from curate import __version__
from curate.build_state import BuildState
from curate.bundle import write_lines
from curate.sinks import STAGES
from curate.stats import largest_clusters
from curate.stats_pass import new_pass
from schemas.bundle import manifest_id, sha256_file
from schemas.manifest import FileEntry, Manifest, RatioStats, StageStats
from schemas.recipe import RATIO_BAND
from schemas.record import uniform_line


def write(state: BuildState) -> None:
    """train.jsonl and val.jsonl in split order (every line with the same keys when any record uses
    tools), each record read back once: its line to the file, its summary to the report's figures."""
    final, store = state.final, state.store
    uniform = bool(store.tools[final].any())
    twins = Counter(state.near_kept_ids)
    records_pass = new_pass(state.identity_info, frozenset(rid for rid, _ in largest_clusters(twins)))
    state.records_pass = records_pass

    def lines(indices: np.ndarray, split: str, progress) -> Iterable[str]:
        for i in final[indices].tolist():
            progress.advance()
            item = store.get(i)
            records_pass.add_summary(split, item.summary, lambda line=item.line: json.loads(line))
            yield uniform_line(item.line) if uniform else item.line

    with state.progress.stage("write", len(final)) as progress:
        state.files["train.jsonl"] = write_lines(state.staging / "train.jsonl", lines(state.train_idx, "train", progress))
        state.files["val.jsonl"] = write_lines(state.staging / "val.jsonl", lines(state.val_idx, "val", progress))
    rejects = state.staging / "rejects.jsonl"
    state.files["rejects.jsonl"] = FileEntry(sha256=sha256_file(rejects), records=state.sink.total,
                                             bytes=rejects.stat().st_size)


def manifest(state: BuildState) -> None:
    """The manifest: per-source and per-stage counts, the ratio reached, the files' hashes."""
    recipe, counts, sink, final = state.recipe, state.counts, state.sink, state.final
    kept_by_source = Counter(state.store.sources[final].tolist())
    for index, stats in state.source_stats.items():
        stats.kept = kept_by_source[index]
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
