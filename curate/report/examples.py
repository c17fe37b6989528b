"""A few real records behind the figures: rejects per reason and the largest near-duplicate clusters.

Kept small on purpose (a handful per reason, the top clusters, truncated text) so the report of a
1M-record bundle stays a few hundred kilobytes.
"""
from __future__ import annotations

from typing import Any

from curate.rejects_pass import record_text, tally_rejects
from curate.stats_inputs import Inputs


def collect_examples(inputs: Inputs, stats: dict[str, Any]) -> dict[str, Any]:
    """{'rejects': {reason: [example, ...]}, 'clusters': [{kept, removed, removed_total}, ...],
    'language_by_source': {source: [example, ...]}} (what the language filter dropped from each source)."""
    wanted = {c["kept"]: c["removed"] for c in stats["duplicates"]["largest_clusters"]}
    tally = inputs.rejects_pass
    if tally is None:  # figures made elsewhere: tally the rejects now
        tally = tally_rejects(inputs.rejects())
    removed = tally.examples_for_clusters(wanted)
    if removed is None:
        removed = tally.collect_removed(inputs.rejects(), wanted) if wanted else {}
    by_reason, by_source = tally.by_reason, tally.by_source
    kept: dict[str, dict] = {}
    for rid, (split, record) in (inputs.kept_records or {}).items():
        if rid in wanted:
            kept[rid] = {"id": rid, "split": split, "text": record_text(record)}
    if wanted and inputs.kept_records is None and len(kept) < len(wanted):  # no stats pass: look for them
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
