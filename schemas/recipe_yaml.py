"""Reading a recipe file as bounded YAML: a recipe may come from someone else, so it is data, never
code, and reading it cannot be made to take unbounded time or memory.

- YAML is read by a SafeLoader subclass (no Python tags), from a regular file of at most 1 MiB
  (checked before parsing). While composing it refuses duplicate mapping keys, nesting deeper
  than 64, more than 100 alias uses (`*name`), aliases that would add more than 10,000 nodes
  when expanded (a "billion laughs" bomb) and an alias inside the node it names.
- Every problem is a RecipeError naming the file (and the YAML line when known). RecipeError is
  defined here so this module needs nothing from schemas.recipe, which re-exports it.
"""
from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import yaml

MAX_RECIPE_BYTES = 1 << 20  # 1 MiB: a recipe is a page of settings, not data
MAX_ALIASES = 100  # alias uses (`*name`) in one recipe
MAX_ALIAS_NODES = 10_000  # YAML nodes all alias uses together may add once expanded
MAX_DEPTH = 64  # nested collections


class RecipeError(ValueError):
    """A recipe problem, worded as one line naming the file and the key."""


class _Refused(yaml.MarkedYAMLError):
    """A YAML construct a recipe may not use (worded without 'not valid YAML')."""


def _show(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class RecipeLoader(yaml.SafeLoader):
    """yaml.SafeLoader with compose-time bounds: see the module docstring."""

    def __init__(self, stream):
        super().__init__(stream)
        self._aliases = 0
        self._alias_nodes = 0
        self._depth = 0
        self._open: set[str] = set()  # anchors whose node is being composed
        self._sizes: dict[int, tuple[int, int]] = {}

    def _extent(self, node: yaml.Node) -> tuple[int, int]:
        """(nodes, levels) of `node` with every alias expanded; memoised, so linear in the distinct
        nodes, and its recursion is as deep as MAX_DEPTH at most (deeper trees were refused)."""
        key = id(node)
        if key not in self._sizes:
            if isinstance(node, yaml.SequenceNode):
                children = node.value
            elif isinstance(node, yaml.MappingNode):
                children = [part for pair in node.value for part in pair]
            else:
                children = []
            extents = [self._extent(child) for child in children]
            self._sizes[key] = (1 + sum(n for n, _ in extents), 1 + max((d for _, d in extents), default=0))
        return self._sizes[key]

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _Refused(None, None, f"more than {MAX_ALIASES} aliases (*name); write the values out",
                               event.start_mark)
            if event.anchor in self._open:
                raise _Refused(None, None, f"alias *{event.anchor} is inside the node it names", event.start_mark)
            if event.anchor in self.anchors:
                nodes, levels = self._extent(self.anchors[event.anchor])
                self._alias_nodes += nodes
                if self._alias_nodes > MAX_ALIAS_NODES:
                    raise _Refused(None, None, f"aliases expand to more than {MAX_ALIAS_NODES} values "
                                   "(a 'billion laughs' bomb?); write the values out", event.start_mark)
                if self._depth + levels > MAX_DEPTH:
                    raise _Refused(None, None, f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
            return super().compose_node(parent, index)
        anchor = getattr(event, "anchor", None)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(None, None, f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
        if anchor is not None:
            self._open.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            self._open.discard(anchor)

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # unhashable: the constructor refuses it below
                    continue
                if first is not None:
                    raise _Refused(None, None, f"duplicate key {_show(key)} (first on line {first + 1})",
                                   key_node.start_mark)
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _read_text(path: Path) -> str:
    """The recipe's text: a regular file of at most MAX_RECIPE_BYTES, refused before parsing."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise RecipeError(f"{path}: cannot read recipe: not a regular file")
        if info.st_size > MAX_RECIPE_BYTES:
            raise RecipeError(f"{path}: recipe is {info.st_size} bytes, more than the {MAX_RECIPE_BYTES} "
                              "a recipe may have")
        with open(path, "rb") as handle:
            data = handle.read(MAX_RECIPE_BYTES + 1)  # the file may have grown since stat
        if len(data) > MAX_RECIPE_BYTES:
            raise RecipeError(f"{path}: recipe is more than the {MAX_RECIPE_BYTES} bytes a recipe may have")
        return data.decode("utf-8")
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read recipe: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{path}: cannot read recipe: not UTF-8 at byte {exc.start}") from None


def _parse(path: Path, text: str) -> Any:
    try:
        return yaml.load(text, Loader=RecipeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        if isinstance(exc, _Refused):
            raise RecipeError(f"{path}:{where} {problem}") from None
        raise RecipeError(f"{path}:{where} not valid YAML: {problem}") from None
    except (ValueError, OverflowError, RecursionError) as exc:  # e.g. a date like 2024-02-30
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RecipeError(f"{path}: not valid YAML: {first}") from None


def read_recipe_yaml(path: Path) -> Any:
    """The recipe file's YAML document as plain data, read within the bounds above."""
    return _parse(path, _read_text(path))
