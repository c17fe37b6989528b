"""Identity templates -> rendered self-cognition records, in a jinja2 sandbox with strict undefined.

Public self-cognition files spell their placeholders three ways ({{NAME}} with a zh/en tag,
{{name}}, <NAME>); all are rewritten to `{{ name }}` / `{{ author }}` before rendering, so a
user can list any of them under `identity.templates`.

Templates come from whoever wrote the recipe, so rendering one is bounded: wall time, output
length, the size of every value a template builds, loop iterations and call depth (see LIMITS).
A template over a limit rejects its own record (reason `template_limit`); the build goes on. A
template that does not parse or names an unknown variable stops the build, naming its line.
"""
from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass

from jinja2 import StrictUndefined, TemplateError, nodes
from jinja2.compiler import CodeGenerator, optimizeconst
from jinja2.runtime import LoopContext, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace
from pydantic import ValidationError

from curate.shapes import PLACEHOLDER, _reason_for, row_to_record
from curate.sources import RawRow
from schemas.manifest import Reject
from schemas.recipe import IdentityConfig, RecipeError
from schemas.record import Message, Record

_CJK = r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]"
_LEGACY = [
    (re.compile(r"\{\{\s*(?:NAME|name)\s*\}\}"), "{{ name }}"),
    (re.compile(r"\{\{\s*(?:AUTHOR|AUTHOER|author)\s*\}\}"), "{{ author }}"),
    (re.compile(r"<NAME>"), "{{ name }}"),
    (re.compile(r"<AUTHOR>"), "{{ author }}"),
]
_SPACE_BEFORE = re.compile(rf"(?<={_CJK}) (?=\{{\{{ (?:name|author) \}}\}})")
_SPACE_AFTER = re.compile(rf"(\{{\{{ (?:name|author) \}}\}}) (?={_CJK})")
_HAN = re.compile(r"[\u3400-\u9fff]")


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


class _Budget:
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
        size = _size(value, self.limits.value_chars)
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
        size = _size(values, limits.work_chars)
        widest = max((_widest(v, fmt) for v in values), default=0)
        if size > limits.work_chars:
            raise TemplateLimitError(f"{what} is given more than {limits.work_chars} characters")
        if widest > limits.work_chars or widest * (size + 1) > limits.produced_chars:
            raise TemplateLimitError(f"{what} is given a width or count of {widest} for {size} characters of input "
                                     "(too much to build)")


_BUDGET: _Budget | None = None  # the record being rendered; renders are not concurrent (one per process)


def _budget() -> _Budget:
    if _BUDGET is None:  # a template compiled or run outside render_record: no budget to spend
        raise TemplateLimitError("rendered outside a budget")
    return _BUDGET


def _size(value: object, cap: int) -> int:
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


def _bounded_range(*args: int) -> range:
    rng = range(*args)
    if len(rng) > LIMITS.iterations:
        raise TemplateLimitError(f"range() of {len(rng)} items (at most {LIMITS.iterations})")
    return rng


def _guard_filter(name: str, func):
    """A filter that spends the budget: its inputs checked before, its result after."""
    fmt = name == "format"

    @functools.wraps(func)
    def guarded(*args, **kwargs):
        budget = _budget()
        budget.take(args, kwargs, f"filter '{name}'", fmt)
        return budget.produce(func(*args, **kwargs), f"filter '{name}'")

    return guarded


def _guard_test(func):
    @functools.wraps(func)
    def guarded(*args, **kwargs):
        _budget().tick()
        return func(*args, **kwargs)

    return guarded


class _LimitedCodeGenerator(CodeGenerator):
    """`a ~ b` goes through environment.checked_parts, so a concatenation cannot outgrow the limits."""

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame) -> None:
        if frame.eval_ctx.volatile:
            func_name = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            func_name = "markup_join"
        else:
            func_name = "str_join"
        self.write(f"{func_name}(environment.checked_parts((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write(")))")


