"""Opening a curated bundle for training: resolve the version, verify hashes, read the splits.

Goes through `schemas.bundle` only, so training never depends on the curate stage's code.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from schemas.bundle import BundleError, read_records, resolve_bundle, verify_bundle
from schemas.manifest import Manifest
from schemas.record import Record


@dataclass
class Bundle:
    path: Path
    manifest: Manifest
    train: list[Record]
    val: list[Record]

    @property
    def recipe_train(self) -> dict:
        """The recipe's `train:` section: per-bundle defaults for training settings."""
        return dict(self.manifest.recipe.get("train") or {})


def _read(file: Path) -> list[Record]:
    """All records of a split; a malformed line is a BundleError naming the file, not a traceback."""
    records: list[Record] = []
    try:
        for record in read_records(file):
            records.append(record)
    except ValueError as exc:  # json.JSONDecodeError and pydantic.ValidationError are ValueErrors
        first = str(exc).strip().splitlines()[0]
        raise BundleError(f"{file}: record {len(records) + 1} is not a valid record: {first}") from None
    return records


def open_bundle(path: str | Path, log=None) -> Bundle:
    """Resolve (newest vNNNN under an output root), verify against manifest.json, read train/val."""
    given = Path(path)
    version = resolve_bundle(given)
    if log is not None and version.resolve() != given.resolve():
        log(f"bundle: using {version.name} under {given}")
    manifest = verify_bundle(version)
    train = _read(version / "train.jsonl")
    val_file = version / "val.jsonl"
    val = _read(val_file) if val_file.is_file() else []
    if not train:
        raise BundleError(f"{version / 'train.jsonl'}: no training records")
    return Bundle(path=version.resolve(), manifest=manifest, train=train, val=val)


__all__ = ["Bundle", "BundleError", "open_bundle"]
