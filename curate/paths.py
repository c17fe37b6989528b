"""Where a recipe's input paths lead: globs expanded deterministically and within a budget, and
every path confined (symlinks followed) to the recipe's folder and the --data-root folders.
"""
from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Iterator, Sequence

from curate.raw_row import SourceError

GLOB_BUDGET = 200_000  # directory entries one glob may look at


def expand(pattern: str, base: Path, roots: Sequence[Path] | None = None) -> list[Path]:
    """A path or glob relative to `base`, sorted so builds are deterministic.

    Globs follow glob.glob's rules (`**` is any depth, names starting with '.' only match a part
    that starts with '.'), except that `**` never descends into a symlinked folder, so a symlink
    loop cannot make it run forever, and a glob that looks at more than GLOB_BUDGET entries stops
    with a SourceError. With `roots` (the recipe's folder first, then --data-root folders), the
    path, or a glob's fixed leading folder and then each of its matches, must resolve (symlinks
    followed) inside one of them, else SourceError naming the resolved path.
    """
    full = base / pattern
    if not any(ch in pattern for ch in "*?["):
        if roots is not None:
            inside(full, roots, pattern)
        return [full]
    parts = Path(pattern).parts
    fixed = next(i for i, part in enumerate(parts) if any(ch in part for ch in "*?["))
    start = base.joinpath(*parts[:fixed])
    if roots is not None:
        inside(start, roots, Path(*parts[:fixed]).as_posix() if fixed else ".")
    budget = [GLOB_BUDGET]
    matches = sorted({p for p in _glob(start, parts[fixed:], budget, pattern) if p.is_file()})
    if roots is not None:
        for match in matches:
            inside(match, roots, Path(os.path.relpath(match, base)).as_posix())
    return matches


def _glob(folder: Path, parts: Sequence[str], budget: list[int], pattern: str, depth: int = 0) -> Iterator[Path]:
    if depth > 64:
        raise SourceError(f"{pattern}: the glob reaches folders nested more than 64 deep; narrow it")
    if not parts:
        yield folder
        return
    part, rest = parts[0], parts[1:]
    if part == "**":
        yield from _glob(folder, rest, budget, pattern, depth + 1)
        for entry in _entries(folder, budget, pattern):
            if entry.name.startswith("."):
                continue
            if not rest:
                yield folder / entry.name
            if entry.is_dir(follow_symlinks=False):
                yield from _glob(folder / entry.name, parts, budget, pattern, depth + 1)
    elif any(ch in part for ch in "*?["):
        for entry in _entries(folder, budget, pattern):
            if (part.startswith(".") or not entry.name.startswith(".")) and fnmatch.fnmatchcase(entry.name, part):
                yield from _glob(folder / entry.name, rest, budget, pattern, depth + 1)
    else:
        yield from _glob(folder / part, rest, budget, pattern, depth + 1)


def _entries(folder: Path, budget: list[int], pattern: str) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except OSError:
        return []
    budget[0] -= len(entries)
    if budget[0] < 0:
        raise SourceError(f"{pattern}: the glob looks at more than {GLOB_BUDGET} files and folders; narrow it")
    return entries


def inside(path: Path, roots: Sequence[Path], shown: str) -> Path:
    """`path` resolved, symlinks followed; SourceError unless it lies inside one of `roots`."""
    try:
        resolved = Path(path).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
        raise SourceError(f"{shown}: cannot resolve (a symlink loop?)") from None
    if any(resolved.is_relative_to(root) for root in roots):
        return resolved
    where = "the recipe's folder" + (" and the --data-root folders" if len(roots) > 1 else "")
    raise SourceError(f"{shown} resolves to {resolved}, outside {where}; pass --data-root DIR to allow it")


def label_for(path: Path, base: Path) -> str:
    """A path as the manifest names it: relative to the recipe folder, with forward slashes."""
    try:
        return Path(path).resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return Path(os.path.relpath(Path(path).resolve(), base.resolve())).as_posix()
