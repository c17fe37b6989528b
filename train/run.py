"""`train run` as a library call: bundle -> config -> model -> encoded data -> loop -> saved adapter.

Under torchrun (WORLD_SIZE > 1) every process runs this; process 0 alone prints and writes files.

The bundle is checked as a whole before anything else (train.bundle); settings that run code or
load pickles (--trust_remote_code, --allow_pickle, --resume) come from the command line only
(train.config); the run writes only under its output_dir.
"""
from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path
from typing import Any, Callable

import torch

from train.bundle import open_bundle
from train.checkpoint import complete_checkpoints
from train.config import TrainConfig, resolve_config
from train.data import make_examples
from train.encode import encode_records
from train.errors import TrainError
from train.loop import Dist, LoopResult, train_loop
from train.model import (load_model, load_tokenizer, parameter_counts, pick_device, pick_dtype,
                         prepare_for_training, resolve_model_name, template_token_ids)

RUN_INFO = "curatune_train.json"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def init_distributed() -> Dist:
    """Join the torchrun process group if there is one (gloo on CPU, nccl on GPUs)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
    return Dist(rank=dist.get_rank(), world=dist.get_world_size())


def describe_config(cfg: TrainConfig, trainable: int, total: int) -> str:
    lines = ["config:"] + [f"  {key} = {value!r}" for key, value in cfg.model_dump().items()]
    lines.append(f"parameters: {trainable:,} trainable of {total:,} ({100 * trainable / max(total, 1):.3f}%)")
    return "\n".join(lines)


def default_output_dir(bundle_name: str, version: str) -> str:
    return str(Path("output") / f"{bundle_name}-{version}")


def base_model_location(model_path: str) -> str | None:
    """Absolute path of a local base model folder (for a .gguf file, `model_path` is its converted
    folder), so chat/merge/eval work from any directory later; None for a hub id."""
    path = Path(model_path).expanduser()
    return str(path.resolve()) if path.is_dir() else None


def check_output_dir(output_dir: Path) -> None:
    """An output_dir that is (or runs through) an existing file is refused before anything is loaded."""
    for folder in (output_dir, *output_dir.parents):
        if folder.exists():
            if not folder.is_dir():
                where = "is" if folder == output_dir else f"runs through {folder}, which is"
                raise TrainError(f"{output_dir}: output_dir {where} an existing file, not a folder; "
                                 "choose another --output_dir")
            return


def save_final(model, tokenizer, cfg: TrainConfig, model_path: str, output_dir: Path, bundle,
               result: LoopResult) -> Path:
    """OUTPUT_DIR/adapter (LoRA) or OUTPUT_DIR/model (full), with tokenizer and curatune_train.json; with
    trained marker rows (--template) also OUTPUT_DIR/adapter_plain, the same adapter as LoRA tensors only."""
    target = output_dir / ("adapter" if cfg.train_type == "lora" else "model")
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)
    info: dict[str, Any] = {
        "config": cfg.model_dump(),
        "train_type": cfg.train_type,
        "base_model": cfg.model,
        "base_model_path": base_model_location(model_path),
        "bundle": {"manifest_id": bundle.manifest.id, "path": str(bundle.path), "name": bundle.manifest.name},
        "steps": result.steps,
        "total_steps": result.total_steps,
        "train_loss": result.train_loss,
        "val_loss": result.val_loss,
        "best_val_loss": result.best_val_loss,
        "stopped_early": result.stopped_early,
    }
    (target / RUN_INFO).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if cfg.train_type == "lora":  # trained marker rows: a plain-LoRA copy for vLLM and llama.cpp as well
        from train.plain_adapter import write_plain_adapter

        write_plain_adapter(target, output_dir / "adapter_plain")
    return target


def run_training(bundle_path: str | Path, explicit: dict[str, Any] | None = None,
                 log: Callable[[str], None] | None = None, show_progress: bool = True) -> Path:
    """Train on a bundle and return the saved adapter (or full model) folder."""
    dist = init_distributed()
    say = (log or _stderr) if dist.main else (lambda _msg: None)
    bundle = open_bundle(bundle_path, log=say)
    cfg = resolve_config(bundle.recipe_train, explicit or {}, manifest=bundle.manifest_file)
    output_dir = Path(cfg.output_dir or default_output_dir(bundle.manifest.name, bundle.path.name))
    cfg = cfg.model_copy(update={"output_dir": str(output_dir)})
    check_output_dir(output_dir)
    if not cfg.resume and complete_checkpoints(output_dir):
        raise TrainError(f"{output_dir} already holds checkpoints of an earlier run; "
                         "pass --resume to continue it or choose another --output_dir")

    seed_everything(cfg.seed)
    device = pick_device()
    dtype = pick_dtype(device, cfg.bf16, cfg.torch_dtype)
    model_path = resolve_model_name(cfg.model, say)
    tokenizer = load_tokenizer(model_path, cfg.trust_remote_code, cfg.template, say)
    model = load_model(model_path, dtype, cfg.trust_remote_code, cfg.quant, device, allow_pickle=cfg.allow_pickle)
    say(f"bundle: {bundle.path} (manifest {bundle.manifest.id[:12]}, "
        f"{len(bundle.train)} train / {len(bundle.val)} val records)")
    seed_everything(cfg.seed)  # LoRA init must not depend on what loading consumed from the RNG
    trainable_tokens = template_token_ids(tokenizer)
    if trainable_tokens:
        say(f"template: training the embedding rows of its markers {trainable_tokens}")
    model = prepare_for_training(model, cfg, trainable_tokens)
    if cfg.train_type == "lora":  # others load the adapter from anywhere: name the base absolutely (or its hub id)
        for adapter_config in model.peft_config.values():
            adapter_config.base_model_name_or_path = base_model_location(model_path) or cfg.model
    trainable, total = parameter_counts(model)
    say(describe_config(cfg, trainable, total))

    train_encoded = encode_records(tokenizer, bundle.train, cfg.max_length, cfg.system, say)
    if not train_encoded:
        raise TrainError("no training record has assistant tokens within max_length; raise --max_length")
    val_encoded = encode_records(tokenizer, bundle.val, cfg.max_length, cfg.system, say)
    train_examples = make_examples(train_encoded, cfg.packing, cfg.max_length, cfg.seed)
    val_examples = [[item] for item in val_encoded]
    say(f"data: {len(train_encoded)} records -> {len(train_examples)} "
        f"{'packed rows' if cfg.packing else 'examples'}, "
        f"{sum(e.trained_tokens for e in train_encoded):,} assistant tokens")

    try:
        result = train_loop(model, cfg, train_examples, val_examples, output_dir, tokenizer.pad_token_id, device,
                            dist, say, tokenizer, show_progress)
    except ValueError as exc:
        raise TrainError(str(exc)) from None  # too few examples for the processes, a checkpoint that does not fit
    say(f"done: {result.steps} steps, train loss {result.train_loss:.4f}"
        + (f", val loss {result.val_loss:.4f}" if result.val_loss is not None else ""))
    target = output_dir / ("adapter" if cfg.train_type == "lora" else "model")
    if dist.main:
        target = save_final(model, tokenizer, cfg, model_path, output_dir, bundle, result)
    dist.barrier()
    return target.resolve()
