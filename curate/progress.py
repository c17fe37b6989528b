"""Progress of a build's stages: a live bar per stage on a terminal (rich), a plain line every
few seconds elsewhere (CI logs, files), so a long build is never silent.
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator

EVERY_S = 5.0  # off a terminal: at most one line per stage this often


class StageProgress:
    """Counts one stage's records and shows them: bar, records/s and time left."""

    def __init__(self, name: str, total: int | None, log: Callable[[str], None], bar=None):
        self.name, self.total, self.log, self.bar = name, total, log, bar
        self.done = 0
        self.started = self.last = time.perf_counter()
        self.task = bar.add_task(name, total=total, rate="") if bar is not None else None

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self.bar is not None:
            rate = self.done / max(time.perf_counter() - self.started, 1e-9)
            self.bar.update(self.task, completed=self.done, rate=f"{rate:>9,.0f}/s")
            return
        now = time.perf_counter()
        if now - self.last >= EVERY_S:
            self.last = now
            self.log(self._line(now))

    def _line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        of = f"/{self.total}" if self.total else ""
        left = f", {(self.total - self.done) / rate:.0f}s left" if self.total and rate > 0 else ""
        return f"{self.name}: {self.done}{of} records, {rate:,.0f}/s{left}"

    def finish(self) -> float:
        elapsed = time.perf_counter() - self.started
        if self.bar is not None:
            self.bar.update(self.task, completed=self.total or self.done, total=self.total or self.done)
        return elapsed


class Progress:
    """One bar per stage on a terminal (`live`), else lines through `log`."""

    def __init__(self, log: Callable[[str], None], live: bool | None = None):
        self.log = log
        self.live = sys.stderr.isatty() if live is None else live
        self.bar = None

    def __enter__(self) -> "Progress":
        if self.live:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as Bars

            self.bar = Bars(TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"),
                            TimeRemainingColumn(), console=Console(stderr=True), transient=False)
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()

    @contextmanager
    def stage(self, name: str, total: int | None = None) -> Iterator[StageProgress]:
        stage = StageProgress(name, total, self.log, self.bar)
        yield stage
        elapsed = stage.finish()
        if self.bar is None:
            self.log(f"{name}: {stage.done} records in {elapsed:.1f}s")
