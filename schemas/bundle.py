"""Finding and checking a bundle on disk; shared so `train` never needs to import `curate`.

Layout: <output root>/v0001/{train,val,rejects}.jsonl + manifest.json (+ report.html).

A bundle may come from someone else, so `verify_bundle` checks it as a whole before anything reads
a record: the version folder holds only the files a build writes, each a plain file (no symlink,
folder or device); the manifest is JSON that fits the schema; it lists train.jsonl (and every
other data file present) with its sha256, names nothing outside the folder, and its id is the one
the build computes from the recipe and those hashes. Each refusal is one BundleError line naming
the file and, where there is one, the key.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from pathlib import Path
from typing import Any, Iterator, Mapping

from pydantic import ValidationError

from schemas.json_file import JsonFileError, read_json_object
from schemas.manifest import FileEntry, Manifest
from schemas.record import Record

VERSION_DIR = re.compile(r"^v(\d{4,})$")
DATA_FILES = ("train.jsonl", "val.jsonl", "rejects.jsonl")
MANIFEST = "manifest.json"
REPORT = "report.html"
BUNDLE_FILES = (*DATA_FILES, MANIFEST, REPORT)  # everything a build writes into a version folder
PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # a recipe's `name` (schemas.recipe.Recipe.name)
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


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


def manifest_id(files: Mapping[str, FileEntry | Mapping[str, Any]], recipe: Mapping[str, Any]) -> str:
    """A bundle's id: sha256 over the resolved recipe (sorted-key JSON), then `name:sha256` per data file
    in name order. The build (curate.pipeline) writes it; `verify_bundle` recomputes it."""
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True, ensure_ascii=False).encode())
    for name in sorted(files):
        entry = files[name]
        sha = entry.sha256 if isinstance(entry, FileEntry) else entry["sha256"]
        digest.update(f"{name}:{sha}".encode())
    return digest.hexdigest()


def _validation_line(exc: ValidationError) -> str:
    """`key.path: message` for the first problem pydantic found."""
    err = exc.errors()[0]
    key = ".".join(str(part) for part in err["loc"]) or "(top level)"
    message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{key}: {message}{more}"


def _plain_file(path: Path) -> os.stat_result:
    """lstat of a bundle file that must be a regular file: a symlink (it could point anywhere), a
    folder or a device/FIFO (reading it could hang) is refused."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise BundleError(f"{path}: missing from the bundle") from None
    except OSError as exc:
        raise BundleError(f"{path}: cannot read: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a symlink" if stat.S_ISLNK(info.st_mode) else "a folder" if stat.S_ISDIR(info.st_mode) \
            else "not a regular file"
        raise BundleError(f"{path}: is {kind}; a bundle version holds plain files only")
    return info


def load_manifest(version_dir: Path) -> Manifest:
    """The manifest, parsed and validated; any problem is one line naming the file (and the key)."""
    file = version_dir / MANIFEST
    try:
        data = read_json_object(file)
    except JsonFileError as exc:
        raise BundleError(str(exc)) from None
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise BundleError(f"{file}: {_validation_line(exc)}") from None


def verify_bundle(version_dir: Path) -> Manifest:
    """Check a version folder as a whole (see the module docstring); return its manifest."""
    version_dir = Path(version_dir)
    manifest_file = version_dir / MANIFEST
    try:
        entries = sorted(os.listdir(version_dir))
    except OSError as exc:
        raise BundleError(f"{version_dir}: cannot list the bundle folder: {exc.strerror}") from None
    for name in entries:
        if name not in BUNDLE_FILES:
            raise BundleError(f"{version_dir / name}: unexpected file in a bundle version (a build writes only "
                              f"{', '.join(BUNDLE_FILES)}); rebuild the bundle or remove it")
        _plain_file(version_dir / name)
    if MANIFEST not in entries:
        raise BundleError(f"{manifest_file}: missing from the bundle")
    manifest = load_manifest(version_dir)

    if not PLAIN_NAME.match(manifest.name):
        raise BundleError(f"{manifest_file}: name: {manifest.name!r} is not a plain name "
                          "(letters, digits, '_', '.', '-'; it names the default output folder)")
    if not manifest.files:
        raise BundleError(f"{manifest_file}: files: lists no data files; every data file must be listed "
                          "with its sha256")
    for name, entry in manifest.files.items():
        if name not in DATA_FILES:
            raise BundleError(f"{manifest_file}: files.{name}: not a bundle data file "
                              f"(expected {', '.join(DATA_FILES)})")
        if not SHA256_HEX.match(entry.sha256):
            raise BundleError(f"{manifest_file}: files.{name}.sha256: not a sha256 hex digest")
    if "train.jsonl" not in manifest.files:
        raise BundleError(f"{manifest_file}: files.train.jsonl: missing; every data file must be listed "
                          "with its sha256")
    for name in DATA_FILES:
        if name in entries and name not in manifest.files:
            raise BundleError(f"{version_dir / name}: not listed in manifest.json files (no sha256 to check it "
                              "against); rebuild the bundle")
    for name, entry in manifest.files.items():
        file = version_dir / name
        info = _plain_file(file)
        if info.st_size != entry.bytes or sha256_file(file) != entry.sha256:
            raise BundleError(f"{file}: changed or truncated since the build (sha256 differs from manifest.json)")
    if manifest_id(manifest.files, manifest.recipe) != manifest.id:
        raise BundleError(f"{manifest_file}: id: does not match the recipe and file hashes the manifest holds "
                          "(edited after the build?); rebuild the bundle")
    return manifest


def read_records(path: Path) -> Iterator[Record]:
    """Records of a bundle split file (train.jsonl or val.jsonl)."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield Record.model_validate(json.loads(line))
