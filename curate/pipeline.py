"""`curate build`: sources -> records -> filters -> dedup -> mix -> split -> bundle.

Per-record stages (parse, validate, length, language, exact key, MinHash fingerprint) run in
chunks, in worker processes when there is enough data to pay for them (curate.prepare). Stages
that need all records at once (dedup, mix, split) run here, in the parent, over compact results.
Every record read ends in train.jsonl, val.jsonl or rejects.jsonl (curate.sinks), and the
manifest's counts add up.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from curate import __version__
from curate.bundle import discard, new_staging_dir, publish, write_lines
from curate.errors import BuildError
from curate.dedup.exact import find_exact_duplicates
from curate.dedup.minhash import near_duplicates
from curate.dataset_sources import dataset_ref
from curate.identity import render_identity
from curate.mix import check_band, choose_general
from curate.paths import expand, inside
from curate.prepare import (ChunkResult, Prepared, Settings, SourceContext, filter_records, init_worker, ordered_map,
                            prepare_rows, tokenizer_path, warm_filters)
from curate.raw_row import SourceError
from curate.sinks import STAGES, Counts, RejectSink
from curate.sources import read_source, read_source_batches
from curate.split import split_indices
from curate.stats import largest_clusters
from curate.stats_pass import new_pass
from schemas.bundle import manifest_id, sha256_file
from schemas.manifest import FileEntry, Manifest, RatioStats, Reject, SourceStats, StageStats
from schemas.recipe import RATIO_BAND, Recipe, RecipeError
from schemas.record import Record, uniform_line

KIND_RANK = {"identity": 0, "domain": 1, "general": 2}
CHUNK = 2000
PARALLEL_FROM = 20_000  # rows; below this, worker start-up costs more than it saves


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
          data_roots: Iterable[str | Path] = ()) -> BuildResult:
    """Build a new immutable bundle version from a recipe and return where it went.

    `output_root` (the CLI's --output) is trusted as given; `data_roots` (--data-root) are folders
    the recipe's inputs may come from besides its own. Paths are checked before anything is written.
    """
    if data_roots:
        recipe = recipe.model_copy()
        recipe.allow_data_roots(data_roots)
    root = recipe.output_root(output_root)
    check_paths(recipe)
    staging = new_staging_dir(root)
    try:
        manifest, records_pass = _build_into(staging, recipe, strict=strict, workers=workers, log=log)
        for name in ("train.jsonl", "val.jsonl", "rejects.jsonl", "manifest.json"):
            os.chmod(staging / name, 0o444)  # a version is immutable once written
        started = time.perf_counter()
        _write_report(staging, records_pass)
        log(f"report.html in {time.perf_counter() - started:.1f}s")
        version = publish(staging, root)
    except BaseException:
        discard(staging)
        raise
    log(f"wrote {version}")
    return BuildResult(version, manifest)


def _write_report(staging: Path, records_pass) -> None:
    from curate.report import write_report

    write_report(staging, staging / "report.html", records=records_pass)


def _build_into(staging: Path, recipe: Recipe, *, strict: bool, workers: int | None,
                log: Callable[[str], None]) -> Manifest:
    seed = recipe.split.seed
    started = time.perf_counter()

    def elapsed() -> str:
        return f"{time.perf_counter() - started:.1f}s"

    counts = Counts()
    sink = RejectSink(staging / "rejects.jsonl", counts, strict)
    settings = Settings(recipe)
    init_worker(settings)
    source_stats: dict[int, SourceStats] = {}
    kept: list[Prepared] = []
    signatures: list[np.ndarray] = []

    def take(result: ChunkResult, source_index: int) -> None:
        for reject in result.rejects:
            sink.add(reject, source_index)
        kept.extend(result.kept)
        signatures.append(result.signatures)

    # Identity templates: read, validated and rendered here (they are few), then filtered.
    identity_info = None
    if recipe.identity:
        stats = SourceStats(path=", ".join(recipe.identity.templates), kind="identity")
        rendered: list[Record | Reject] = []
        for number, template in enumerate(recipe.identity.templates):
            try:
                info, rows = read_source(template, None, recipe.base_dir, seed)
            except SourceError as exc:
                raise BuildError(f"{recipe.file}: identity.templates.{number}: {exc}") from None
            stats.files.update(info.files)
            rows = list(rows)
            stats.rows += len(rows)
            records, rejects = render_identity(rows, recipe.identity)
            rendered += rejects + records
        counts.stage_in["read"] += stats.rows
        take(filter_records(rendered, SourceContext(0, "identity")), 0)
        source_stats[0] = stats
        identity_info = {"name": recipe.identity.name.model_dump(), "author": recipe.identity.author.model_dump(),
                         "templates": stats.rows, "rendered": sum(1 for r in rendered if isinstance(r, Record)),
                         "system": recipe.identity.system, "languages": list(recipe.identity.languages)}

    contexts = []
    for number, source in enumerate(recipe.sources, start=1):
        pattern, sample = source.split_sampling()
        try:
            info, rows = read_source_batches(pattern, sample, recipe.base_dir, seed, CHUNK)
        except SourceError as exc:
            raise BuildError(f"{recipe.file}: sources.{number - 1}.path: {exc}") from None
        ctx = SourceContext(number, source.kind, source.shape, source.columns, source.system, source.languages)
        stats = SourceStats(path=source.path, kind=source.kind, files=info.files, rows=info.total,
                            sample=sample, sampled_out=info.sampled_out, note=info.note)
        if info.note:
            log(f"{source.path}: {info.note}")
        contexts.append((ctx, rows, info))
        source_stats[number] = stats

    total_rows = sum(info.total - info.sampled_out for _, _, info in contexts)
    use_pool = (workers or os.cpu_count() or 1) > 1 and total_rows >= PARALLEL_FROM and workers != 1
    pool = None
    if use_pool:
        processes = workers or os.cpu_count() or 1
        warm_filters(recipe)  # language models load once, here, and the forked workers share them
        pool = multiprocessing.get_context("fork").Pool(processes, init_worker, (settings,))
        log(f"{total_rows} rows to read in {processes} worker processes")
    try:
        for ctx, rows, info in contexts:
            counts.stage_in["read"] += info.total - info.sampled_out
            tasks = ((batch, ctx) for batch in rows)
            results = ordered_map(pool, prepare_rows, tasks) if pool else (prepare_rows(*t) for t in tasks)
            for result in results:
                take(result, ctx.index)
            log(f"[{elapsed()}] read {ctx.index}/{len(contexts)}: {recipe.sources[ctx.index - 1].path}")
    finally:
        if pool:
            pool.close()
            pool.join()

    # Priority order: identity, then domain, then general; within a kind, source then position.
    ranks = np.fromiter((KIND_RANK[p.kind] * 1_000_000 + p.source for p in kept), dtype=np.int64, count=len(kept))
    order = np.argsort(ranks, kind="stable")
    kept = [kept[i] for i in order.tolist()]
    sig = np.concatenate(signatures)[order] if signatures and len(kept) else None

    def drop(indices: dict[int, tuple[int, float] | int], stage: str, reason: str) -> None:
        for index, value in sorted(indices.items()):
            twin, score = value if isinstance(value, tuple) else (value, 1.0)
            similarity = "" if stage == "exact_dedup" else f" (estimated Jaccard {score:.2f})"
            sink.add_kept(kept[index], stage, reason, f"duplicate of {kept[twin].id}{similarity}", kept[twin].id)

    def survivors(removed) -> list[int]:
        return [i for i in range(len(kept)) if i not in removed]

    if recipe.dedup.exact:
        removed = find_exact_duplicates([p.key for p in kept])
        drop(removed, "exact_dedup", "exact_duplicate")
        remaining = survivors(removed)
        kept = [kept[i] for i in remaining]
        sig = sig[remaining] if sig is not None else None
    near_kept_ids: list[str] = []
    if recipe.dedup.near.enabled and sig is not None and len(kept):
        removed_near = near_duplicates(sig, recipe.dedup.near.threshold)
        drop(removed_near, "near_dedup", "near_duplicate")
        near_kept_ids = [kept[twin].id for twin, _ in removed_near.values()]
        kept = [kept[i] for i in survivors(removed_near)]
    sig = None  # the signatures are the largest array here; nothing needs them after dedup
    log(f"[{elapsed()}] deduplicated: {counts.stage_rejected['exact_dedup']} exact, "
        f"{counts.stage_rejected['near_dedup']} near")

    # Mix: identity counts as domain; general records are sampled down to the ratio.
    domain = [p for p in kept if p.kind != "general"]
    general = [p for p in kept if p.kind == "general"]
    chosen = set(choose_general(len(general), len(domain), recipe.mix.general_per_domain(), seed))
    for index, item in enumerate(general):
        if index not in chosen:
            sink.add_kept(item, "mix", "over_ratio", f"left out to keep domain:general at {recipe.mix.ratio}")
    general = [g for i, g in enumerate(general) if i in chosen]
    sink.close()
    achieved = check_band(len(domain), len(general), recipe.mix.allow_out_of_band, recipe.file)
    final = domain + general

    train_idx, val_idx = split_indices([p.kind for p in final], recipe.split.val_ratio, seed)
    uniform = any(p.tools for p in final)  # one record uses tools: every line gets the same keys

    def lines(indices: list[int]) -> Iterable[str]:
        return (uniform_line(final[i].line) if uniform else final[i].line for i in indices)

    files = {
        "train.jsonl": write_lines(staging / "train.jsonl", lines(train_idx)),
        "val.jsonl": write_lines(staging / "val.jsonl", lines(val_idx)),
    }
    files["rejects.jsonl"] = FileEntry(sha256=sha256_file(staging / "rejects.jsonl"), records=sink.total,
                                       bytes=(staging / "rejects.jsonl").stat().st_size)

    kept_by_source = Counter(p.source for p in final)
    for index, stats in source_stats.items():
        stats.kept = kept_by_source[index]
        stats.mixed_out = sink.by_source[(index, "mix")]
        stats.rejected = sum(n for (i, stage), n in sink.by_source.items() if i == index and stage != "mix")
    recipe_dump = recipe.model_dump(mode="json")
    stage_stats = _stage_flow([(stage, counts.stage_rejected[stage], dict(sorted(counts.reasons[stage].items())))
                               for stage in STAGES if stage != "render" or recipe.identity],
                              counts.stage_in["read"])
    manifest = Manifest(
        curatune_version=__version__, id=manifest_id(files, recipe_dump), name=recipe.name, seed=seed,
        recipe=recipe_dump, sources=list(source_stats.values()), identity=identity_info, stages=stage_stats,
        ratio=RatioStats(requested=str(recipe.mix.ratio), requested_general_per_domain=recipe.mix.general_per_domain(),
                         achieved_general_per_domain=round(achieved, 6) if achieved is not None else None,
                         domain=len(domain), general=len(general), band=RATIO_BAND),
        counts={"read": counts.stage_in["read"], "kept": len(final), "rejected": sink.total - counts.stage_rejected["mix"],
                "mixed_out": counts.stage_rejected["mix"], "rejects_file": sink.total,
                "sampled_out": sum(s.sampled_out for s in source_stats.values()),
                "train": len(train_idx), "val": len(val_idx)},
        files=files)
    log(f"[{elapsed()}] wrote train, val and rejects")
    # The report's figures, from the summaries the workers made: no second parse of the bundle.
    twins = Counter(near_kept_ids)
    records_pass = new_pass(manifest, frozenset(rid for rid, _ in largest_clusters(twins)))
    for split, indices in (("train", train_idx), ("val", val_idx)):
        for i in indices:
            records_pass.add_summary(split, final[i].summary, lambda line=final[i].line: json.loads(line))
    (staging / "manifest.json").write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return manifest, records_pass


def _stage_flow(stages: list[tuple[str, int, dict]], read: int) -> list[StageStats]:
    """Stages in order, each taking what the previous one let through."""
    out = []
    current = read
    for name, rejected, reasons in stages:
        out.append(StageStats(name=name, records_in=current, records_out=current - rejected,
                              rejected=rejected, reasons=reasons))
        current -= rejected
    return out