class LimitedEnvironment(ImmutableSandboxedEnvironment):
    """jinja2's immutable sandbox, with every operation that can grow, loop or recurse bounded by
    the budget of the record being rendered: `*`, `**`, `+` and `%`, `~`, calls, filters, for
    loops, output. `random` and `lipsum` are gone (a build is deterministic)."""

    code_generator_class = _LimitedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.globals["range"] = _bounded_range
        self.globals.pop("lipsum", None)
        self.filters.pop("random", None)
        self.filters = {name: _guard_filter(name, func) for name, func in self.filters.items()}
        self.tests = {name: _guard_test(func) for name, func in self.tests.items()}
        self.finalize = self._finalize

    def _parse(self, source, name, filename):
        """Every `for` loop iterates through guard_iter, which counts iterations."""
        tree = super()._parse(source, name, filename)
        for loop in list(tree.find_all(nodes.For)):
            loop.iter = nodes.Call(nodes.EnvironmentAttribute("guard_iter"), [loop.iter], [], None, None,
                                   lineno=loop.iter.lineno)
        return tree

    @staticmethod
    def guard_iter(iterable):
        budget = _budget()
        limit = budget.limits.iterations
        for item in iterable:
            budget.iterations += 1
            if budget.iterations > limit:
                raise TemplateLimitError(f"more than {limit} loop iterations")
            budget.tick()
            yield item

    def _finalize(self, value):
        return _budget().produce(value, "output")

    def checked_parts(self, parts: tuple) -> tuple:
        budget = _budget()
        budget.produce(parts, "'~'")
        return parts

    def concat(self, parts) -> str:  # the body of a macro, a {% set %} block or a {% filter %} block
        budget = _budget()
        parts = list(parts)
        if sum(map(len, parts)) > budget.limits.value_chars:
            raise TemplateLimitError(f"a block renders more than {budget.limits.value_chars} characters")
        return budget.produce("".join(parts), "a block")

    def call_binop(self, context, operator_: str, left, right):
        budget = _budget()
        budget.tick()
        limits = budget.limits
        if operator_ == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(times, int) and not isinstance(seq, (int, float)) and times > 0:
                    if _size(seq, limits.value_chars) * times > limits.value_chars:
                        raise TemplateLimitError(f"'*' builds a value over {limits.value_chars} characters")
            if isinstance(left, int) and isinstance(right, int):
                if left.bit_length() + right.bit_length() > limits.int_bits:
                    raise TemplateLimitError(f"'*' builds an integer over {limits.int_bits} bits")
        elif operator_ == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
                if right > limits.int_bits or left.bit_length() * right > limits.int_bits:
                    raise TemplateLimitError(f"'**' builds an integer over {limits.int_bits} bits")
        elif operator_ == "+":
            if not isinstance(left, (int, float)) and not isinstance(right, (int, float)):
                if _size(left, limits.value_chars) + _size(right, limits.value_chars) > limits.value_chars:
                    raise TemplateLimitError(f"'+' builds a value over {limits.value_chars} characters")
        elif operator_ == "%" and isinstance(left, str):
            budget.take((left, right), {}, "'%'", fmt=True)
        return budget.produce(super().call_binop(context, operator_, left, right), f"'{operator_}'")

    def getattr(self, obj, attribute):
        _budget().tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj, argument):
        budget = _budget()
        budget.tick()
        value = super().getitem(obj, argument)
        return budget.produce(value, "a slice") if isinstance(argument, slice) else value

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - jinja2's signature
        budget = _budget()
        limits = budget.limits
        if budget.depth >= limits.depth:
            raise TemplateLimitError(f"calls nested more than {limits.depth} deep (a recursive macro?)")
        own = __obj is _bounded_range or __obj is LimitedEnvironment.guard_iter or isinstance(__obj, Macro)
        if isinstance(__obj, LoopContext) and args:  # loop(children) in a recursive for loop
            args = (LimitedEnvironment.guard_iter(args[0]), *args[1:])
        if not own:
            name = getattr(__obj, "__name__", "")
            owner = getattr(getattr(__obj, "__wrapped__", __obj), "__self__", None)  # 'text' of 'text'.ljust(n)
            budget.take((owner, *args), kwargs, f"'{name or 'call'}()'", fmt=name in ("format", "format_map"))
        else:
            budget.tick()
        budget.depth += 1
        try:
            result = super().call(__context, __obj, *args, **kwargs)
        finally:
            budget.depth -= 1
        return result if own else budget.produce(result, f"'{getattr(__obj, '__name__', 'call')}()'")


ENV = LimitedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


@dataclass
class RenderError(Exception):
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def to_jinja(text: str) -> str:
    """Rewrite the public placeholder spellings to `{{ name }}`/`{{ author }}`.

    `我是 <NAME>，` loses the spaces that only stood there to set the Latin placeholder apart.
    """
    for pattern, replacement in _LEGACY:
        text = pattern.sub(replacement, text)
    return _SPACE_AFTER.sub(r"\1", _SPACE_BEFORE.sub("", text))


def guess_lang(record: Record) -> str:
    """A template without a tag is zh if its question has Han characters, else en."""
    text = "".join(m.content for m in record.messages if m.role == "user")
    return "zh" if _HAN.search(text) else "en"


