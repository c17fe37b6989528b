"""`curate validate`: check files without building, one line per bad record."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from curate.paths import label_for
from curate.shapes import rows_to_records
from curate.sources import read_file
from schemas.manifest import Reject


@dataclass
class ValidationReport:
    files: int = 0
    records: int = 0
    valid: int = 0
    rejects: list[Reject] = field(default_factory=list)
    reasons: Counter = field(default_factory=Counter)


def validate_files(paths: list[Path], shape: str | None = None) -> ValidationReport:
    """Parse and validate every record of each file, as a build would, and collect the failures."""
    report = ValidationReport()
    for path in paths:
        _, rows = read_file(path, label_for(path, Path.cwd()))
        records, rejects = rows_to_records(rows, kind="general", shape=shape)
        report.files += 1
        report.records += len(records) + len(rejects)
        report.valid += len(records)
        report.rejects += rejects
        report.reasons.update(r.reason for r in rejects)
    return report
