"""The training loop itself: plain PyTorch, readable top to bottom.

One optimizer step = `gradient_accumulation_steps` micro-batches. The loss is the mean over every
assistant token in the step (across micro-batches and processes), not a mean of per-batch means,
so short and long answers weigh the same whatever the batching. Gradients are clipped at
--max_grad_norm (1.0).

Test hook: with CURATUNE_TRAIN_CRASH_AFTER_STEP=N in the environment the process exits abruptly
(os._exit) right after step N is done and checkpointed, to exercise `--resume`.
"""
from __future__ import annotations

import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from train.checkpoint import latest_checkpoint, load_checkpoint, rotate_checkpoints, save_checkpoint, trainable_state
from train.config import TrainConfig
from train.data import BatchStream, Example, collate, count_targets
from train.encode import IGNORE_INDEX
from train.progress import ProgressBar


@dataclass
class Dist:
    """Where this process sits in a (possibly single-process) run."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def all_sum(self, *values: float) -> list[float]:
        if self.world == 1:
            return list(values)
        import torch.distributed as dist

        tensor = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()


@dataclass
class LoopResult:
    steps: int
    total_steps: int
    train_loss: float | None = None
    val_loss: float | None = None
    best_val_loss: float | None = None
    stopped_early: bool = False
    history: list[dict] = field(default_factory=list)


def token_loss_sum(model, batch: dict[str, torch.Tensor], answer_logits_only: bool = True) -> torch.Tensor:
    """Summed next-token cross-entropy over labelled positions.

    With `answer_logits_only` the output projection runs only where a label follows (transformers'
    boolean `logits_to_keep`): the prompt side never pays for a vocabulary-wide matmul, which for
    Gemma's 262k or Qwen's 151k vocabulary is most of the time and memory of a short-answer step.
    """
    labels = batch["labels"]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    targets = labels[:, 1:]
    if answer_logits_only and _accepts_logits_to_keep(model):
        keep = torch.zeros_like(labels, dtype=torch.bool)
        keep[:, :-1] = targets != IGNORE_INDEX
        logits = model(**inputs, use_cache=False, logits_to_keep=keep).logits.float()
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets[keep[:, :-1]], reduction="sum")
    logits = model(**inputs, use_cache=False).logits.float()
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), targets.reshape(-1),
                           ignore_index=IGNORE_INDEX, reduction="sum")


def _accepts_logits_to_keep(model) -> bool:
    """Whether the causal LM under DDP/peft wrappers takes `logits_to_keep` (remote-code models may not)."""
    inner = getattr(model, "module", model)  # DistributedDataParallel
    if hasattr(inner, "get_base_model"):  # peft
        inner = inner.get_base_model()
    kind = type(inner)
    if kind not in _LOGITS_TO_KEEP:
        import inspect

        _LOGITS_TO_KEEP[kind] = "logits_to_keep" in inspect.signature(kind.forward).parameters
    return _LOGITS_TO_KEEP[kind]


_LOGITS_TO_KEEP: dict[type, bool] = {}


def total_steps_for(cfg: TrainConfig, batches_per_epoch: int) -> int:
    if cfg.max_steps > 0:
        return cfg.max_steps
    return max(1, math.ceil(cfg.num_train_epochs * batches_per_epoch / cfg.gradient_accumulation_steps))


def build_optimizer(model, cfg: TrainConfig, total_steps: int):
    """AdamW (no decay on biases and norms) with cosine decay after a linear warmup."""
    from transformers import get_cosine_schedule_with_warmup

    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.learning_rate)
    warmup = math.ceil(cfg.warmup_ratio * total_steps)
    scheduler = get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=warmup, num_training_steps=total_steps)
    return optimizer, scheduler


@torch.no_grad()
def evaluate(model, examples: list[Example], batch_size: int, pad_id: int, device, dist: Dist) -> float | None:
    """Mean loss per assistant token over val examples (each process takes its share)."""
    if not examples:
        return None
    was_training = model.training
    model.eval()
    mine = examples[dist.rank::dist.world]
    loss_sum, tokens = 0.0, 0
    for start in range(0, len(mine), batch_size):
        batch = {k: v.to(device) for k, v in collate(mine[start:start + batch_size], pad_id, packing=False).items()}
        loss_sum += float(token_loss_sum(model, batch))
        tokens += count_targets(batch["labels"])
    loss_sum, tokens = dist.all_sum(loss_sum, tokens)
    model.train(was_training)
    return loss_sum / tokens if tokens else None


def _drop_partial_last_line(path: Path) -> None:
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)


class RunLog:
    """Step metrics to OUTPUT_DIR/logging.jsonl and TensorBoard (OUTPUT_DIR/runs), main process only."""

    def __init__(self, output_dir: Path, enabled: bool, log: Callable[[str], None]):
        self.enabled = enabled
        self.file = None
        self.writer = None
        if not enabled:
            return
        output_dir.mkdir(parents=True, exist_ok=True)
        path = output_dir / "logging.jsonl"
        _drop_partial_last_line(path)  # a run killed mid-write may have left half a line
        self.file = open(path, "a", encoding="utf-8")
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(output_dir / "runs"))
        except Exception as exc:  # noqa: BLE001 - TensorBoard is a nicety, never a reason to stop
            log(f"tensorboard: disabled ({exc})")

    def write(self, step: int, **values: float) -> None:
        if not self.enabled:
            return
        self.file.write(json.dumps({"step": step, **values}) + "\n")
        self.file.flush()
        if self.writer is not None:
            for key, value in values.items():
                if value is not None:
                    self.writer.add_scalar(key.replace("val_", "eval/").replace("train_", "train/"), value, step)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.writer is not None:
            self.writer.close()


def train_loop(model, cfg: TrainConfig, train_examples: list[Example], val_examples: list[Example],
               output_dir: Path, pad_id: int, device: torch.device, dist: Dist = Dist(),
               log: Callable[[str], None] = print, tokenizer=None, show_progress: bool = True) -> LoopResult:
    """Train `model` in place; returns how far it got and the last losses."""
    stream = BatchStream(train_examples, cfg.per_device_train_batch_size, cfg.seed, dist.rank, dist.world)
    accum = cfg.gradient_accumulation_steps
    eval_batch = cfg.per_device_eval_batch_size or cfg.per_device_train_batch_size
    total_steps = total_steps_for(cfg, stream.batches_per_epoch)
    optimizer, scheduler = build_optimizer(model, cfg, total_steps)

    start_step, best_val, bad_evals = 0, None, 0
    if cfg.resume:
        checkpoint = latest_checkpoint(output_dir)
        if checkpoint is None:
            log(f"resume: no complete checkpoint in {output_dir}; starting from step 0")
        else:
            state = load_checkpoint(checkpoint, model, optimizer, scheduler)
            start_step, best_val, bad_evals = state["step"], state.get("best_val_loss"), state.get("bad_evals", 0)
            if state.get("total_steps", total_steps) != total_steps:
                log(f"resume: keeping the interrupted run's total of {state['total_steps']} steps")
                total_steps = state["total_steps"]
            log(f"resume: continuing from {checkpoint.name} (step {start_step} of {total_steps})")

    ddp_model = model
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        ddp_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    run_log = RunLog(output_dir, dist.main, log)
    result = LoopResult(steps=start_step, total_steps=total_steps, best_val_loss=best_val)
    best_weights = None
    crash_after = int(os.environ.get("CURATUNE_TRAIN_CRASH_AFTER_STEP", "0") or 0)
    model.train()
    progress = ProgressBar(total_steps, start_step, enabled=dist.main and show_progress)
    try:
        for step in range(start_step, total_steps):
            started = time.perf_counter()
            micro = [collate(stream.batch(step * accum + k), pad_id, cfg.packing) for k in range(accum)]
            local_targets = sum(count_targets(b["labels"]) for b in micro)
            local_tokens = sum(int((b["input_ids"] != pad_id).sum()) for b in micro)
            (targets,) = dist.all_sum(local_targets)
            loss_sum = 0.0
            for k, batch in enumerate(micro):
                batch = {key: value.to(device) for key, value in batch.items()}
                sync = nullcontext() if dist.world == 1 or k == accum - 1 else ddp_model.no_sync()
                with sync:
                    summed = token_loss_sum(ddp_model, batch)
                    (summed * dist.world / max(targets, 1)).backward()
                loss_sum += float(summed.detach())
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], cfg.max_grad_norm)
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)

            loss_sum, tokens = dist.all_sum(loss_sum, local_tokens)
            loss = loss_sum / max(targets, 1)
            tokens_per_s = tokens / max(time.perf_counter() - started, 1e-9)
            done = step + 1
            result.steps, result.train_loss = done, loss
            if done % cfg.logging_steps == 0 or done == total_steps:
                run_log.write(done, train_loss=loss, train_lr=lr, train_tokens_per_s=tokens_per_s)
                result.history.append({"step": done, "loss": loss, "lr": lr})
            progress.update(done, loss=loss, lr=lr, tokens_per_s=tokens_per_s)

            if val_examples and cfg.eval_steps and done % cfg.eval_steps == 0 and done < total_steps:
                val = evaluate(model, val_examples, eval_batch, pad_id, device, dist)
                result.val_loss = val
                run_log.write(done, val_loss=val)
                progress.note(f"step {done}: val loss {val:.4f}")
                if best_val is None or val < best_val - 1e-6:
                    best_val, bad_evals = val, 0
                    if cfg.early_stopping_patience:
                        best_weights = trainable_state(model)
                else:
                    bad_evals += 1
                result.best_val_loss = best_val
                if cfg.early_stopping_patience and bad_evals >= cfg.early_stopping_patience:
                    progress.note(f"early stopping at step {done}: val loss has not improved for {bad_evals} evaluations")
                    result.stopped_early = True

            if cfg.save_steps and done % cfg.save_steps == 0 and done < total_steps and not result.stopped_early:
                if dist.main:
                    state = {"total_steps": total_steps, "best_val_loss": best_val, "bad_evals": bad_evals,
                             "config": cfg.model_dump()}
                    save_checkpoint(output_dir, done, model, optimizer, scheduler, state, tokenizer)
                    rotate_checkpoints(output_dir, cfg.save_total_limit)
                dist.barrier()
            if crash_after and done == crash_after:
                os._exit(86)
            if result.stopped_early:
                break

        if result.stopped_early and best_weights is not None:
            params = dict(model.named_parameters())
            with torch.no_grad():
                for name, tensor in best_weights.items():
                    params[name].copy_(tensor.to(params[name].device))
            result.val_loss = best_val
            log(f"early stopping: restored the weights with the best val loss ({best_val:.4f})")
        elif val_examples and not result.stopped_early:
            result.val_loss = evaluate(model, val_examples, eval_batch, pad_id, device, dist)
            run_log.write(result.steps, val_loss=result.val_loss)
            if result.val_loss is not None and (best_val is None or result.val_loss < best_val):
                result.best_val_loss = result.val_loss
    finally:
        progress.close()
        run_log.close()
    return result
