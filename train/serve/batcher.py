"""The batched generation engine: one worker thread, a queue in front, a step-wise decoding loop.

Requests wait in a bounded queue (`submit` raises QueueFull when it is full: the web side answers 429).
The worker admits waiting requests whenever the running batch has room (at most `max_batch` rows),
prefills them together (left-padded) and joins them to the running batch (train.serve.kv; a cache
that cannot be joined runs as a batch of its own, stepped in turn), then decodes one token for every
row per forward step (continuous batching). Each row has its own
adapter, sampling settings, stop strings and limits; a row leaves the batch as soon as it is done,
or at the next step after its client disconnected or its timeout passed, which frees its slot.

Adapters: with PEFT's mixed-adapter batches (`adapter_names=[...]`, "__base__" for the base model,
routed by train.serve.mixed.AdapterRouter) rows of every adapter share one batch. If that does not
work for the loaded adapters (train.serve.mixed checks at start), rows are grouped by adapter
instead: one batch per adapter, stepped in turn.

A failure inside a step fails that batch's requests (a JSON error each) and the worker goes on.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial

import torch

from train.serve.jobs import BASE, Delta, Done, Failed, Job
from train.serve.kv import cache_keyword, can_join, join, keep_rows, new_cache
from train.serve.mixed import AdapterRouter
from train.serve.sampling import RowText, choose_tokens, make_generator


class QueueFull(Exception):
    """More requests are waiting than the server accepts (--max_queue)."""


@dataclass
class Row:
    job: Job
    text: RowText
    generator: torch.Generator
    position: int  # position id of the token fed next
    last: int = -1  # the token fed next
    generated: int = 0


@dataclass
class Batch:
    key: str
    rows: list[Row]
    cache: object
    mask: torch.Tensor  # rows x cached length, 1 for real tokens


@dataclass
class Counters:
    completed: int = 0
    cancelled: int = 0
    failed: int = 0
    steps: int = 0
    prefills: int = 0
    joins: int = 0
    max_rows: int = 0  # the most rows one forward pass has held


@dataclass
class Limits:
    max_batch: int = 16
    max_queue: int = 64
    context: int = 4096
    gather_s: float = 0.005  # an idle worker waits this long so requests sent together share one prefill


class Batcher:
    def __init__(self, model, tokenizer, stop_ids: list[int], mixed: bool, limits: Limits | None = None):
        self.model, self.tokenizer, self.stop_ids = model, tokenizer, set(stop_ids)
        self.limits = limits or Limits()
        self.peft = hasattr(model, "peft_config")
        self.mixed = bool(mixed) or not self.peft
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(stop_ids, default=0)
        self.device = next(model.parameters()).device
        self._cache_kw = cache_keyword(model)
        self.router = AdapterRouter(model) if self.peft and self.mixed else None
        self._pending: deque[Job] = deque()
        self._batches: list[Batch] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.counters = Counters()

    # ------------------------------------------------------------------ web side
    def start(self) -> "Batcher":
        self._thread = threading.Thread(target=self._run, name="curatune-batcher", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        self._fail_all("the server is shutting down", 503)
        if self.router is not None and not (self._thread and self._thread.is_alive()):
            self.router.close()

    def submit(self, job: Job) -> None:
        with self._cond:
            if self._stopping:
                raise QueueFull("the server is shutting down")
            if len(self._pending) >= self.limits.max_queue:  # clients that left give their places back first
                for gone in [j for j in self._pending if j.cancelled.is_set()]:
                    self._pending.remove(gone)
                    self._gone(gone)
            if len(self._pending) >= self.limits.max_queue:
                raise QueueFull(f"{len(self._pending)} requests are already waiting (--max_queue)")
            self._pending.append(job)
            self._cond.notify_all()

    def stats(self) -> dict:
        with self._cond:
            running = sum(len(b.rows) for b in self._batches)
            abandoned = sum(1 for j in self._pending if j.cancelled.is_set())
            return {"running": running, "waiting": len(self._pending), "abandoned": abandoned,
                    "batches": len(self._batches),
                    "max_batch": self.limits.max_batch, "max_queue": self.limits.max_queue,
                    "mixed_adapter_batches": self.mixed, **vars(self.counters)}

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not (self._pending or self._batches):
                    self._cond.wait(0.5)
                if self._stopping:
                    return
                idle = not self._batches
            if idle and self.limits.gather_s:
                time.sleep(self.limits.gather_s)
            groups: dict[str, list[Job]] = {}
            for job in self._take():
                groups.setdefault(self._key(job), []).append(job)
            for key, group in groups.items():
                self._guarded(partial(self._admit, key, group), group)
            for batch in list(self._batches):
                self._guarded(partial(self._step, batch), [r.job for r in batch.rows], batch)

    def _guarded(self, func, jobs: list[Job], batch: Batch | None = None) -> None:
        try:
            func()
        except Exception as exc:  # noqa: BLE001 - a failed step fails its requests, never the server
            message = "out of memory" if "out of memory" in str(exc).lower() else "generation failed"
            for job in jobs:
                if not job.finished:
                    self.counters.failed += 1
                    job.post(Failed(f"{message}: {type(exc).__name__}: {str(exc)[:200]}"))
            with self._cond:
                self._batches = [b for b in self._batches if b is not batch]

    def _take(self) -> list[Job]:
        """Waiting jobs the batch has room for; cancelled or expired ones are dropped on the way."""
        taken: list[Job] = []
        with self._cond:
            free = self.limits.max_batch - sum(len(b.rows) for b in self._batches)
            while self._pending and len(taken) < free:
                job = self._pending.popleft()
                if not self._gone(job):
                    taken.append(job)
        return taken

    def _gone(self, job: Job) -> bool:
        if job.cancelled.is_set():
            self.counters.cancelled += 1
            job.post(Failed("cancelled", 499, "cancelled"))
            return True
        if job.expired():
            self.counters.failed += 1
            job.post(Failed(f"no answer within the server's timeout ({job.timeout_s:g} s)", 504, "timeout_error"))
            return True
        return False

    def _key(self, job: Job) -> str:
        return "all" if self.mixed else job.adapter

    def _admit(self, key: str, jobs: list[Job]) -> None:
        """Prefill newly taken jobs together, then join them to a running batch of the same key if possible."""
        batch = self._prefill(key, jobs)
        if not batch.rows:
            return
        with self._cond:
            same = [b for b in self._batches if b.key == key and can_join(b.cache, batch.cache)]
            if same:
                target = same[0]
                target.cache, target.mask = join(target.cache, target.mask, batch.cache, batch.mask)
                target.rows.extend(batch.rows)
                self.counters.joins += 1
            else:
                self._batches.append(batch)

    def _prefill(self, key: str, jobs: list[Job]) -> Batch:
        width = max(len(j.prompt_ids) for j in jobs)
        ids = torch.full((len(jobs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(jobs), width), dtype=torch.long)
        for row, job in enumerate(jobs):
            ids[row, width - len(job.prompt_ids):] = torch.tensor(job.prompt_ids, dtype=torch.long)
            mask[row, width - len(job.prompt_ids):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = new_cache(self.model)
        logits = self._forward(key, [j.adapter for j in jobs], ids, mask, positions, cache)
        self.counters.prefills += 1
        self.counters.max_rows = max(self.counters.max_rows, len(jobs))
        rows = [Row(j, RowText(self.tokenizer, j.params.stop), make_generator(j.params.seed), len(j.prompt_ids))
                for j in jobs]
        batch = Batch(key, rows, cache, mask.to(self.device))
        self._advance(batch, logits)
        return batch

    def _step(self, batch: Batch) -> None:
        with self._cond:  # counters are shared with submit()
            live = [i for i, r in enumerate(batch.rows) if not self._gone(r.job)]
        if len(live) < len(batch.rows):
            self._shrink(batch, live)
        if not batch.rows:
            return
        ids = torch.tensor([[r.last] for r in batch.rows], dtype=torch.long)
        positions = torch.tensor([[r.position] for r in batch.rows], dtype=torch.long)
        batch.mask = torch.cat([batch.mask, batch.mask.new_ones((len(batch.rows), 1))], dim=1)
        logits = self._forward(batch.key, [r.job.adapter for r in batch.rows], ids, batch.mask, positions, batch.cache)
        self.counters.steps += 1
        self.counters.max_rows = max(self.counters.max_rows, len(batch.rows))
        for row in batch.rows:
            row.position += 1
        self._advance(batch, logits)

    def _advance(self, batch: Batch, logits: torch.Tensor) -> None:
        """Choose each row's next token, send its text, and let finished rows go."""
        tokens = choose_tokens(logits, [r.job.params for r in batch.rows], [r.generator for r in batch.rows])
        keep, done = [], []
        for i, (row, token) in enumerate(zip(batch.rows, tokens)):
            row.last, row.generated = token, row.generated + 1
            reason = None
            if token in self.stop_ids:
                reason = "stop"
            else:
                piece, hit = row.text.add(token)
                if piece and row.job.stream:
                    row.job.post(Delta(piece))
                if hit:
                    reason = "stop"
                elif row.generated >= row.job.params.max_tokens or row.position + 1 >= self.limits.context:
                    reason = "length"
            if reason is None:
                keep.append(i)
                continue
            done.append((row, reason))
        if done:  # out of the batch first, so a client told "done" finds its slot already free
            self._shrink(batch, keep)
        for row, reason in done:
            tail = row.text.finish()
            if tail and row.job.stream:
                row.job.post(Delta(tail))
            self.counters.completed += 1
            row.job.post(Done(reason, len(row.job.prompt_ids), row.generated, row.text.text))

    def _shrink(self, batch: Batch, keep: list[int]) -> None:
        with self._cond:
            if keep:
                batch.mask = keep_rows(batch.cache, batch.mask, keep)
                batch.rows = [batch.rows[i] for i in keep]
            else:
                batch.rows = []
                self._batches = [b for b in self._batches if b is not batch]
                self._cond.notify_all()

    @torch.no_grad()
    def _forward(self, key: str, adapters: list[str], ids, mask, positions, cache) -> torch.Tensor:
        kwargs = {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device),
                  "position_ids": positions.to(self.device), self._cache_kw: cache, "use_cache": True,
                  "logits_to_keep": 1}
        context = nullcontext()
        if self.router is not None:
            context = self.router.rows(adapters)
        elif self.peft and key == BASE:
            context = self.model.disable_adapter()
        elif self.peft:
            self.model.set_adapter(key)
        with context:
            return self.model(**kwargs).logits[:, -1, :]

    def _fail_all(self, message: str, status: int) -> None:
        with self._cond:
            jobs = list(self._pending) + [r.job for b in self._batches for r in b.rows]
            self._pending.clear()
            self._batches = []
        for job in jobs:
            if not job.finished:
                job.post(Failed(message, status, "server_error"))
