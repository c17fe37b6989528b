"""A rich progress bar on stderr showing step, loss, learning rate and tokens/s.

Off a terminal (CI logs, tests) it prints one plain line every ~10% instead of redrawing.
"""
from __future__ import annotations

import sys


class ProgressBar:
    def __init__(self, total: int, start: int = 0, enabled: bool = True):
        self.total = total
        self.enabled = enabled
        self._progress = None
        self._task = None
        self._last_plain = start
        if not enabled:
            return
        from rich.console import Console

        self.console = Console(stderr=True)
        if self.console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                TextColumn("{task.fields[stats]}"), console=self.console)
            self._task = self._progress.add_task("train", total=total, completed=start, stats="")
            self._progress.start()

    def update(self, step: int, loss: float, lr: float, tokens_per_s: float) -> None:
        if not self.enabled:
            return
        stats = f"loss {loss:.4f}  lr {lr:.2e}  {tokens_per_s:,.0f} tok/s"
        if self._progress is not None:
            self._progress.update(self._task, completed=step, stats=stats)
        elif step == self.total or step - self._last_plain >= max(1, self.total // 10):
            self._last_plain = step
            print(f"step {step}/{self.total}  {stats}", file=sys.stderr, flush=True)

    def note(self, text: str) -> None:
        if not self.enabled:
            return
        if self._progress is not None:
            self._progress.console.print(text)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
