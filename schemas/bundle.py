"""Finding and checking a bundle on disk; shared so `train` never needs to import `curate`.

Layout: <output root>/v0001/{train,val,rejects}.jsonl + manifest.json (+ report.html).
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Iterator

from schemas.manifest import Manifest
from schemas.record import Record

VERSION_DIR = re.compile(r"^v(\d{4,})$")
DATA_FILES = ("train.jsonl", "val.jsonl", "rejects.jsonl")


class BundleError(ValueError):
    """A bundle that is missing, incomplete or changed since it was written."""


def version_dirs(root: Path) -> list[Path]:
    """Complete versions under an output root, oldest first (temporary build dirs are skipped)."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir()
             if p.is_dir() and (m := VERSION_DIR.match(p.name)) and (p / "manifest.json").is_file()]
    return [p for _, p in sorted(found)]


def resolve_bundle(path: str | Path) -> Path:
    """A version directory as given, or the newest version under an output root."""
    path = Path(path)
    if (path / "manifest.json").is_file():
        return path
    versions = version_dirs(path)
    if not versions:
        raise BundleError(f"{path}: no bundle version here (expected manifest.json or v0001/... under it)")
    return versions[-1]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_manifest(version_dir: Path) -> Manifest:
    try:
        return Manifest.model_validate_json((version_dir / "manifest.json").read_bytes())
    except (OSError, ValueError) as exc:
        raise BundleError(f"{version_dir / 'manifest.json'}: unreadable manifest: {str(exc).splitlines()[0]}") from None


def verify_bundle(version_dir: Path) -> Manifest:
    """Refuse a bundle whose files differ from what its manifest recorded, naming the file."""
    manifest = load_manifest(version_dir)
    for name, entry in manifest.files.items():
        file = version_dir / name
        if not file.is_file():
            raise BundleError(f"{file}: missing from the bundle")
        if file.stat().st_size != entry.bytes or sha256_file(file) != entry.sha256:
            raise BundleError(f"{file}: changed or truncated since the build (sha256 differs from manifest.json)")
    return manifest


def read_records(path: Path) -> Iterator[Record]:
    """Records of a bundle split file (train.jsonl or val.jsonl)."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield Record.model_validate(json.loads(line))
