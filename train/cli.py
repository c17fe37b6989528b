"""`train` command line: parse flags, call library functions, turn known errors into one line.

Flags are spelled like ms-swift (--lora_rank) and also accepted dashed (--lora-rank). Options left
unset stay None so the recipe's `train:` section can fill them before the built-in defaults.

--trust_remote_code (run a model folder's own code) and --allow_pickle (load pickle weights) exist
on run, chat, eval, merge and serve and are the only way to turn either on. Errors exit 2 for bad input
(bundle, model or adapter folder, setting) and 1 for a failure while running (disk, memory).
"""
from __future__ import annotations

import functools
import os
import sys
from typing import Any, Callable

import click

from train.config import TrainConfig, TrainConfigError
from train.errors import EXIT_BAD_INPUT, EXIT_FAILURE, TrainError
from train.swift_args import swift_command

FIELDS = TrainConfig.model_fields


def _flag(name: str, type_: Any = None, is_flag: bool = False, help_: str | None = None, aliases: tuple = ()):
    """--name and --name-with-dashes (and any `aliases`) for TrainConfig field `name`, default None, help
    shows the real default. A flag also has --no-name; `--name true|false` works too (train.swift_args)."""
    words = [name, *aliases]
    spellings = [f"--{w}" for w in words] + [f"--{w.replace('_', '-')}" for w in words if "_" in w]
    field = FIELDS[name]
    text = help_ or field.description or ""
    text = f"{text} [default: {field.default}]".strip()
    if is_flag:
        return click.option(*(f"{s}/--no-{s[2:]}" for s in spellings), name, default=None, help=text)
    return click.option(*spellings, name, type=type_, default=None, help=text)


TRAIN_FLAGS = [
    _flag("model", str), _flag("train_type", click.Choice(["lora", "full"]), aliases=("tuner_type",)),
    _flag("lora_rank", int), _flag("lora_alpha", int), _flag("lora_dropout", float), _flag("target_modules", str),
    _flag("learning_rate", float), _flag("num_train_epochs", float), _flag("max_steps", int),
    _flag("per_device_train_batch_size", int), _flag("per_device_eval_batch_size", int),
    _flag("gradient_accumulation_steps", int), _flag("max_grad_norm", float), _flag("dataloader_num_workers", int),
    _flag("torch_dtype", click.Choice(["bfloat16", "float16", "float32"])),
    _flag("max_length", int), _flag("output_dir", str), _flag("seed", int), _flag("system", str),
    _flag("template", click.Choice(["chatml", "gemma", "llama3"])),
    _flag("warmup_ratio", float), _flag("weight_decay", float), _flag("trust_remote_code", is_flag=True),
    _flag("allow_pickle", is_flag=True),
    _flag("packing", is_flag=True), _flag("eval_steps", int), _flag("save_steps", int),
    _flag("save_total_limit", int), _flag("early_stopping_patience", int),
    _flag("gradient_checkpointing", is_flag=True), _flag("quant", click.Choice(["4bit"])),
    _flag("logging_steps", int), _flag("resume", is_flag=True),
    click.option("--bf16/--no-bf16", "bf16", default=None, help="bf16 where supported [default: auto; fp32 on CPU]"),
]
# ms-swift's way in: sources, identity and val share instead of a bundle (train.dataset_run).
DATASET_FLAGS = [
    click.option("--dataset", "dataset", multiple=True, help="build the bundle from these sources (files, folders, "
                 "hub datasets, each optionally SOURCE#N) instead of naming BUNDLE; several may follow one --dataset"),
    click.option("--model_name", "--model-name", "model_name", multiple=True,
                 help="with --dataset: the identity's name, Chinese then English (one value: both)"),
    click.option("--model_author", "--model-author", "model_author", multiple=True,
                 help="with --dataset: the identity's author, Chinese then English (one value: both)"),
    click.option("--split_dataset_ratio", "--split-dataset-ratio", "split_dataset_ratio", type=float, default=None,
                 help="with --dataset: the share of records held out for validation [default: 0.1]"),
]
BOOLEAN_FLAGS = {name for name, field in FIELDS.items() if field.annotation in (bool, bool | None)}
RunCommand = swift_command(BOOLEAN_FLAGS, joined={"target_modules"}, repeated={"dataset", "model_name", "model_author"})


def _apply(options: list[Callable]) -> Callable:
    def decorate(func):
        for option in reversed(options):
            func = option(func)
        return func
    return decorate


