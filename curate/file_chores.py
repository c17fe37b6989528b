"""File work the build need not wait for as it happens: syncing finished bundle files to disk and
removing spills no later stage reads. One background thread does it in order, so a file's sync
(waiting on the disk) and a spill's removal (the kernel freeing a gigabyte's blocks) overlap with
the stages that follow. `publish` still syncs every file of the version, then quickly.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from curate.bundle import fsync_path


class FileChores:
    """Background file chores; use as a context manager: leaving waits for all of them."""

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(1)
        self._pending: list[Future] = []

    def sync(self, path: Path) -> None:
        """Write the file's data to disk now, in the background."""
        self._pending.append(self._thread.submit(fsync_path, path))

    def run(self, chore: Callable[[], None]) -> None:
        self._pending.append(self._thread.submit(chore))

    def wait(self) -> None:
        """Every chore done; the first one that failed raises here."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def __enter__(self) -> FileChores:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        try:
            if kind is None:
                self.wait()
        finally:
            self._thread.shutdown(wait=True)

