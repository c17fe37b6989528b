"""`curate build`: the list of stages below, run in order over one BuildState.

    read identity -> open sources -> prepare (parse, validate, render, length, language, keys,
    fingerprints; in chunks, in worker processes) -> order -> exact dedup -> near dedup -> mix
    -> split -> write -> manifest

Each stage is a small function in curate.stage_read, curate.stage_select or curate.stage_write.
Every record read ends in train.jsonl, val.jsonl or rejects.jsonl (curate.sinks), and the
manifest's counts add up.
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager, Iterable

from curate import stage_read, stage_select, stage_write
from curate.build_state import BuildState
from curate.bundle import discard, new_staging_dir, publish
from curate.chunk_spill import ProcessSpill
from curate.dataset_sources import dataset_ref
from curate.dedup.minhash import lsh_params
from curate.errors import BuildError
from curate.file_chores import FileChores
from curate.kept_store import KeptStore
from curate.paths import expand, inside
from curate.prepare import Settings, init_worker, tokenizer_path
from curate.progress import Progress
from curate.raw_row import SourceError
from curate.signature_spill import SignatureSpill
from curate.sinks import Counts, RejectSink
from schemas.manifest import Manifest
from schemas.recipe import Recipe, RecipeError

Stage = Callable[[BuildState], None]
STAGES: list[tuple[str, Stage]] = [
    ("read identity", stage_read.read_identity),
    ("open sources", stage_read.open_sources),
    ("prepare", stage_read.prepare),
    ("order", stage_select.order),
    ("exact dedup", stage_select.exact_dedup),
    ("near dedup", stage_select.near_dedup),
    ("mix", stage_select.mix),
    ("split", stage_select.split),
    ("write", stage_write.write),
    ("manifest", stage_write.manifest),
]
__all__ = ["BuildError", "BuildResult", "STAGES", "build", "check_paths"]


def check_paths(recipe: Recipe) -> None:
    """Refuse, before anything is written, any input the recipe names (identity templates, sources
    with their glob matches, a local tokenizer) that resolves outside `recipe.input_roots`."""
    roots = recipe.input_roots
    templates = recipe.identity.templates if recipe.identity else []
    named = [(f"identity.templates.{n}", template) for n, template in enumerate(templates)]
    named += [(f"sources.{n}.path", source.split_sampling()[0]) for n, source in enumerate(recipe.sources)]
    tokenizer, local = tokenizer_path(recipe)
    try:
        for key, pattern in named:
            ref = dataset_ref(pattern, recipe.base_dir)
            if ref is None:
                expand(pattern, recipe.base_dir, roots)
            elif ref.path is not None:  # a dataset folder is confined like a file; a hub name is no path
                inside(ref.path, roots, ref.name)
        key = "filters.length.tokenizer"
        if local:
            inside(tokenizer, roots, recipe.filters.length.tokenizer)
    except SourceError as exc:
        raise RecipeError(f"{recipe.file}: {key}: {exc}") from None


@dataclass
class BuildResult:
    version_dir: Path
    manifest: Manifest


def build(recipe: Recipe, output_root: str | Path | None = None, *, strict: bool = False,
          workers: int | None = None, log: Callable[[str], None] = lambda message: None,
          data_roots: Iterable[str | Path] = (), progress: bool | None = False, engine: str = "local",
          address: str | None = None) -> BuildResult:
    """Build a new immutable bundle version from a recipe and return where it went.

    `output_root` (the CLI's --output) is trusted as given; `data_roots` (--data-root) are folders
    the recipe's inputs may come from besides its own. Paths are checked before anything is written.
    `progress`: live bars (True), lines through `log` every few seconds (False), bars on a terminal (None).
    `engine`: "local" (this machine) or "ray" (curate.engine_ray: the cluster at `address`, else a
    local Ray); both write the same bytes.
    """
    if data_roots:
        recipe = recipe.model_copy()
        recipe.allow_data_roots(data_roots)
    root = recipe.output_root(output_root)
    check_paths(recipe)
    engine_stages = _engine(engine, address, workers, log)
    staging = new_staging_dir(root)
    try:
        with FileChores() as chores:  # syncs and spill removals, in the background; done before publishing
            with engine_stages as stages:
                state = run_stages(staging, recipe, strict=strict, workers=workers, log=log, live=progress,
                                   stages=stages, chores=chores)
            manifest, records_pass, rejects_pass = state.manifest, state.records_pass, state.sink.tally
            for name in ("train.jsonl", "val.jsonl", "rejects.jsonl", "manifest.json"):
                os.chmod(staging / name, 0o444)  # a version is immutable once written
            started = time.perf_counter()
            del state  # its columns (tens of bytes a record) are not needed for the report
            _write_report(staging, records_pass, rejects_pass)
            log(f"report.html in {time.perf_counter() - started:.1f}s")
        version = publish(staging, root)
    except BaseException:
        discard(staging)
        raise
    log(f"wrote {version}")
    return BuildResult(version, manifest)


RAY_MISSING = "--engine ray needs the ray extra: pip install 'curatune[ray]'"


def _engine(engine: str, address: str | None, workers: int | None,
            log: Callable[[str], None]) -> ContextManager[list[tuple[str, Stage]]]:
    """The stage list of an engine, in the context it runs in (for Ray: a session, closed after)."""
    if engine == "local":
        if address:
            raise BuildError("--address needs --engine ray")
        return contextlib.nullcontext(STAGES)
    if engine != "ray":
        raise BuildError(f"unknown engine '{engine}' (use local or ray)")
    try:
        from curate import engine_ray
    except ImportError as exc:
        if (exc.name or "").split(".")[0] == "ray":
            raise BuildError(RAY_MISSING) from None
        raise
    return engine_ray.Session(address, workers, log)  # joins Ray now: errors come before anything is written


def run_stages(staging: Path, recipe: Recipe, *, strict: bool, workers: int | None, log: Callable[[str], None],
               chores: FileChores, live: bool | None = False, stages: list[tuple[str, Stage]] = STAGES) -> BuildState:
    """Run the stages in order over one state; the bundle's files end in `staging`."""
    settings = Settings(recipe)
    init_worker(settings)
    counts = Counts()
    started = time.perf_counter()
    with Progress(log, live) as progress:
        state = BuildState(recipe=recipe, staging=staging, workers=workers, log=log, progress=progress,
                           counts=counts, sink=RejectSink(staging / "rejects.jsonl", counts, strict),
                           settings=settings, store=KeptStore(staging), near_spill=_near_spill(staging, recipe),
                           chores=chores, own_spill=ProcessSpill(staging))
        for name, stage in stages:
            stage(state)
        log(f"[{time.perf_counter() - started:.1f}s] built: {counts.stage_rejected['exact_dedup']} exact and "
            f"{counts.stage_rejected['near_dedup']} near duplicates")
    return state


def _near_spill(staging: Path, recipe: Recipe) -> SignatureSpill | None:
    near = recipe.dedup.near
    return SignatureSpill(staging, near.num_perm, lsh_params(near.threshold, near.num_perm)) if near.enabled else None


def _write_report(staging: Path, records_pass, rejects_pass) -> None:
    from curate.report import write_report

    write_report(staging, staging / "report.html", records=records_pass, rejects=rejects_pass)
