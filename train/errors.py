"""One exception type the CLI turns into a single `train: ...` line instead of a traceback."""
from __future__ import annotations


class TrainError(RuntimeError):
    """A problem the user can fix (bad path, missing package, bad setting), worded as one line."""


def short_reason(exc: BaseException, limit: int = 240) -> str:
    """First meaningful line of an exception message, trimmed: enough to act on, no wall of text."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
