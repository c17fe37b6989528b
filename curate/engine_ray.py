"""`curate build --engine ray`: the same recipe, its per-record work and dedup shuffles on Ray Data.

The stage list is the local one (curate.pipeline.STAGES) with three stages replaced:

    prepare      the source batches (JSONL byte ranges, or rows the driver read) become a Ray
                 dataset; a batch map runs curate.prepare.prepare_rows on each, in the workers,
                 and the results come back in order (preserve_order) to BuildState.take, exactly
                 as the local engine feeds them: same rejects, same order, same bytes.
    exact dedup  a group-by on the key over (key, priority index) rows (curate.ray_dedup).
    near dedup   a shuffle of LSH band keys, bucket pairs back to the driver, which verifies
                 them and keeps by the same rule (curate.ray_dedup).

Reading identity, opening sources, order, mix, split, write and manifest are the local stages,
run on the driver, which writes the bundle. A task whose worker dies is run again by Ray (Ray
Data retries its tasks without limit); tasks are deterministic, so the bundle is the same. Only
curate.pipeline imports this module, and only for `--engine ray`: the local engine needs no Ray.
"""
from __future__ import annotations

import logging
import os
import pickle
import uuid
from typing import Callable

import pyarrow as pa
import ray
from ray.data.context import DataContext

from curate import ray_dedup, stage_read, stage_select, stage_write
from curate.build_state import BuildState
from curate.errors import BuildError
from curate.prepare import (
    Settings,
    init_worker,
    prepare_rows,
)

Stage = Callable[[BuildState], None]

_READY: str | None = None  # in a Ray worker: the build whose filters this process holds


def _prepare_batch(batch: pa.Table, settings: Settings, build: str) -> pa.Table:
    """Ray worker: the per-record stages on each pickled (rows, context) task of the batch.
    The filters are built once per worker process and build (init_worker), as in the local pool."""
    global _READY
    if _READY != build:
        init_worker(settings)
        _READY = build
    results, sources = [], []
    for blob in batch.column("task").to_pylist():
        rows, ctx = pickle.loads(blob)
        results.append(pickle.dumps(prepare_rows(rows, ctx), protocol=5))
        sources.append(ctx.index)
    return pa.table({"source": pa.array(sources, pa.int32()), "result": pa.array(results, pa.large_binary())})


def prepare(state: BuildState) -> None:
    """The per-record stages on every row, identity first (on the driver, as locally), then the
    sources' batches in recipe order through a Ray Data batch map, consumed in order."""
    total_rows = sum(source.rows for source in state.sources)
    with state.progress.stage("prepare", len(state.identity_rows) + total_rows) as progress:
        stage_read.prepare_identity(state, progress)
        blocks = []
        for source in state.sources:
            state.counts.stage_in["read"] += source.rows
            blocks += [pa.table({"task": pa.array([pickle.dumps((batch, source.ctx), protocol=5)], pa.large_binary())})
                       for batch in source.batches]
        if not blocks:
            return
        state.log(f"{total_rows} rows to read in {len(blocks)} Ray tasks on "
                  f"{int(ray.cluster_resources().get('CPU', 0))} CPUs")
        results = ray.data.from_arrow(blocks).map_batches(
            _prepare_batch, batch_size=1, batch_format="pyarrow", zero_copy_batch=True,
            fn_kwargs={"settings": state.settings, "build": uuid.uuid4().hex})
        for batch in results.iter_batches(batch_size=None, batch_format="pyarrow"):
            for source, blob in zip(batch.column("source").to_pylist(), batch.column("result").to_pylist()):
                result = pickle.loads(blob)
                state.take(result, source)
                progress.advance(len(result.kept) + len(result.rejects))


def exact_dedup(state: BuildState) -> None:
    """stage_select.exact_dedup, with the duplicates found by a group-by in Ray."""
    stage_select.exact_dedup(state, ray_dedup.exact_duplicates)


def near_dedup(state: BuildState) -> None:
    """stage_select.near_dedup, with the candidates found by a shuffle of the band keys in Ray."""
    stage_select.near_dedup(state, ray_dedup.candidate_pairs)


STAGES: list[tuple[str, Stage]] = [
    ("read identity", stage_read.read_identity),
    ("open sources", stage_read.open_sources),
    ("prepare", prepare),
    ("order", stage_select.order),
    ("exact dedup", exact_dedup),
    ("near dedup", near_dedup),
    ("mix", stage_select.mix),
    ("split", stage_select.split),
    ("write", stage_write.write),
    ("manifest", stage_write.manifest),
]


class Session:
    """Ray for one build, joined when made (so a missing or unreachable cluster is reported before
    anything is written): the cluster at `address`, else a local Ray with `workers` CPUs (default:
    all). A Ray already initialised in this process is used as it is. As a context manager it
    gives the engine's stage list, and on exit shuts down the Ray it started."""

    def __init__(self, address: str | None, workers: int | None, log: Callable[[str], None]):
        self.started = not ray.is_initialized()
        if self.started:
            quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
            try:
                if address:
                    ray.init(address=address, **quiet)
                else:
                    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
                    ray.init(num_cpus=workers or os.cpu_count() or 1, include_dashboard=False,
                             _node_ip_address="127.0.0.1", **quiet)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise BuildError(f"--address {address}: cannot start or reach Ray: {exc}".replace("\n", " ")) from None
        log(f"engine ray: {address or 'a local Ray'}, {int(ray.cluster_resources().get('CPU', 0))} CPUs")
        context = DataContext.get_current()
        self.saved = (context.execution_options.preserve_order, context.enable_progress_bars)
        context.execution_options.preserve_order = True  # results reach BuildState.take in source order
        context.enable_progress_bars = False  # the build's own progress reports the stages
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "progress bars disabled"

    def __enter__(self) -> list[tuple[str, Stage]]:
        return STAGES

    def __exit__(self, *exc_info) -> None:
        context = DataContext.get_current()
        context.execution_options.preserve_order, context.enable_progress_bars = self.saved
        if self.started:
            ray.shutdown()
