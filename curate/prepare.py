"""The per-record stages of a build (parse, validate, length, language, exact key, MinHash
fingerprint), run on chunks of rows, in worker processes when there is enough data to pay for them.

Each chunk comes back as its kept records packed for the parent's spill (curate.kept_store), the
rejects, and the MinHash signatures.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from curate.dedup.exact import char_table, exact_key_text, normalise_many
from curate.dedup.minhash import band, fingerprint, lsh_params
from curate.filters.language import LanguageFilter
from curate.filters.length import LengthFilter
from curate.kept_store import KeptChunk, Prepared
from curate.raw_row import RawRow
from curate.shapes import row_to_record
from curate.sources import LineRange
from curate.stats_pass import summarise_record
from curate.worker_memory import keep_freed_memory
from schemas.manifest import Reject
from schemas.recipe import Recipe
from schemas.record import Record


@dataclass
class SourceContext:
    """What the per-record stages need to know about the source a row came from."""

    index: int
    kind: str
    shape: str | None = None
    columns: dict[str, str] | None = None
    system: str | None = None
    languages: list[str] | None = None


@dataclass
class ChunkResult:
    """What one chunk of rows comes back as: kept records, rejects, and the kept records' signatures."""

    kept: KeptChunk
    rejects: list[Reject]
    signatures: np.ndarray
    band_keys: np.ndarray | None = None  # LSH band keys of the signatures, when near dedup is on
    sig_at: tuple[str, int] | None = None  # once spilled (curate.chunk_spill): the signatures' file and first row
    valid: np.ndarray | None = None  # once spilled: whether each signature has any shingles


@dataclass
class Settings:
    """Filter settings shipped to the workers (picklable; the filters are rebuilt there)."""

    recipe: Recipe

    def filters(self) -> tuple[LengthFilter, LanguageFilter]:
        cfg = self.recipe.filters
        length = cfg.length
        tokenizer, local = tokenizer_path(self.recipe)
        if local:
            length = length.model_copy(update={"tokenizer": str(tokenizer.resolve())})
        return (LengthFilter(length),
                LanguageFilter(cfg.language.backend, cfg.language.min_chars, cfg.language.unsure))


def tokenizer_path(recipe: Recipe) -> tuple[Path | None, bool]:
    """The length filter's tokenizer and whether it is a local folder. A name that is absolute,
    has '..', or exists relative to the recipe or the current directory is a path, always taken
    relative to the recipe; any other name is left to the tokenizer cache (a hub id)."""
    name = recipe.filters.length.tokenizer
    if not name:
        return None, False
    path = recipe.base_dir / name
    local = path.exists() or Path(name).is_absolute() or ".." in Path(name).parts or Path(name).exists()
    return path, local


_WORKER_FILTERS: tuple[LengthFilter, LanguageFilter] | None = None
_WORKER_SETTINGS: Settings | None = None


def init_worker(settings: Settings) -> None:
    """Pool initializer, also run in the parent: the filters are built once per process."""
    global _WORKER_FILTERS, _WORKER_SETTINGS
    _WORKER_SETTINGS = settings
    _WORKER_FILTERS = settings.filters()


def start_worker(settings: Settings) -> None:
    """Pool initializer of the prepare workers: the filters, and an allocator that keeps the
    memory of one chunk's arrays for the next (curate.worker_memory)."""
    keep_freed_memory()
    init_worker(settings)


def warm_filters(recipe: Recipe) -> None:
    """Load the language models and the normalisation table in the parent before the workers fork,
    so they share one copy instead of each loading its own (half a second and ~70 MB a worker)."""
    char_table()
    if _WORKER_FILTERS is not None and any(source.languages for source in recipe.sources):
        _WORKER_FILTERS[1].warm()


def _reject(record: Record, stage: str, reason: str, message: str) -> Reject:
    return Reject(source=record.meta.source, line=record.meta.line, stage=stage, reason=reason,
                  message=message, raw=record.to_json_dict(), id=record.meta.id, kind=record.meta.kind,
                  index=record.meta.index)


def filter_records(records: Iterable[Record | Reject], ctx: SourceContext) -> ChunkResult:
    """Length and language filters, then the dedup keys and fingerprints of what survives."""
    assert _WORKER_FILTERS is not None and _WORKER_SETTINGS is not None
    length, language = _WORKER_FILTERS
    near = _WORKER_SETTINGS.recipe.dedup.near
    kept: list[Prepared] = []
    rejects: list[Reject] = []
    turns: list[list[str]] = []  # each kept record's turns, system prompt aside: the dedup text
    for record in records:
        if isinstance(record, Reject):
            rejects.append(record)
            continue
        verdict = length(record)
        if verdict:
            rejects.append(_reject(record, "length", *verdict))
            continue
        lang, verdict = language(record, ctx.languages)
        if verdict:
            rejects.append(_reject(record, "language", *verdict))
            rejects[-1].lang = lang  # the report shows, per source, what languages were dropped
            continue
        if lang and record.meta.lang is None:
            record.meta.lang = lang
        turns.append([m.text() for m in record.messages if m.role != "system"])
        kept.append(Prepared(
            line=record.__pydantic_serializer__.to_json(record, exclude_none=True),  # model_dump_json's bytes
            id=record.meta.id, file=record.meta.source, row=record.meta.line, kind=record.meta.kind,
            source=ctx.index, lang=record.meta.lang,
            key=b"", summary=summarise_record(record), tools=record.uses_tools()))
    texts = normalise_many(turns)
    for prepared, normalised in zip(kept, texts, strict=True):
        prepared.key = exact_key_text(normalised)
    if not near.enabled:
        texts = [""] * len(texts)
    signatures = (fingerprint(texts, near.num_perm, near.shingle) if near.enabled and texts
                  else np.zeros((len(texts), near.num_perm if near.enabled else 0), dtype=np.uint32))
    band_keys = band(signatures, lsh_params(near.threshold, near.num_perm)) if near.enabled else None
    return ChunkResult(KeptChunk.pack(kept), rejects, signatures, band_keys)


def prepare_rows(rows: list[RawRow] | LineRange, ctx: SourceContext) -> ChunkResult:
    """Worker entry point: read (a LineRange), parse and validate raw rows, then filter them."""
    if isinstance(rows, LineRange):
        rows = rows.rows()
    records = (row_to_record(raw, kind=ctx.kind, shape=ctx.shape, columns=ctx.columns, system=ctx.system)
               for raw in rows)
    return filter_records(records, ctx)
