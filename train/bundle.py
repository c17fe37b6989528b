"""Opening a curated bundle for training: resolve the version, verify it as a whole, read the splits.

Goes through `schemas.bundle` only, so training never depends on the curate stage's code. A bundle
may come from someone else: `verify_bundle` refuses one whose folder, manifest, hashes or id do
not add up, and the recipe's `train:` section is only ever settings (train.config refuses the keys
only the command line may set).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from schemas.bundle import MANIFEST, BundleError, read_records, resolve_bundle, verify_bundle
from schemas.manifest import Manifest
from schemas.record import Record


@dataclass
class Bundle:
    path: Path
    manifest: Manifest
    train: list[Record]
    val: list[Record]

    @property
    def manifest_file(self) -> Path:
        return self.path / MANIFEST

    @property
    def recipe_train(self) -> dict:
        """The recipe's `train:` section: per-bundle defaults for training settings."""
        section = self.manifest.recipe.get("train")
        if section is None:
            return {}
        if not isinstance(section, dict):
            raise BundleError(f"{self.manifest_file}: recipe.train: a mapping of training settings, "
                              f"got {type(section).__name__}")
        return dict(section)


def _read(file: Path) -> list[Record]:
    """All records of a split; a malformed line is a BundleError naming the file, not a traceback."""
    records: list[Record] = []
    try:
        for record in read_records(file):
            records.append(record)
    except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError and pydantic.ValidationError are ValueErrors
        lines = str(exc).strip().splitlines()
        first = lines[0] if lines else type(exc).__name__
        raise BundleError(f"{file}: record {len(records) + 1} is not a valid record: {first}") from None
    except RecursionError:
        raise BundleError(f"{file}: record {len(records) + 1} is not a valid record: nested too deeply") from None
    return records


def open_bundle(path: str | Path, log=None) -> Bundle:
    """Resolve (newest vNNNN under an output root), verify against manifest.json, read train/val."""
    given = Path(path)
    version = resolve_bundle(given)
    if log is not None and version.resolve() != given.resolve():
        log(f"bundle: using {version.name} under {given}")
    manifest = verify_bundle(version)
    train = _read(version / "train.jsonl")
    val = _read(version / "val.jsonl") if "val.jsonl" in manifest.files else []
    if not train:
        raise BundleError(f"{version / 'train.jsonl'}: no training records")
    return Bundle(path=version.resolve(), manifest=manifest, train=train, val=val)


__all__ = ["Bundle", "BundleError", "open_bundle"]
