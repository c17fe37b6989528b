"""Forked worker processes for the build's parallel stages, and an ordered map over them.

concurrent.futures' process pool, not multiprocessing.Pool: the latter's worker-handler thread
also waits on the result pipe, so it wakes and spins for as long as a large result is being read
(about 2 CPU seconds of the parent's in a 1M-record build, on a machine with two cores).
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any, Callable, Iterable, Iterator


def worker_count(workers: int | None, rows: int, parallel_from: int) -> int:
    """Processes for a stage over `rows` records: 1 (this process) under `parallel_from` rows, where
    starting workers costs more than they save, or when --workers 1 says so; else --workers or all CPUs."""
    processes = workers or os.cpu_count() or 1
    return processes if processes > 1 and rows >= parallel_from else 1


@contextlib.contextmanager
def fork_pool(processes: int, initializer: Callable[..., None] | None = None,
              initargs: tuple = ()) -> Iterator[Executor | None]:
    """`processes` forked workers (they inherit the parent's loaded models and arrays), or None for
    one process: callers then run the work here. Work not yet started is cancelled on an error."""
    if processes <= 1:
        yield None
        return
    pool = ProcessPoolExecutor(processes, multiprocessing.get_context("fork"), initializer, initargs)
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def ordered_map(pool: Executor | None, fn: Callable[..., Any], tasks: Iterable[tuple],
                window: int = 16) -> Iterator[Any]:
    """fn(*task) for each task, in order: in the pool with at most `window` tasks in flight (so
    memory stays bounded), or here, one at a time, when there is no pool."""
    if pool is None:
        for task in tasks:
            yield fn(*task)
        return
    pending = []
    for task in tasks:
        pending.append(pool.submit(fn, *task))
        if len(pending) >= window:
            yield pending.pop(0).result()
    for future in pending:
        yield future.result()
