"""Writing a bundle version: into a temporary directory, then one rename, so a killed build
leaves no partial version and never touches an older one."""
from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable

from schemas.bundle import VERSION_DIR
from schemas.manifest import FileEntry


def write_chunks(path: Path, chunks: Iterable[tuple[bytes, int]]) -> FileEntry:
    """JSONL file from chunks of serialised records (UTF-8 lines, each ending in a newline, and
    how many); returns its hash (of the bytes as written: the file is not read back), count and
    size for the manifest. Each chunk is hashed in a thread while it is written (both let go of
    the GIL): a million records' gigabyte took a second more hashed after writing."""
    count = 0
    digest = hashlib.sha256()
    with open(path, "wb") as handle, ThreadPoolExecutor(1) as hasher:
        hashing = None
        for blob, lines in chunks:
            if hashing is not None:
                hashing.result()  # in order, and one chunk in the hasher at a time
            hashing = hasher.submit(digest.update, blob)
            handle.write(blob)
            count += lines
        if hashing is not None:
            hashing.result()
        handle.flush()
        os.fsync(handle.fileno())
    return FileEntry(sha256=digest.hexdigest(), records=count, bytes=path.stat().st_size)


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


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(staging: Path, root: Path) -> Path:
    """Rename the finished staging dir to the next free vNNNN; concurrent builds each get their own."""
    for name in os.listdir(staging):
        fd = os.open(staging / name, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
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
                _fsync_dir(root)
                return target
        number += 1


def discard(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)
