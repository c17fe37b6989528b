"""What rendering one identity template record may cost, and the counters that spend it.

Templates come from whoever wrote the recipe, so a render is bounded: wall time, output length,
the size of every value a template builds, loop iterations and call depth. This module holds the
numbers (LIMITS) and the per-record Budget; curate.template_sandbox charges it from jinja2's hooks.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass

from jinja2.utils import Namespace


@dataclass(frozen=True)
class Limits:
    """What one template record may cost to render (all its turns together)."""

    seconds: float = 1.0  # wall time
    output_chars: int = 65_536  # characters of rendered text
    source_chars: int = 65_536  # characters of one template text
    value_chars: int = 65_536  # any one value a template builds: a string's length, a list's total size
    work_chars: int = 1 << 20  # the input of one call or filter, and the largest width or count it is given
    produced_chars: int = 16 << 20  # everything the template builds added up, and width x input of one call
    iterations: int = 100_000  # loop iterations, and the length of a range()
    depth: int = 32  # nested calls: macros calling macros, recursive loops
    int_bits: int = 8192  # an integer's size (about 2,466 digits)


LIMITS = Limits()


class TemplateLimitError(Exception):
    """A template went over one of LIMITS: its record is rejected, the build goes on."""


class Budget:
    """The limits' running counters for one record being rendered."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.deadline = time.perf_counter() + limits.seconds
        self.output_left = limits.output_chars
        self.produced = 0
        self.iterations = 0
        self.depth = 0

    def tick(self) -> None:
        if time.perf_counter() > self.deadline:
            raise TemplateLimitError(f"took longer than {self.limits.seconds:g} s to render")

    def produce(self, value: object, what: str) -> object:
        """Count a value the template built, refusing one over the value limit."""
        self.tick()
        size = value_size(value, self.limits.value_chars)
        if size > self.limits.value_chars:
            raise TemplateLimitError(f"{what} builds a value over {self.limits.value_chars} characters")
        self.produced += size
        if self.produced > self.limits.produced_chars:
            raise TemplateLimitError(f"builds more than {self.limits.produced_chars} characters in all")
        if isinstance(value, int) and value.bit_length() > self.limits.int_bits:
            raise TemplateLimitError(f"{what} builds an integer over {self.limits.int_bits} bits")
        return value

    def take(self, args: tuple, kwargs: dict, what: str, fmt: bool = False) -> None:
        """Refuse an operation's inputs when they, or a width or count among them times their
        size, exceed the work limit. `fmt`: the strings are format strings, whose digits are widths."""
        self.tick()
        values = (*args, *kwargs.values())
        limits = self.limits
        size = value_size(values, limits.work_chars)
        widest = max((_widest(v, fmt) for v in values), default=0)
        if size > limits.work_chars:
            raise TemplateLimitError(f"{what} is given more than {limits.work_chars} characters")
        if widest > limits.work_chars or widest * (size + 1) > limits.produced_chars:
            raise TemplateLimitError(f"{what} is given a width or count of {widest} for {size} characters of input "
                                     "(too much to build)")



def value_size(value: object, cap: int) -> int:
    """About how many characters `str(value)` takes, counting no further than past `cap`."""
    total = 0
    stack = [value]
    while stack and total <= cap:
        item = stack.pop()
        if isinstance(item, (str, bytes, bytearray)):
            total += len(item)
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 2 + len(item)
            stack.extend(item)
        elif isinstance(item, dict):
            total += 2 + len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, Namespace):
            total += 12
            stack.append(item._Namespace__attrs)
        else:
            total += 8
    return total


_DIGITS = re.compile(r"\d+")


def _widest(value: object, fmt: bool) -> int:
    """The largest width or count a value could ask for: an int, or a digit run in a format string."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return abs(value)
    if fmt and isinstance(value, str):
        runs = [m.group() for m in _DIGITS.finditer(value)]
        return 10 ** 12 if any(len(run) > 12 for run in runs) else max(map(int, runs), default=0)
    if isinstance(value, (tuple, list)) and fmt:
        return max((_widest(v, fmt) for v in value[:64]), default=0)
    if isinstance(value, dict) and fmt:
        return max((_widest(v, fmt) for v in list(value.values())[:64]), default=0)
    return 0
