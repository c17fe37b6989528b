"""Writing a bundle version: into a temporary directory, then one rename, so a killed build
leaves no partial version and never touches an older one."""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable

from curate.hashing import BackgroundHash
from schemas.bundle import VERSION_DIR
from schemas.manifest import FileEntry


def write_chunks(path: Path, chunks: Iterable[tuple[bytes, int]]) -> FileEntry:
    """JSONL file from chunks of serialised records (UTF-8 lines, each ending in a newline, and
    how many); returns its hash (of the bytes as written, in a thread while they are written: the
    file is not read back), count and size for the manifest. Synced by `publish`."""
    count = 0
    with open(path, "wb") as handle, BackgroundHash() as digest:
        for blob, lines in chunks:
            digest.update(blob)
            handle.write(blob)
            count += lines
        hexdigest = digest.hexdigest()
    return FileEntry(sha256=hexdigest, records=count, bytes=path.stat().st_size)


class PlacedFile:
    """A bundle file whose parts other processes write at places known ahead: hashed here part by
    part, in order, as they land (read back and hashed in a thread, curate.hashing). Use as a
    context manager: on leaving, every part is hashed (the file is synced by `publish`)."""

    def __init__(self, path: Path, size: int):
        self.path, self.size = path, size
        with open(path, "wb") as handle:
            handle.truncate(size)
        self._fd = os.open(path, os.O_RDONLY)
        self._digest = BackgroundHash()
        self._hashed_to = 0

    def hash(self, at: int, size: int) -> None:
        """The part at [at, at + size) is written: hash it (parts come in file order)."""
        if at != self._hashed_to:
            raise ValueError(f"{self.path.name}: part at byte {at} hashed before the bytes from {self._hashed_to}")
        self._digest.update_from_file(self._fd, at, size)
        self._hashed_to = at + size

    def entry(self, records: int) -> FileEntry:
        if self._hashed_to != self.size or self.path.stat().st_size != self.size:
            raise ValueError(f"{self.path.name}: {self._hashed_to} of {self.size} bytes written")
        return FileEntry(sha256=self._digest.hexdigest(), records=records, bytes=self.size)

    def __enter__(self) -> PlacedFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        try:
            self._digest.__exit__(kind, *rest)  # waits for the last part unless something failed
        finally:
            os.close(self._fd)


def write_at(path: Path, data: bytes, at: int, create: bool = False) -> int:
    """Write all of `data` at byte `at` of the file (made when `create`); returns the bytes written."""
    fd = os.open(path, os.O_WRONLY | (os.O_CREAT if create else 0), 0o600)
    try:
        view, written = memoryview(data), 0
        while written < len(data):
            written += os.pwrite(fd, view[written:], at + written)
    finally:
        os.close(fd)
    return written


def new_staging_dir(root: Path) -> Path:
    """A fresh `.building-<pid>-*` dir; those left by builds that were killed are removed first."""
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".building-*"):
        pid = stale.name.split("-")[1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f".building-{os.getpid()}-", dir=root))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fsync_path(path: Path) -> None:
    """Sync a file's data, or a folder's entries, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(staging: Path, root: Path) -> Path:
    """Rename the finished staging dir to the next free vNNNN; concurrent builds each get their own."""
    for name in os.listdir(staging):
        fsync_path(staging / name)
    os.chmod(staging, 0o755)
    numbers = [int(m.group(1)) for p in root.iterdir() if (m := VERSION_DIR.match(p.name))]
    number = max(numbers, default=0) + 1
    while True:
        target = root / f"v{number:04d}"
        if not target.exists():
            try:
                # Atomic; fails (ENOTEMPTY) if a concurrent build took the name since we looked.
                os.rename(staging, target)
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
            else:
                fsync_path(root)
                return target
        number += 1


def discard(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)
