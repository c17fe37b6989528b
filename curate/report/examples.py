"""A few real records behind the figures: rejects per reason and the largest near-duplicate clusters.

Kept small on purpose (a handful per reason, the top clusters, truncated text) so the report of a
1M-record bundle stays a few hundred kilobytes.
"""
from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from curate.stats_inputs import Inputs

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


def collect_examples(inputs: Inputs, stats: dict[str, Any]) -> dict[str, Any]:
    """{'rejects': {reason: [example, ...]}, 'clusters': [{kept, removed, removed_total}, ...],
    'language_by_source': {source: [example, ...]}} (what the language filter dropped from each source)."""
    wanted = {c["kept"]: c["removed"] for c in stats["duplicates"]["largest_clusters"]}
    by_reason: dict[str, list[dict]] = defaultdict(list)
    by_source: dict[str, list[dict]] = defaultdict(list)
    removed: dict[str, list[dict]] = defaultdict(list)
    for reject in inputs.rejects():
        reason = reject.get("reason") or "unknown"
        source = str(reject.get("source") or "unknown")
        twin = reject.get("duplicate_of")
        lists = [by_reason[reason]] if len(by_reason[reason]) < PER_REASON and (
            reason in by_reason or len(by_reason) < MAX_REASONS) else []
        if reject.get("stage") == "language" and len(by_source[source]) < PER_SOURCE and (
                source in by_source or len(by_source) < MAX_SOURCES):
            lists.append(by_source[source])
        if reason == "near_duplicate" and twin in wanted and len(removed[twin]) < PER_CLUSTER:
            lists.append(removed[twin])
        if not lists:
            continue  # most rejects are shown nowhere: their text is not made
        example = {"id": reject.get("id"), "source": reject.get("source"), "line": reject.get("line"),
                   "stage": reject.get("stage"), "message": truncate(reject.get("message") or "", 300),
                   "raw": raw_text(reject.get("raw")), "reason": reason}
        for found in lists:
            found.append(example)
    kept: dict[str, dict] = {}
    for rid, (split, record) in (inputs.kept_records or {}).items():
        if rid in wanted:
            kept[rid] = {"id": rid, "split": split, "text": record_text(record)}
    if wanted and len(kept) < len(wanted):
        for split, record in inputs.records():
            rid = (record.get("meta") or {}).get("id")
            if rid in wanted and rid not in kept:
                kept[rid] = {"id": rid, "split": split, "text": record_text(record)}
                if len(kept) == len(wanted):
                    break
    clusters = [{"kept": kept.get(rid, {"id": rid, "split": None, "text": "(kept record not found)"}),
                 "removed": removed.get(rid, []), "removed_total": n}
                for rid, n in wanted.items()]
    return {"rejects": {r: by_reason[r] for r in sorted(by_reason)}, "clusters": clusters,
            "language_by_source": {src: by_source[src] for src in sorted(by_source)}}
