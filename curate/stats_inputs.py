"""What `curate stats` reads: a bundle version (its manifest and jsonl files, streamed) or one
source file, both seen as (split, record dict) plus reject dicts.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from schemas.bundle import BundleError, load_manifest, resolve_bundle
from schemas.manifest import Manifest

SPLITS = ("train", "val")


class StatsError(ValueError):
    """A path stats cannot read; one line, shown as is by the CLI."""


@dataclass
class Inputs:
    """A bundle version or a single source file, both seen as (split, record dict) plus reject dicts."""

    path: Path
    manifest: Manifest | None = None
    version_dir: Path | None = None
    _records: list[dict] | None = None
    _rejects: list[dict] | None = None
    kept_records: dict[str, tuple[str, dict]] | None = None  # filled by the stats pass for the report
    rejects_pass: Any = None  # curate.rejects_pass.RejectsPass, filled by the figures for the report

    def parts(self, pieces: int) -> list[list[tuple[str, Path, int, int]]]:
        """The split files cut into `pieces` byte ranges on line boundaries, for parallel passes."""
        assert self.version_dir is not None
        files = [(split, self.version_dir / f"{split}.jsonl") for split in SPLITS]
        files = [(split, f, f.stat().st_size) for split, f in files if f.is_file()]
        total = sum(size for *_, size in files)
        target = max(1, total // pieces)
        out: list[list[tuple[str, Path, int, int]]] = [[]]
        used = 0
        for split, file, size in files:
            start = 0
            with open(file, "rb") as handle:
                while start < size:
                    end = min(size, start + max(1, target - used))
                    if end < size:
                        handle.seek(end)
                        handle.readline()
                        end = handle.tell()
                    out[-1].append((split, file, start, end))
                    used += end - start
                    start = end
                    if used >= target and len(out) < pieces:
                        out.append([])
                        used = 0
        return [part for part in out if part]

    def records(self) -> Iterator[tuple[str, dict]]:
        if self.version_dir is None:
            yield from (("source", r) for r in self._records or [])
            return
        for split in SPLITS:
            for row in _jsonl(self.version_dir / f"{split}.jsonl"):
                yield split, row

    def rejects(self) -> Iterator[dict]:
        if self.version_dir is None:
            yield from self._rejects or []
            return
        yield from _jsonl(self.version_dir / "rejects.jsonl")


def _jsonl(path: Path) -> Iterator[dict]:
    """Rows of a bundle jsonl file, streamed; a missing file (e.g. no val split) reads as empty."""
    if not path.is_file():
        return
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise StatsError(f"{path}:{number}: not valid JSON: {exc}") from None


def open_inputs(path: str | Path) -> Inputs:
    """A version dir, an output root (newest version) or any source file curatune reads."""
    path = Path(path)
    if not path.exists():
        raise StatsError(f"{path}: no such file or directory")
    if path.is_file() and path.name == "manifest.json":
        path = path.parent
    if path.is_dir():
        try:
            version_dir = resolve_bundle(path)
            manifest = load_manifest(version_dir)
        except BundleError as exc:
            raise StatsError(str(exc)) from None
        return Inputs(path=version_dir, manifest=manifest, version_dir=version_dir)
    try:
        from curate.sources import load_file
    except ImportError as exc:  # the reader belongs to another module; say what is missing
        raise StatsError(f"{path}: cannot read source files here ({exc})") from None
    try:
        records, rejects = load_file(path)
    except ValueError as exc:
        raise StatsError(str(exc)) from None
    return Inputs(path=path, _records=[r.to_json_dict() for r in records],
                  _rejects=[r.model_dump() for r in rejects])
