"""Crash-safe checkpoints: written to a temp dir, fsynced, renamed into place, marked complete.

A checkpoint directory without its completion marker (a run killed mid-write, a disk that filled)
is never picked up for resume. Each checkpoint holds the trainable weights, optimizer, scheduler,
RNG states and the run position, plus (for LoRA) a normal peft adapter usable with `train chat`.

Test hook: CURATUNE_TRAIN_CHECKPOINT_DELAY=SECONDS sleeps after each file written into the temp dir,
so a test can SIGKILL the process while a checkpoint is half written.
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

MARKER = "COMPLETE"
CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as handle:
                os.fsync(handle.fileno())
        _fsync_dir(Path(dirpath))


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def trainable_state(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().cpu().contiguous().clone() for name, p in model.named_parameters() if p.requires_grad}


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _slow_write_hook() -> None:
    delay = float(os.environ.get("CURATUNE_TRAIN_CHECKPOINT_DELAY", "0") or 0)
    if delay > 0:
        time.sleep(delay)


def _remove(path: Path) -> None:
    """Delete a checkpoint so that a kill midway leaves no dir that still looks complete."""
    try:
        (path / MARKER).unlink()
    except FileNotFoundError:
        pass
    _fsync_dir(path)
    shutil.rmtree(path, ignore_errors=True)


def save_checkpoint(output_dir: Path, step: int, model, optimizer, scheduler, state: dict[str, Any],
                    tokenizer=None, adapter: bool = True) -> Path:
    """Write checkpoint-STEP atomically and return its path."""
    output_dir.mkdir(parents=True, exist_ok=True)
    final = output_dir / f"checkpoint-{step}"
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-checkpoint-{step}-", dir=output_dir))
    save_file(trainable_state(model), str(tmp / "trainable.safetensors"))
    _slow_write_hook()
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state()},
               tmp / "training_state.pt")
    _slow_write_hook()
    (tmp / "trainer_state.json").write_text(json.dumps({**state, "step": step}, indent=2), encoding="utf-8")
    if adapter and hasattr(model, "peft_config"):
        model.save_pretrained(tmp / "adapter", safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp / "adapter")
        _slow_write_hook()
    _fsync_tree(tmp)  # every file durable before the marker says so
    (tmp / MARKER).write_text("ok\n", encoding="utf-8")
    _fsync_tree(tmp)
    if final.exists():  # a stale checkpoint of the same step (e.g. a rerun): move it aside, then drop it
        stale = output_dir / f".stale-{final.name}-{os.getpid()}"
        os.rename(final, stale)
        _remove(stale)
    os.rename(tmp, final)
    _fsync_dir(output_dir)
    return final


def complete_checkpoints(output_dir: Path) -> list[Path]:
    """Checkpoints with their completion marker, oldest first."""
    if not output_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in output_dir.iterdir()
             if (m := CHECKPOINT.match(p.name)) and (p / MARKER).is_file()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(output_dir: Path) -> Path | None:
    found = complete_checkpoints(output_dir)
    return found[-1] if found else None


def rotate_checkpoints(output_dir: Path, keep: int | None) -> None:
    """Keep the newest `keep` checkpoints; also clear temp dirs left by killed runs."""
    for pattern in (".tmp-checkpoint-*", ".stale-checkpoint-*"):
        for leftover in output_dir.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)
    if keep is None:
        return
    for old in complete_checkpoints(output_dir)[:-keep]:
        _remove(old)


def load_checkpoint(path: Path, model, optimizer, scheduler) -> dict[str, Any]:
    """Restore weights, optimizer, scheduler and RNG; returns the saved trainer state (step, ...)."""
    weights = load_file(str(path / "trainable.safetensors"))
    missing = [name for name, p in model.named_parameters() if p.requires_grad and name not in weights]
    if missing:
        raise ValueError(f"{path}: checkpoint does not match the model ({len(missing)} trainable tensors missing)")
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, tensor in weights.items():
            params[name].copy_(tensor.to(params[name].device, params[name].dtype))
    # weights_only: a checkpoint folder may come from someone else; tensors, numbers and tuples only, no pickle code
    blob = torch.load(path / "training_state.pt", map_location="cpu", weights_only=True)
    optimizer.load_state_dict(blob["optimizer"])
    scheduler.load_state_dict(blob["scheduler"])
    set_rng_state(blob["rng"])
    return json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
