"""The build's first stages: read the identity templates and the sources, then run the per-record
stages (parse, validate, render, length, language, exact key, MinHash fingerprint) on every row.

The per-record work runs in chunks, in worker processes when there is enough data to pay for them
(curate.prepare); another engine can replace `prepare` and keep the rest.
"""
from __future__ import annotations

from pathlib import Path

from curate.build_state import BuildState, OpenSource
from curate.chunk_spill import prepare_and_spill, start_spilling
from curate.errors import BuildError
from curate.identity import render_identity
from curate.prepare import Settings, SourceContext, filter_records, prepare_rows, start_worker, warm_filters
from curate.process_pool import fork_pool, ordered_map, worker_count
from curate.progress import StageProgress
from curate.raw_row import SourceError
from curate.sources import read_source, read_source_batches
from schemas.manifest import SourceStats
from schemas.record import Record

CHUNK = 2000
PARALLEL_FROM = 20_000  # rows; below this, worker start-up costs more than it saves


def read_identity(state: BuildState) -> None:
    """Identity templates: read, validated and rendered here (they are few); filtered in `prepare`."""
    recipe = state.recipe
    if not recipe.identity:
        return
    stats = SourceStats(path=", ".join(recipe.identity.templates), kind="identity")
    rendered: list = []
    for number, template in enumerate(recipe.identity.templates):
        try:
            info, rows = read_source(template, None, recipe.base_dir, state.seed)
        except SourceError as exc:
            raise BuildError(f"{recipe.file}: identity.templates.{number}: {exc}") from None
        stats.files.update(info.files)
        rows = list(rows)
        stats.rows += len(rows)
        records, rejects = render_identity(rows, recipe.identity)
        rendered += rejects + records
    state.counts.stage_in["read"] += stats.rows
    state.identity_rows = rendered
    state.source_stats[0] = stats
    state.identity_info = {
        "name": recipe.identity.name.model_dump(), "author": recipe.identity.author.model_dump(),
        "templates": stats.rows, "rendered": sum(1 for r in rendered if isinstance(r, Record)),
        "system": recipe.identity.system, "languages": list(recipe.identity.languages)}


def open_sources(state: BuildState) -> None:
    """Open every source (globs expanded, files hashed, sampling decided) before reading any."""
    recipe = state.recipe
    for number, source in enumerate(recipe.sources, start=1):
        pattern, sample = source.split_sampling()
        try:
            info, batches = read_source_batches(pattern, sample, recipe.base_dir, state.seed, CHUNK)
        except SourceError as exc:
            raise BuildError(f"{recipe.file}: sources.{number - 1}.path: {exc}") from None
        ctx = SourceContext(number, source.kind, source.shape, source.columns, source.system, source.languages)
        state.source_stats[number] = SourceStats(path=source.path, kind=source.kind, files=info.files,
                                                 rows=info.total, sample=sample, sampled_out=info.sampled_out,
                                                 note=info.note)
        if info.note:
            state.log(f"{source.path}: {info.note}")
        state.sources.append(OpenSource(ctx, batches, info.total - info.sampled_out))


def prepare_identity(state: BuildState, progress: StageProgress) -> None:
    """The rendered identity records through the filters, here (they are few), before any source."""
    if state.identity_rows:
        state.take(filter_records(state.identity_rows, SourceContext(0, "identity")), 0)
        progress.advance(len(state.identity_rows))
        state.identity_rows = []


def prepare(state: BuildState) -> None:
    """The per-record stages on every row, identity first, then the sources in recipe order."""
    total_rows = sum(source.rows for source in state.sources)
    with state.progress.stage("prepare", len(state.identity_rows) + total_rows) as progress:
        prepare_identity(state, progress)
        processes = worker_count(state.workers, total_rows, PARALLEL_FROM)
        if processes > 1:
            warm_filters(state.recipe)  # language models load once, here, and the forked workers share them
            state.log(f"{total_rows} rows to read in {processes} worker processes")
        with fork_pool(processes, _start_worker, (state.settings, state.staging)) as pool:
            work = prepare_and_spill if pool else prepare_rows  # workers spill their own chunks
            for source in state.sources:
                state.counts.stage_in["read"] += source.rows
                tasks = ((batch, source.ctx) for batch in source.batches)
                for result in ordered_map(pool, work, tasks):
                    state.take(result, source.ctx.index)
                    progress.advance(len(result.kept) + len(result.rejects))


def _start_worker(settings: Settings, staging: Path) -> None:
    """Pool initializer: the filters (curate.prepare), and spill files of this worker's own."""
    start_worker(settings)
    start_spilling(staging)
