"""ms-swift's command-line forms, rewritten into ones click parses, before click sees them.

`swift sft` takes booleans as values (`--packing true`, `--bf16 false`) and lists as several
words (`--target_modules q_proj v_proj`, `--dataset a.json#500 b.jsonl`, `--model_name 小格 Grace`);
click has neither a flag that optionally takes a value nor an option with any number of values.
So the tutorials' command lines work as typed: `--X true` becomes `--X`, `--X false` `--no-X`,
a joined list `--X a,b`, a repeated one `--X a --X b`. Everything else passes through unchanged.
"""
from __future__ import annotations

from typing import Collection

TRUE = frozenset({"true", "yes", "1"})
FALSE = frozenset({"false", "no", "0"})


class SwiftArgsError(ValueError):
    """A boolean option given a value that is neither true nor false."""


def _key(token: str) -> str:
    return token[2:].split("=", 1)[0].replace("-", "_")


def _is_option(token: str) -> bool:
    return token.startswith("-") and len(token) > 1


def normalise_args(args: list[str], booleans: Collection[str] = (), joined: Collection[str] = (),
                   repeated: Collection[str] = ()) -> list[str]:
    """`args` with ms-swift's forms rewritten for click.

    booleans: option names (underscored) that are on/off flags; `--X true|false` and `--X=true|false`
    become `--X` / `--no-X` (a bare `--X` stays on). joined: options whose several values join with
    commas into one. repeated: options whose several values become one `--X value` each. A value list
    ends at the next word that starts with '-' or at `--`, after which nothing is rewritten.
    """
    out: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        i += 1
        if token == "--":
            out += args[i - 1:]
            break
        if not token.startswith("--") or len(token) == 2:
            out.append(token)
            continue
        key, spelled = _key(token), token.split("=", 1)[0]
        inline = token.split("=", 1)[1] if "=" in token else None
        if key in booleans:
            value = inline
            if value is None and i < len(args) and args[i].lower() in TRUE | FALSE:
                value = args[i]
                i += 1
            if value is None or value.lower() in TRUE:
                out.append(spelled)
            elif value.lower() in FALSE:
                out.append("--no-" + spelled[2:])
            else:
                raise SwiftArgsError(f"{spelled}: '{value}' is not true or false")
            continue
        if key not in joined and key not in repeated:
            out.append(token)
            continue
        values = [inline] if inline is not None else []
        while i < len(args) and not _is_option(args[i]) and (inline is None):
            values.append(args[i])
            i += 1
        if not values:  # let click report the missing value
            out.append(token)
        elif key in joined:
            out += [spelled, ",".join(values)]
        else:
            for value in values:
                out += [spelled, value]
    return out


def swift_command(booleans: Collection[str], joined: Collection[str], repeated: Collection[str]) -> type:
    """A click.Command class whose arguments go through normalise_args first (as `cls=` of a command)."""
    import click

    class SwiftCommand(click.Command):
        def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
            try:
                args = normalise_args(list(args), booleans, joined, repeated)
            except SwiftArgsError as exc:
                raise click.UsageError(str(exc), ctx) from None
            return super().parse_args(ctx, args)

    return SwiftCommand