def render_text(template: str, values: dict[str, str], where: str, budget: _Budget | None = None) -> str:
    """One template text rendered within `budget` (a fresh one if not given).

    Raises TemplateLimitError when the template goes over a limit, RenderError when it is wrong
    (syntax, an unknown variable, an unsafe attribute, an error it raises while running)."""
    global _BUDGET
    budget = budget or _Budget(LIMITS)
    source = to_jinja(template)
    if len(source) > budget.limits.source_chars:
        raise TemplateLimitError(f"template text longer than {budget.limits.source_chars} characters")
    previous, _BUDGET = _BUDGET, budget
    try:
        chunks = []
        for chunk in ENV.from_string(source).generate(**values):
            budget.output_left -= len(chunk)
            if budget.output_left < 0:
                raise TemplateLimitError(f"renders more than {budget.limits.output_chars} characters")
            chunks.append(chunk)
        return "".join(chunks)
    except TemplateLimitError:
        raise
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        at = f" (template line {line})" if line else ""
        raise RenderError(where, f"template error{at}: {exc.message or exc}") from None
    except RecursionError:
        raise TemplateLimitError("nested too deep") from None
    except (MemoryError, OverflowError) as exc:
        raise TemplateLimitError(f"a value too large ({type(exc).__name__}: {exc})"[:200]) from None
    except Exception as exc:  # an error the template raised while running, e.g. 1/0: the author's to fix
        raise RenderError(where, f"template error: {type(exc).__name__}: {exc}"[:500]) from None
    finally:
        _BUDGET = previous


_NEEDS = ("name", "author")


def explicit_needs(raw: RawRow) -> list[str] | None:
    """A template's optional `needs` field: what a correct answer must state ("name", "author", both, or
    [] for a question that asks neither, such as "Can you write code?"), where the placeholders its
    answer holds do not say it."""
    needs = raw.row.get("needs") if isinstance(raw.row, dict) else None
    if needs is None:
        return None
    items = [p.strip() for p in needs.split(",") if p.strip()] if isinstance(needs, str) else needs
    if not isinstance(items, list) or any(item not in _NEEDS for item in items):
        raise RecipeError(f"{raw.file}:{raw.line}: field 'needs': want 'name', 'author' or both (a list or "
                          f"'name,author'), got {needs!r}")
    return sorted(set(items), key=_NEEDS.index)


def render_record(template: Record, identity: IdentityConfig, needs: list[str] | None = None) -> Record | Reject:
    """One template record with name and author filled in for its language, or the Reject saying
    why not: a limit, an empty question or answer, a placeholder left over."""
    lang = template.meta.lang or guess_lang(template)
    meta = template.meta.model_copy(update={"lang": lang, "kind": "identity", "needs": needs})
    where = f"{template.meta.source}:{template.meta.line}"
    values = {"name": getattr(identity.name, lang), "author": getattr(identity.author, lang)}

    def reject(reason: str, message: str, raw: dict) -> Reject:
        return Reject(source=meta.source, line=meta.line, index=meta.index, stage="render", reason=reason,
                      message=message, raw=raw, id=meta.id, kind="identity")

    budget = _Budget(LIMITS)
    try:
        messages = [Message(role=m.role, content=render_text(m.content, values, where, budget))
                    for m in template.messages]
    except TemplateLimitError as exc:
        return reject("template_limit", f"template over a render limit: {exc}", template.to_json_dict())
    if identity.system and messages[0].role != "system":
        messages.insert(0, Message(role="system", content=identity.system))
    drafted = Record.model_construct(messages=messages, tools=template.tools, meta=meta).to_json_dict()
    if any(m.role == "user" and not m.content.strip() for m in messages):
        return reject("empty_question", "the question rendered empty", drafted)
    if not messages[-1].content.strip():
        return reject("empty_answer", "the answer rendered empty", drafted)
    try:
        rendered = Record(messages=messages, tools=template.tools, meta=meta)
    except ValidationError as exc:
        return reject(*_reason_for(exc), drafted)
    if any(PLACEHOLDER.search(m.content) for m in rendered.messages):
        return reject("unrendered_placeholder", "a placeholder survived rendering", rendered.to_json_dict())
    return rendered


def render_identity(rows: list[RawRow], identity: IdentityConfig) -> tuple[list[Record], list[Reject]]:
    """Validate template rows, render each for its language, keep the languages the recipe asks for."""
    records: list[Record] = []
    rejects: list[Reject] = []
    for raw in rows:
        raw = raw.parsed()
        parsed = row_to_record(raw, kind="identity", check_placeholders=False)
        if isinstance(parsed, Reject):
            rejects.append(parsed)
            continue
        try:
            out = render_record(parsed, identity, explicit_needs(raw))
        except RenderError as exc:
            raise RecipeError(str(exc)) from None
        if isinstance(out, Record) and out.meta.lang not in identity.languages:
            out = Reject(source=out.meta.source, line=out.meta.line, index=out.meta.index, stage="render",
                         reason="language_not_wanted",
                         message=f"identity language '{out.meta.lang}' is not in identity.languages",
                         raw=out.to_json_dict(), id=out.meta.id, kind="identity")
        (rejects if isinstance(out, Reject) else records).append(out)
    return records, rejects
