"""The C allocator's settings for a prepare worker process.

Each chunk's numpy arrays (codes, hashes, signatures: tens of MB) are allocated and freed again
for every chunk. glibc hands blocks that large out as fresh memory maps and gives them back on
free, so every chunk paid for tens of thousands of page faults on memory the kernel zeroes again:
about 5 us a record, 6% of a worker's time (measured over 40k records: 51k faults -> 0).
Keeping freed memory in the worker's heap instead costs it its high-water mark (a chunk's arrays),
which it reaches on the first chunks anyway. Only worker processes are tuned: the parent holds
columns the size of the whole build, which must go back to the system when freed.
"""
from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
KEEP_BELOW = 256 << 20  # blocks under this come from the heap, not their own memory map
TRIM_ABOVE = 512 << 20  # free heap kept before any is given back


def keep_freed_memory() -> bool:
    """Tune glibc's malloc in this process; False where there is no glibc (macOS, musl)."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        return False
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, KEEP_BELOW)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_ABOVE))
