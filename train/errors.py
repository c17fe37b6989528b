"""Exceptions the CLI turns into a single `train: ...` line instead of a traceback.

Exit status: 2 for bad input (a bundle, model folder, adapter or setting the user can fix),
1 for a failure while running (the training loop, the disk, memory).
"""
from __future__ import annotations

EXIT_BAD_INPUT = 2
EXIT_FAILURE = 1


class TrainError(RuntimeError):
    """A problem the user can fix (bad path, missing package, bad setting), worded as one line."""

    exit_code = EXIT_BAD_INPUT


class TrainFailure(TrainError):
    """Something went wrong while running, not in what was given, worded as one line."""

    exit_code = EXIT_FAILURE


def short_reason(exc: BaseException, limit: int = 240) -> str:
    """First meaningful line of an exception message, trimmed: enough to act on, no wall of text."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