# The flags chat, eval and merge share with run: what a loaded folder may do is the user's call alone.
LOAD_FLAGS = [
    click.option("--trust_remote_code", "--trust-remote-code", "trust_remote_code", is_flag=True, default=False,
                 help="run the model folder's own Python code (auto_map); only for folders you trust"),
    click.option("--allow_pickle", "--allow-pickle", "allow_pickle", is_flag=True, default=False,
                 help="load pickle weights (pytorch_model.bin, adapter_model.bin, *.pt), which can run code"),
]


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _one_line_errors(func: Callable) -> Callable:
    """Known errors print as one `train: ...` line, without a traceback: exit 2 for bad input (a bundle,
    folder or setting the user can fix), 1 for a failure while running (the disk, memory)."""
    from schemas.bundle import BundleError

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (TrainError, TrainConfigError, BundleError) as exc:
            click.echo(f"train: {_one_line(exc)}", err=True)
            sys.exit(getattr(exc, "exit_code", EXIT_BAD_INPUT))
        except OSError as exc:  # disk full, permission denied, a path that vanished
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"train: {where}{exc.strerror or _one_line(exc)}", err=True)
            sys.exit(EXIT_FAILURE)
        except (MemoryError, RuntimeError) as exc:  # torch.OutOfMemoryError is a RuntimeError
            if not isinstance(exc, MemoryError) and "out of memory" not in str(exc).lower():
                raise
            click.echo(f"train: out of memory ({_one_line(exc)[:160]}); lower --per_device_train_batch_size "
                       "or --max_length", err=True)
            sys.exit(EXIT_FAILURE)
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Fine-tune a chat model on a curated bundle (LoRA by default), then chat with or merge the result."""


@main.command("run", cls=RunCommand)
@click.argument("bundle", type=click.Path(), required=False)
@_apply(TRAIN_FLAGS + DATASET_FLAGS)
@_one_line_errors
def run_cmd(bundle: str | None, dataset: tuple[str, ...], model_name: tuple[str, ...], model_author: tuple[str, ...],
            split_dataset_ratio: float | None, **flags: Any) -> None:
    """Train on BUNDLE (a version dir, or an output root: newest version), or on a bundle built from
    --dataset sources beside the run. ms-swift's `swift sft` flags work as written. Prints the adapter path last."""
    from train.run import run_training

    if (bundle is None) == (not dataset):
        raise TrainError("give a BUNDLE folder or --dataset sources (not both)" if bundle else
                         "give a BUNDLE folder, or --dataset sources to build one from")
    if dataset:
        from pathlib import Path

        from train.dataset_run import RECIPE_NAME, build_dataset_bundle

        flags["output_dir"] = flags.get("output_dir") or str(Path("output") / RECIPE_NAME)
        bundle = str(build_dataset_bundle(dataset, model_name, model_author, split_dataset_ratio,
                                          Path(flags["output_dir"]), lambda m: click.echo(m, err=True),
                                          model=flags.get("model") or FIELDS["model"].default))
    adapter = run_training(bundle, flags)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one path on stdout, not one per process
        click.echo(str(adapter))


@main.command("chat")
@click.argument("adapter", type=click.Path())
@click.option("--prompt", default=None, help="ask one question, print the answer and exit")
@click.option("--temperature", type=float, default=0.0, show_default=True, help="0 = greedy")
@click.option("--max_new_tokens", "--max-new-tokens", "max_new_tokens", type=int, default=256, show_default=True)
@click.option("--system", default=None, help="system prompt (none by default)")
@click.option("--model", default=None, help="base model, if it moved since training")
@_apply(LOAD_FLAGS)
@_one_line_errors
def chat_cmd(adapter: str, prompt: str | None, temperature: float, max_new_tokens: int, system: str | None,
             model: str | None, trust_remote_code: bool, allow_pickle: bool) -> None:
    """Chat with ADAPTER (the folder `train run` printed); reads stdin lines until EOF or 'exit'."""
    from train.chat import chat_loop, generate_answer, load_for_chat

    lm, tokenizer = load_for_chat(adapter, model, trust_remote_code, allow_pickle)
    if prompt is not None:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        click.echo(generate_answer(lm, tokenizer, messages, temperature, max_new_tokens))
        return
    chat_loop(lm, tokenizer, sys.stdin, sys.stdout, system, temperature, max_new_tokens)


@main.command("eval")
@click.argument("adapter", type=click.Path())
@click.option("--bundle", default=None, type=click.Path(), help="bundle to take questions and val records from "
              "[default: the one recorded in the adapter's curatune_train.json]")
@click.option("--output", default=None, type=click.Path(), help="JSON result file [default: ADAPTER/../eval.json]")
@click.option("--max_new_tokens", "--max-new-tokens", "max_new_tokens", type=int, default=64, show_default=True)
@click.option("--batch_size", "--batch-size", "batch_size", type=int, default=8, show_default=True,
              help="questions answered at once")
@click.option("--train_questions", "--train-questions", "train_questions", type=int, default=32, show_default=True,
              help="ask the first N of the train split's identity questions (a seeded sample: the split is "
                   "shuffled); -1: all of them")
