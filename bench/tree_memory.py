"""Peak memory of a process tree (a build and its forked workers), sampled while it runs.

Memory is the sum of each process's PSS (proportional set size): forked workers share pages with
their parent, and summing plain RSS would count those pages once per process. Reading PSS makes
the kernel walk each process's page tables (about 2 ms for a 400 MB process; every 0.1 s that was
3 CPU seconds in a 50-second build on two cores), so a build timed for speed is run unsampled.
"""
from __future__ import annotations

import psutil


class TreePeak:
    """Sampled peak of the summed PSS (bytes) of a process and all its descendants."""

    def __init__(self, pid: int):
        self.root = psutil.Process(pid)
        self.peak = 0

    def sample(self) -> None:
        try:
            tree = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:  # the root has ended
            return
        total = 0
        for process in tree:
            try:
                total += process.memory_full_info().pss
            except psutil.Error:  # a worker that ended between the listing and the read
                pass
        self.peak = max(self.peak, total)
