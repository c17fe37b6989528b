"""Per-row decoding choices and text: each request in a batch keeps its own temperature, top_p, seed
and stop strings, so one batch can mix greedy and sampled answers.

Greedy (temperature 0) is a pure argmax, as in `train chat`, so a memorised answer comes back verbatim.
Sampling draws from the row's own torch.Generator: a request with a `seed` gets the same tokens
whichever other requests share its batch (up to float rounding of the padded batch).

Text is sent as it is produced but never ahead of what is certain: a trailing U+FFFD (a character
whose bytes are split across tokens) and any tail that could still grow into a stop string are held
back until the next token settles them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None


def make_generator(seed: int | None) -> torch.Generator:
    generator = torch.Generator()
    generator.manual_seed(seed if seed is not None else int.from_bytes(os.urandom(8), "little") >> 1)
    return generator


def choose_tokens(logits: torch.Tensor, params: list[SamplingParams], generators: list[torch.Generator]) -> list[int]:
    """The next token of every row from its last-position logits (rows x vocab)."""
    logits = logits.float()
    greedy = logits.argmax(dim=-1).tolist()
    out = []
    for row, p in enumerate(params):
        if p.temperature <= 0:
            out.append(int(greedy[row]))
            continue
        scores = logits[row] / p.temperature
        if p.top_p < 1.0:
            ordered, order = scores.sort(descending=True)
            cumulative = ordered.softmax(-1).cumsum(-1)
            drop = cumulative - ordered.softmax(-1) >= p.top_p  # keep the smallest set reaching top_p (at least one)
            scores = scores.scatter(0, order[drop], float("-inf"))
        probs = scores.softmax(-1)
        out.append(int(torch.multinomial(probs.cpu(), 1, generator=generators[row]).item()))
    return out


@dataclass
class RowText:
    """The answer so far of one row: token ids in, text pieces out, stop strings applied."""

    tokenizer: object
    stop: tuple[str, ...] = ()
    ids: list[int] = field(default_factory=list)
    sent: int = 0  # characters already handed out
    text: str = ""

    def add(self, token: int) -> tuple[str, bool]:
        """Append one generated token; returns (new text that is safe to send, whether a stop string matched)."""
        self.ids.append(token)
        self.text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if self.stop:
            start = max(0, self.sent - max(len(s) for s in self.stop))
            hits = [i for i in (self.text.find(s, start) for s in self.stop) if i >= 0]
            if hits:
                self.text = self.text[:min(hits)]
                return self._flush(len(self.text)), True
        safe = len(self.text)
        if self.text.endswith("\ufffd"):
            safe = len(self.text.rstrip("\ufffd"))
        safe = min(safe, len(self.text) - self._stop_prefix())
        return self._flush(max(safe, self.sent)), False

    def finish(self) -> str:
        """Whatever was held back, at the end of the answer."""
        return self._flush(len(self.text))

    def _flush(self, upto: int) -> str:
        piece = self.text[self.sent:upto]
        self.sent = max(self.sent, upto)
        return piece

    def _stop_prefix(self) -> int:
        """Length of the longest tail of the text that is the start of a stop string."""
        best = 0
        for stop in self.stop:
            for k in range(min(len(stop) - 1, len(self.text)), best, -1):
                if self.text.endswith(stop[:k]):
                    best = k
                    break
        return best
