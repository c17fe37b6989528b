"""What the figures and the report need of rejects.jsonl, in one pass: counts by stage and reason,
near-duplicate clusters, language drops per source, and the few rejects shown as examples.

The build tallies it while it writes the file (curate.sinks), so its report never reads the file
back (at 10M records that was two parses of 1.5 GB); `curate stats` and a report of a bundle on disk
tally it while reading. Examples are made only for the rejects that are shown (a handful per
reason, the top clusters, truncated text), so the report of a big bundle stays small.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any, Callable, Iterable

PER_REASON = 3
PER_CLUSTER = 5
MAX_REASONS = 40
PER_SOURCE = 3  # language rejects shown per source
MAX_SOURCES = 40
RAW_CHARS = 600


def truncate(text: str, limit: int = RAW_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit:,} more chars]"


def raw_text(raw: Any) -> str:
    """A reject's raw input as readable text: strings as they were, rows as indented JSON."""
    if raw is None:
        return ""
    if isinstance(raw, str):
        return truncate(raw)
    if isinstance(raw, dict) and isinstance(raw.get("messages"), list) and all(
            isinstance(m, dict) for m in raw["messages"]):
        return record_text(raw)  # an already-canonical record: show the conversation, not its JSON
    return truncate(json.dumps(raw, ensure_ascii=False, indent=1, sort_keys=True))


def record_text(record: dict) -> str:
    """A kept record as 'role: content' lines, for reading beside its removed near duplicates."""
    lines = [f"{m.get('role')}: {m.get('content') or ''}" for m in record.get("messages") or []]
    return truncate("\n".join(lines))


def count_language_drop(by_language: dict[str, dict[str, Counter]], reject: dict) -> None:
    """Per source: records the language filter dropped, by reason and by the language detected."""
    entry = by_language.setdefault(str(reject.get("source") or "unknown"),
                                   {"reasons": Counter(), "languages": Counter()})
    entry["reasons"][str(reject.get("reason") or "unknown")] += 1
    entry["languages"][str(reject.get("lang") or "unknown")] += 1


class RejectsPass:
    """Rejects in file order, each given by its fields (stage, reason, source, lang, duplicate_of)
    and a way to load the whole reject, called only for one that is shown.

    `wanted`: the kept records of the clusters the report will show, when they are known before
    the rejects come (the build sets them before it writes the near duplicates); their removed
    members are then collected too. Without it, `examples_for_clusters` says they are missing."""

    def __init__(self) -> None:
        self.lines = 0
        self.file_counts: dict[str, Counter] = defaultdict(Counter)
        self.clusters: Counter = Counter()
        self.by_language: dict[str, dict[str, Counter]] = {}
        self.by_reason: dict[str, list[dict]] = {}  # examples: the first MAX_REASONS reasons
        self.by_source: dict[str, list[dict]] = {}  # language examples: the first MAX_SOURCES sources
        self.removed: dict[str, list[dict]] = defaultdict(list)
        self.wanted: frozenset[str] | None = None

    def add(self, reject: dict, load: Callable[[], dict]) -> None:
        self.lines += 1
        stage, reason = reject.get("stage"), reject.get("reason")
        self.file_counts[stage or "unknown"][reason or "unknown"] += 1
        if reason == "near_duplicate" and reject.get("duplicate_of"):
            self.clusters[reject["duplicate_of"]] += 1
        if stage == "language":
            count_language_drop(self.by_language, reject)
        lists = self._lists(reject)
        if lists:
            example = make_example(load())
            for found in lists:
                found.append(example)

    def _lists(self, reject: dict) -> list[list[dict]]:
        """The example lists this reject belongs in (most belong in none)."""
        lists = []
        shown = _room(self.by_reason, reject.get("reason") or "unknown", PER_REASON, MAX_REASONS)
        if shown is not None:
            lists.append(shown)
        if reject.get("stage") == "language":
            shown = _room(self.by_source, str(reject.get("source") or "unknown"), PER_SOURCE, MAX_SOURCES)
            if shown is not None:
                lists.append(shown)
        removed = self._removed_list(reject, self.wanted or frozenset())
        if removed is not None:
            lists.append(removed)
        return lists

    def _removed_list(self, reject: dict, wanted: frozenset[str] | dict) -> list[dict] | None:
        """The list of a shown cluster's removed members this reject belongs in, if any."""
        twin = reject.get("duplicate_of")
        if reject.get("reason") == "near_duplicate" and twin in wanted and len(self.removed[twin]) < PER_CLUSTER:
            return self.removed[twin]
        return None

    def examples_for_clusters(self, wanted: dict[str, int]) -> dict[str, list[dict]] | None:
        """The removed members of these clusters, or None when they were not collected."""
        return self.removed if self.wanted is not None and set(self.wanted) == set(wanted) else None

    def collect_removed(self, rejects, wanted: dict[str, int]) -> dict[str, list[dict]]:
        """A second pass over the rejects for the removed members of these clusters."""
        self.removed = defaultdict(list)
        for reject in rejects:
            removed = self._removed_list(reject, wanted)
            if removed is not None:
                removed.append(make_example(reject))
        self.wanted = frozenset(wanted)
        return self.removed


def _room(examples: dict[str, list[dict]], key: str, per_key: int, max_keys: int) -> list[dict] | None:
    """The example list of `key` while it has room for one more: a new key gets a list while fewer
    than max_keys have one (a bundle of many sources or reasons keeps a report of bounded size)."""
    found = examples.get(key)
    if found is None:
        if len(examples) >= max_keys:
            return None
        found = examples[key] = []
    return found if len(found) < per_key else None


def tally_rejects(rejects: Iterable[dict]) -> RejectsPass:
    """The pass over reject dicts read from a file (or held in memory)."""
    tally = RejectsPass()
    for reject in rejects:
        tally.add(reject, lambda reject=reject: reject)
    return tally


def make_example(reject: dict) -> dict:
    reason = reject.get("reason") or "unknown"
    return {"id": reject.get("id"), "source": reject.get("source"), "line": reject.get("line"),
            "stage": reject.get("stage"), "message": truncate(reject.get("message") or "", 300),
            "raw": raw_text(reject.get("raw")), "reason": reason}