@click.option("--model", default=None, help="base model, if it moved since training")
@_apply(LOAD_FLAGS)
@_one_line_errors
def eval_cmd(adapter: str, bundle: str | None, output: str | None, max_new_tokens: int, batch_size: int,
             train_questions: int, model: str | None, trust_remote_code: bool, allow_pickle: bool) -> None:
    """Check ADAPTER's identity before/after (trained, val and held-out questions, zh and en) and its general loss.

    ADAPTER is the folder `train run` printed: a LoRA adapter, or the model of a --train_type full run
    (its base model answers "before"), or a folder `train merge` wrote.
    """
    from pathlib import Path

    from train.chat import preflight
    from train.evaluate import evaluate_trained, print_table, write_json
    from train.model_checks import load_policy

    preflight(adapter, model, trust_remote_code, allow_pickle)  # refuse a hostile folder before the bundle is read
    with load_policy(trust_remote_code, allow_pickle):  # every model and tokenizer eval loads follows the flags
        result = evaluate_trained(adapter, bundle, max_new_tokens, model, batch_size,
                                  None if train_questions < 0 else train_questions,
                                  log=lambda message: click.echo(message, err=True))
    print_table(result)
    target = Path(output) if output else Path(adapter).resolve().parent / "eval.json"
    click.echo(f"eval: wrote {write_json(result, target)}", err=True)


@main.command("merge")
@click.argument("adapter", type=click.Path())
@click.option("--output_dir", "--output-dir", "output_dir", required=True, type=click.Path())
@click.option("--model", default=None, help="base model, if it moved since training")
@_apply(LOAD_FLAGS)
@_one_line_errors
def merge_cmd(adapter: str, output_dir: str, model: str | None, trust_remote_code: bool, allow_pickle: bool) -> None:
    """Fold ADAPTER into its base model and save a plain model folder (safetensors + tokenizer)."""
    from train.merge import merge_adapter

    click.echo(str(merge_adapter(adapter, output_dir, model, trust_remote_code, allow_pickle)))


@main.command("serve")
@click.argument("adapters", nargs=-1, type=click.Path())
@click.option("--model", default=None, help="base model, if it moved since training (or the only model served)")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on; 0.0.0.0 opens it to the "
              "network, without authentication")
@click.option("--port", type=int, default=8000, show_default=True, help="0: any free port")
@click.option("--max_batch", "--max-batch", "max_batch", type=click.IntRange(1, 256), default=16, show_default=True,
              help="answers generated at once (rows of one batch)")
@click.option("--max_queue", "--max-queue", "max_queue", type=click.IntRange(0, 10_000), default=64,
              show_default=True, help="requests waiting beyond those; more get 429")
@click.option("--max_tokens_limit", "--max-tokens-limit", "max_tokens_limit", type=click.IntRange(1), default=1024,
              show_default=True, help="the most max_tokens a request may ask for")
@click.option("--max_prompt_tokens", "--max-prompt-tokens", "max_prompt_tokens", type=click.IntRange(1),
              default=4096, show_default=True, help="longer conversations get 400")
@click.option("--max_body_kb", "--max-body-kb", "max_body_kb", type=click.IntRange(1), default=1024,
              show_default=True, help="larger request bodies get 413")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=300.0, show_default=True,
              help="seconds a request may take, waiting included")
@_apply(LOAD_FLAGS)
@_one_line_errors
def serve_cmd(adapters: tuple[str, ...], model: str | None, host: str, port: int, max_batch: int, max_queue: int,
              max_tokens_limit: int, max_prompt_tokens: int, max_body_kb: int, timeout: float,
              trust_remote_code: bool, allow_pickle: bool) -> None:
    """Serve ADAPTERS (folders `train run` printed, PATH or NAME=PATH) on their one base model: an
    OpenAI-compatible API (/v1/chat/completions, /v1/models), /chat, /health and a chat page at /."""
    from train.serve import require_serve_extra

    require_serve_extra()
    from train.serve.adapters import load_served, parse_specs
    from train.serve.batcher import Limits
    from train.serve.protocol import ApiLimits
    from train.serve.server import serve_forever

    served = load_served(parse_specs(adapters), model, trust_remote_code, allow_pickle,
                         log=lambda message: click.echo(message, err=True))
    limits = Limits(max_batch=max_batch, max_queue=max_queue, context=served.context)
    api = ApiLimits(max_tokens=max_tokens_limit, default_max_tokens=min(256, max_tokens_limit),
                    max_prompt_tokens=max_prompt_tokens, max_body_bytes=max_body_kb * 1024, timeout_s=timeout)
    serve_forever(served, host, port, limits, api, announce=lambda line: click.echo(line),
                  log=lambda message: click.echo(message, err=True))


if __name__ == "__main__":  # pragma: no cover
    main()
