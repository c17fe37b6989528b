"""Length limits in characters and, given a tokenizer, tokens: per turn and per record."""
from __future__ import annotations

from typing import Callable

from schemas.recipe import LengthConfig
from schemas.record import Record

Verdict = tuple[str, str] | None  # (reason code, message) or None to keep


def load_token_counter(tokenizer: str) -> Callable[[str], int]:
    """Count tokens with a local tokenizer folder (no download: local_files_only)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer, local_files_only=True)
    return lambda text: len(tok(text, add_special_tokens=False)["input_ids"])


class LengthFilter:
    name = "length"

    def __init__(self, config: LengthConfig, count_tokens: Callable[[str], int] | None = None):
        self.config = config
        if count_tokens is None and config.tokenizer and (config.max_tokens or config.min_tokens):
            count_tokens = load_token_counter(config.tokenizer)
        self.count_tokens = count_tokens

    def __call__(self, record: Record) -> Verdict:
        cfg = self.config
        total = sum(len(m.content) for m in record.messages)
        if total < cfg.min_chars:
            return "too_short", f"{total} characters, below filters.length.min_chars={cfg.min_chars}"
        if total > cfg.max_chars:
            return "too_long", f"{total} characters, above filters.length.max_chars={cfg.max_chars}"
        if cfg.min_turn_chars:
            for index, message in enumerate(record.messages):
                if message.role != "system" and len(message.content.strip()) < cfg.min_turn_chars:
                    return ("turn_too_short", f"turn {index} ({message.role}) has {len(message.content.strip())} "
                            f"characters, below filters.length.min_turn_chars={cfg.min_turn_chars}")
        if cfg.max_turn_chars:
            for index, message in enumerate(record.messages):
                if len(message.content) > cfg.max_turn_chars:
                    return ("turn_too_long", f"turn {index} ({message.role}) has {len(message.content)} characters, "
                            f"above filters.length.max_turn_chars={cfg.max_turn_chars}")
        if self.count_tokens is not None:
            tokens = self.count_tokens(record.conversation_text())
            if cfg.max_tokens and tokens > cfg.max_tokens:
                return "too_many_tokens", f"{tokens} tokens, above filters.length.max_tokens={cfg.max_tokens}"
            if cfg.min_tokens and tokens < cfg.min_tokens:
                return "too_few_tokens", f"{tokens} tokens, below filters.length.min_tokens={cfg.min_tokens}"
        return None
