"""Where a build's rejects go: appended to rejects.jsonl as they come, counted per stage, reason
and source for the manifest; with --strict the first invalid input stops the build.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from curate.errors import BuildError
from curate.kept_store import Prepared
from curate.rejects_pass import RejectsPass
from schemas.manifest import Reject

STAGES = ("read", "validate", "render", "length", "language", "exact_dedup", "near_dedup", "mix")
INVALID_STAGES = ("read", "validate", "render")  # what --strict stops at: bad input, not filtered input


@dataclass
class Counts:
    """Per-stage and per-source tallies the manifest is made from."""

    stage_in: Counter = field(default_factory=Counter)
    stage_rejected: Counter = field(default_factory=Counter)
    reasons: dict[str, Counter] = field(default_factory=lambda: {s: Counter() for s in STAGES})


class RejectSink:
    """Appends rejects to rejects.jsonl as they come; with strict=True the first one stops the build."""

    def __init__(self, path: Path, counts: Counts, strict: bool):
        self.path, self.handle = path, open(path, "wb")
        self.counts = counts
        self.strict = strict
        self.by_source: Counter = Counter()
        self.total = 0
        self.tally = RejectsPass()  # the report's figures and examples, so it never reads the file back
        self.digest = hashlib.sha256()  # of the lines as written: the manifest's hash, without reading them back

    def add(self, reject: Reject, source_index: int) -> None:
        if self.strict and reject.stage in INVALID_STAGES:
            raise BuildError(f"{reject.source}:{reject.line}: {reject.stage}: {reject.message} (--strict)")
        fields = reject.model_dump(exclude_none=True)
        line = json.dumps(fields, ensure_ascii=False).encode("utf-8") + b"\n"
        self._write(line)
        self.tally.add(fields, lambda: json.loads(line))
        self._count(reject.stage, reject.reason, source_index)

    def add_kept(self, item: Prepared, stage: str, reason: str, message: str, duplicate_of: str | None = None) -> None:
        """A record that passed the per-record stages, dropped by dedup or the mix.

        Written field by field in Reject's order with the record's JSON as `raw`, without parsing
        it back: at a million records this is most of the dedup stage's time otherwise.
        """
        dump = json.dumps
        twin = f', "duplicate_of": {dump(duplicate_of, ensure_ascii=False)}' if duplicate_of else ""
        row = "" if item.row is None else f', "line": {item.row}'
        head = (f'{{"source": {dump(item.file, ensure_ascii=False)}{row}, "stage": "{stage}", "reason": "{reason}", '
                f'"message": {dump(message, ensure_ascii=False)}, "raw": ')
        tail = f', "id": {dump(item.id, ensure_ascii=False)}, "kind": "{item.kind}"{twin}}}\n'
        line = head.encode("utf-8") + item.line + tail.encode("utf-8")
        self._write(line)
        fields = {"source": item.file, "stage": stage, "reason": reason}
        if duplicate_of:
            fields["duplicate_of"] = duplicate_of
        self.tally.add(fields, lambda: json.loads(line))
        self._count(stage, reason, item.source)

    def _write(self, line: bytes) -> None:
        self.handle.write(line)
        self.digest.update(line)

    def _count(self, stage: str, reason: str, source_index: int) -> None:
        self.counts.stage_rejected[stage] += 1
        self.counts.reasons[stage][reason] += 1
        self.by_source[(source_index, stage)] += 1
        self.total += 1

    def close(self) -> None:
        self.handle.close()  # synced by the build's file chores and again by `publish`
