"""The one streaming pass over a bundle's records that `curate stats` and the report need: per
record only a few integers are kept (counters, lengths, answer and question hashes), never the
texts. Big bundles are read by two processes whose passes merge in order; the build feeds a pass
from the summaries its workers made instead (new_pass, add_summary).
"""
from __future__ import annotations

import hashlib
import json
import os
from array import array
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable, Iterator

from curate.identity_coverage import IdentityTally, identity_terms
from curate.process_pool import fork_pool, ordered_map
from curate.stats_inputs import SPLITS, Inputs

PARALLEL_BYTES = 64 << 20  # below this a second process costs more than it saves


def conversation_text(record: dict) -> str:
    """Same text as schemas.record.Record.conversation_text, from a plain dict."""
    return "\n".join(turn_text(m) for m in record.get("messages") or [])


def turn_text(message: dict) -> str:
    """Same text as schemas.record.Message.text: the content, then each call as `name(arguments)`."""
    content, calls = message.get("content") or "", message.get("tool_calls")
    if not calls or not isinstance(calls, list):
        return content
    functions = [(call.get("function") or {}) if isinstance(call, dict) else {} for call in calls]
    lines = "\n".join(f"{function.get('name')}({function.get('arguments')})" for function in functions)
    return "\n".join(part for part in (content, lines) if part)


def summarise(record: dict) -> tuple:
    """What the figures need of one record: (kind, lang, source, id, characters, user turns,
    answer hash, question hash). The build computes it in its workers, so the report of a fresh
    bundle never parses the bundle again."""
    meta = record.get("meta") or {}
    messages = record.get("messages") or []
    return (meta.get("kind") or "general", meta.get("lang") or "unknown", meta.get("source") or "unknown",
            meta.get("id"), len(conversation_text(record)), sum(1 for m in messages if m.get("role") == "user"),
            content_hash(last_content(messages, "assistant").strip()),
            content_hash(last_content(messages, "user").strip()))


def summarise_record(record) -> tuple:
    """summarise() of a schemas Record object, without dumping it to a dict first (one loop over
    the turns: this runs once per record in the build's workers)."""
    messages = record.messages
    answer = question = ""
    users, characters = 0, len(messages) - 1  # len(conversation_text()): the turns' texts and the newlines between
    for message in messages:
        characters += len(message.text() if message.tool_calls else message.content)
        if message.role == "user":
            users += 1
            question = message.content
        elif message.role == "assistant":
            answer = message.content
    meta = record.meta
    return (meta.kind, meta.lang or "unknown", meta.source, meta.id, max(characters, 0), users,
            content_hash(answer.strip()), content_hash(question.strip()))


