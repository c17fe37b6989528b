"""One request's generation as the batcher sees it, and the events it sends back to the web side.

The web side lives on an asyncio loop, the batcher on its own thread: events cross over with
`loop.call_soon_threadsafe`, and the web side cancels a job by setting a flag the batcher checks
before every step (a client that went away, a request past its timeout).
"""
from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

from train.serve.sampling import SamplingParams

BASE = "__base__"  # peft's name for "no adapter" in a mixed batch


@dataclass
class Delta:
    text: str


@dataclass
class Done:
    finish_reason: str  # "stop" (end of turn or a stop string) or "length" (max_tokens, the context)
    prompt_tokens: int
    completion_tokens: int
    text: str = ""  # the whole answer (a job that does not stream gets no Delta events)


@dataclass
class Failed:
    message: str
    status: int = 500
    kind: str = "server_error"


@dataclass
class Job:
    """A prompt to answer with one adapter (peft name, or BASE) and its sampling settings."""

    prompt_ids: list[int]
    adapter: str
    params: SamplingParams
    loop: asyncio.AbstractEventLoop | None = None
    events: asyncio.Queue | None = None
    timeout_s: float | None = None
    stream: bool = True  # Delta events as text is produced; without, only Done (one wake-up per answer)
    created: float = field(default_factory=time.monotonic)
    cancelled: threading.Event = field(default_factory=threading.Event)
    finished: bool = False

    @classmethod
    def for_loop(cls, prompt_ids: list[int], adapter: str, params: SamplingParams, timeout_s: float | None,
                 stream: bool = True) -> "Job":
        """A job whose events arrive on the running asyncio loop's queue."""
        return cls(prompt_ids, adapter, params, asyncio.get_running_loop(), asyncio.Queue(), timeout_s, stream)

    def cancel(self) -> None:
        self.cancelled.set()

    def expired(self, now: float | None = None) -> bool:
        return self.timeout_s is not None and (now or time.monotonic()) - self.created > self.timeout_s

    def post(self, event: Delta | Done | Failed) -> None:
        """Hand an event to the web side (from the batcher thread); a loop already closed drops it."""
        if isinstance(event, (Done, Failed)):
            self.finished = True
        if self.events is None or self.loop is None:
            return
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, event)
        except RuntimeError:  # the server is shutting down
            pass
