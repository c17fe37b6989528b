"""sha256 computed in a thread beside the work that produces or writes the bytes.

hashlib lets go of the GIL on large buffers, and so do file reads and writes: a gigabyte hashed
after it was written or scanned cost a second more than hashed alongside. Pieces are hashed in
the order given, one at a time in the thread, so at most two are held.
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

READ_AT_ONCE = 1 << 22  # bytes of a file range read back at a time


class BackgroundHash:
    """A sha256 fed in order; use as a context manager (the thread ends with it)."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._thread = ThreadPoolExecutor(1)
        self._pending: Future | None = None

    def update(self, data: bytes) -> None:
        self._submit(self._digest.update, data)

    def update_from_file(self, fd: int, at: int, size: int) -> None:
        """Hash bytes [at, at + size) of an open file, read in the thread."""
        self._submit(self._read_range, fd, at, size)

    def hexdigest(self) -> str:
        self.wait()
        return self._digest.hexdigest()

    def wait(self) -> None:
        if self._pending is not None:
            self._pending.result()
            self._pending = None

    def _submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self.wait()
        self._pending = self._thread.submit(fn, *args)

    def _read_range(self, fd: int, at: int, size: int) -> None:
        for low in range(at, at + size, READ_AT_ONCE):
            self._digest.update(os.pread(fd, min(READ_AT_ONCE, at + size - low), low))

    def __enter__(self) -> BackgroundHash:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.wait()
        finally:
            self._thread.shutdown()