def content_hash(text: str) -> int:
    """64-bit hash, enough to tell 1M answers apart while storing 8 bytes each."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def last_content(messages: list[dict], role: str) -> str:
    """The text of the last turn by `role` ("" if none): the answer or question a hash stands for."""
    for message in reversed(messages):
        if message.get("role") == role:
            return message.get("content") or ""
    return ""


def _int_array() -> array:
    return array("q")


class StatsPass:
    """Everything computed per record, kept as counters and integer arrays."""

    def __init__(self, identity_terms: dict[str, str], count_tokens: Callable[[list[str]], list[int]] | None,
                 wanted_ids: frozenset[str] = frozenset()):
        self.by_split: Counter = Counter()
        self.by_kind: Counter = Counter()
        self.by_lang: Counter = Counter()
        self.by_kind_split: dict[str, Counter] = defaultdict(Counter)
        self.by_source: dict[str, Counter] = defaultdict(Counter)
        self.source_kinds: dict[str, set] = defaultdict(set)
        self.chars: dict[tuple[str, str], array] = defaultdict(_int_array)
        self.tokens: dict[tuple[str, str], array] = defaultdict(_int_array)
        self.turns: Counter = Counter()
        self.answer_hashes = array("Q")
        self.question_hashes = array("Q")
        self.identity = IdentityTally(identity_terms)
        self.count_tokens = count_tokens
        self._token_batch: list[tuple[tuple[str, str], str]] = []
        self.wanted_ids = wanted_ids  # kept records of the largest near-duplicate clusters
        self.wanted_records: dict[str, tuple[str, dict]] = {}

    def merge(self, other: "StatsPass") -> None:
        """Fold in the pass over a later part of the same files (order is kept)."""
        for mine, theirs in ((self.by_split, other.by_split), (self.by_kind, other.by_kind),
                             (self.by_lang, other.by_lang), (self.turns, other.turns)):
            mine.update(theirs)
        self.identity.merge(other.identity)
        for key, counter in other.by_kind_split.items():
            self.by_kind_split[key].update(counter)
        for key, counter in other.by_source.items():
            self.by_source[key].update(counter)
        for key, kinds in other.source_kinds.items():
            self.source_kinds[key] |= kinds
        for key, values in other.chars.items():
            self.chars[key].extend(values)
        for key, values in other.tokens.items():
            self.tokens[key].extend(values)
        self.answer_hashes.extend(other.answer_hashes)
        self.question_hashes.extend(other.question_hashes)
        for rid, found in other.wanted_records.items():
            self.wanted_records.setdefault(rid, found)

    def add(self, split: str, record: dict) -> None:
        self.add_summary(split, summarise(record), lambda: record)

    def add_summary(self, split: str, summary: tuple, load: Callable[[], dict]) -> None:
        """One record given by its summary; `load` gives the whole record when it is needed
        (identity records, kept twins of the largest clusters, token counts)."""
        kind, lang, source, rid, chars, turns, answer_hash, question_hash = summary
        self.by_split[split] += 1
        self.by_kind[kind] += 1
        self.by_lang[lang] += 1
        self.by_kind_split[kind][split] += 1
        self.by_source[source][split] += 1
        self.source_kinds[source].add(kind)
        self.chars[(kind, split)].append(chars)
        self.turns[turns] += 1
        self.answer_hashes.append(answer_hash)
        self.question_hashes.append(question_hash)
        if kind == "identity":
            self.identity.add(split, lang, rid, load().get("messages") or [])
        if self.wanted_ids and rid in self.wanted_ids:
            self.wanted_records.setdefault(rid, (split, load()))
        if self.count_tokens is not None:
            self._token_batch.append(((kind, split), conversation_text(load())))
            if len(self._token_batch) >= 512:
                self.flush_tokens()

    def flush_tokens(self) -> None:
        if self._token_batch and self.count_tokens is not None:
            lengths = self.count_tokens([text for _, text in self._token_batch])
            for (group, _), n in zip(self._token_batch, lengths):
                self.tokens[group].append(n)
        self._token_batch = []


def _read_range(file: Path, start: int, end: int) -> Iterator[dict]:
    with open(file, "rb") as handle:
        handle.seek(start)
        while handle.tell() < end:
            line = handle.readline()
            if not line:
                break
            if line.strip():
                yield json.loads(line)


def _pass_over(part: list[tuple[str, Path, int, int]], terms: dict[str, str], wanted: frozenset[str]) -> StatsPass:
    acc = StatsPass(terms, None, wanted)
    for split, file, start, end in part:
        for record in _read_range(file, start, end):
            acc.add(split, record)
    return acc


def records_pass(inputs: Inputs, terms: dict[str, str], count_tokens: Callable[[list[str]], list[int]] | None,
                 wanted: frozenset[str]) -> StatsPass:
    """One pass over train and val; big bundles are read by two processes, results merged in order."""
    size = sum((inputs.version_dir / f"{s}.jsonl").stat().st_size for s in SPLITS
               if inputs.version_dir and (inputs.version_dir / f"{s}.jsonl").is_file())
    workers = min(2, os.cpu_count() or 1)
    if inputs.version_dir is None or count_tokens is not None or size < PARALLEL_BYTES or workers < 2:
        acc = StatsPass(terms, count_tokens, wanted)
        for split, record in inputs.records():
            acc.add(split, record)
        acc.flush_tokens()
        return acc
    with fork_pool(workers) as pool:
        parts = list(ordered_map(pool, _pass_over, [(part, terms, wanted) for part in inputs.parts(workers)]))
    acc = parts[0]
    for part in parts[1:]:
        acc.merge(part)
    return acc


def new_pass(identity: dict | None, wanted: frozenset[str]) -> StatsPass:
    """An empty accumulator for a bundle with these identity settings (the manifest's `identity`),
    to feed with add_summary (what the build does)."""
    return StatsPass(identity_terms(identity), None, wanted)
