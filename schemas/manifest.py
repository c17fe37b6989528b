"""What a bundle version says about itself: inputs, counts per stage, ratio and file hashes."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1"


class Reject(BaseModel):
    """One dropped record and why; `raw` holds it as read so nothing is lost."""

    model_config = ConfigDict(extra="forbid")
    source: str
    line: int | None = Field(None, description="1-based physical line where the record starts")
    index: int | None = Field(None, description="1-based position in a JSON array, CSV or Parquet file")
    stage: str
    reason: str = Field(description="machine-readable reason code")
    message: str
    raw: Any = None
    id: str | None = None
    kind: str | None = None
    duplicate_of: str | None = None
    lang: str | None = Field(None, description="language stage: the language detected")


class SourceStats(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    kind: str
    files: dict[str, str] = Field(default_factory=dict, description="file -> sha256")
    rows: int = Field(0, description="rows read from the files")
    sample: int | None = Field(None, description="the N of path#N, if sampled")
    sampled_out: int = Field(0, description="rows left out by path#N sampling")
    mixed_out: int = Field(0, description="records left out by the domain:general mix")
    rejected: int = 0
    kept: int = Field(0, description="records that reached train or val")
    note: str | None = None


class StageStats(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    records_in: int
    records_out: int
    rejected: int
    reasons: dict[str, int] = Field(default_factory=dict)


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sha256: str
    records: int
    bytes: int


class RatioStats(BaseModel):
    model_config = ConfigDict(extra="forbid")
    requested: str
    requested_general_per_domain: float
    achieved_general_per_domain: float | None
    domain: int
    general: int
    band: tuple[float, float]


class Manifest(BaseModel):
    """Deterministic: no clock time in it, so the same inputs give the same bytes."""

    model_config = ConfigDict(extra="forbid")
    schema_version: str = SCHEMA_VERSION
    curatune_version: str
    id: str = Field(description="sha256 over the data files and the resolved recipe")
    name: str
    seed: int
    recipe: dict[str, Any]
    sources: list[SourceStats]
    identity: dict[str, Any] | None = None
    stages: list[StageStats]
    ratio: RatioStats
    counts: dict[str, int]
    files: dict[str, FileEntry]
