"""The jinja2 sandbox identity templates render in, every growing, looping or recursing operation
charged to the Budget of the record being rendered (see curate.template_limits).

A template over a limit raises TemplateLimitError (its record is rejected, the build goes on); a
template that does not parse, names an unknown variable or raises while running raises RenderError
(the build stops, naming its line).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from jinja2 import StrictUndefined, TemplateError, nodes
from jinja2.compiler import CodeGenerator, optimizeconst
from jinja2.runtime import LoopContext, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment

from curate.template_limits import LIMITS, Budget, TemplateLimitError, value_size


_BUDGET: Budget | None = None  # the record being rendered; renders are not concurrent (one per process)


def _budget() -> Budget:
    if _BUDGET is None:  # a template compiled or run outside render_record: no budget to spend
        raise TemplateLimitError("rendered outside a budget")
    return _BUDGET


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
                    if value_size(seq, limits.value_chars) * times > limits.value_chars:
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
                if value_size(left, limits.value_chars) + value_size(right, limits.value_chars) > limits.value_chars:
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



def render_source(source: str, values: dict[str, str], where: str, budget: Budget) -> str:
    """One jinja2 template text (placeholders already converted) rendered within `budget`.

    Raises TemplateLimitError when the template goes over a limit, RenderError when it is wrong
    (syntax, an unknown variable, an unsafe attribute, an error it raises while running)."""
    global _BUDGET
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
