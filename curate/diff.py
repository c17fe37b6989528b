"""What changed between two bundle versions: records, ratio, lengths and recipe keys.

Records are matched by meta.id plus a hash of the whole record, so an edited record shows up as
removed + added (and is also listed as changed). The split files are streamed into polars frames of
ids and 64-bit hashes; record texts are never held.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import polars as pl

from curate.stats_arrays import PERCENTILES, percentiles
from curate.stats_inputs import StatsError, open_inputs
from curate.stats_pass import content_hash, conversation_text
from schemas.manifest import Manifest

EXAMPLES = 20
_CHUNK = 100_000


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{'mix': {'ratio': '1:4'}, 'sources': [{'path': 'a'}]} -> {'mix.ratio': '1:4', 'sources.0.path': 'a'}."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for index, item in enumerate(value):
            out.update(flatten(item, f"{prefix}.{index}" if prefix else str(index)))
        return out
    return {prefix: value} if prefix else {}


def recipe_changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Dotted recipe keys whose value differs, was added or was removed, sorted by key."""
    a, b = flatten(old), flatten(new)
    out = []
    for key in sorted(set(a) | set(b)):
        if key not in a:
            out.append({"key": key, "change": "added", "old": None, "new": b[key]})
        elif key not in b:
            out.append({"key": key, "change": "removed", "old": a[key], "new": None})
        elif a[key] != b[key]:
            out.append({"key": key, "change": "changed", "old": a[key], "new": b[key]})
    return out


def _record_frames(inputs: Any) -> Iterator[pl.DataFrame]:
    """Chunks of (id, hash, source, kind, split, chars) for every kept record."""
    cols: dict[str, list] = {k: [] for k in ("id", "h", "source", "kind", "split", "chars")}
    for split, record in inputs.records():
        meta = record.get("meta") or {}
        cols["id"].append(meta.get("id") or "")
        cols["h"].append(content_hash(_canonical(record, meta)))
        cols["source"].append(meta.get("source") or "unknown")
        cols["kind"].append(meta.get("kind") or "general")
        cols["split"].append(split)
        cols["chars"].append(len(conversation_text(record)))
        if len(cols["id"]) >= _CHUNK:
            yield _frame(cols)
            cols = {k: [] for k in cols}
    yield _frame(cols)


def _canonical(record: dict, meta: dict) -> str:
    """Everything that makes a record what it is (turns, tools, kind, language, source), cheaper than json.dumps."""
    turns = "\x1e".join(f"{m.get('role')}\x1f{m.get('content')}" for m in record.get("messages") or [])
    tools = record.get("tools")
    return "\x1d".join([turns, tools if isinstance(tools, str) else json.dumps(tools),
                        str(meta.get("kind")), str(meta.get("lang")), str(meta.get("source"))])


def _frame(cols: dict[str, list]) -> pl.DataFrame:
    return pl.DataFrame(cols, schema={"id": pl.String, "h": pl.UInt64, "source": pl.String, "kind": pl.String,
                                      "split": pl.String, "chars": pl.Int64})


def _load(path: Path) -> tuple[Manifest, Path, pl.DataFrame]:
    inputs = open_inputs(path)
    if inputs.manifest is None or inputs.version_dir is None:
        raise StatsError(f"{path}: diff compares bundle versions (a version dir or an output root), not source files")
    return inputs.manifest, inputs.version_dir, pl.concat(list(_record_frames(inputs)))


def _per(frame: pl.DataFrame, column: str) -> dict[str, int]:
    return {row[column]: row["n"] for row in frame.group_by(column).agg(pl.len().alias("n")).sort(column).iter_rows(named=True)}


def _moved(old: Any, new: Any) -> dict[str, Any]:
    delta = new - old if isinstance(old, (int, float)) and isinstance(new, (int, float)) else None
    if isinstance(delta, float):
        delta = round(delta, 4)
    return {"old": old, "new": new, "delta": delta}


def _length_moves(old: pl.DataFrame, new: pl.DataFrame) -> dict[str, Any]:
    def table(a: dict | None, b: dict | None) -> dict[str, Any]:
        names = ["max" if p == 100 else f"p{p}" for p in PERCENTILES]
        return {n: _moved((a or {}).get(n), (b or {}).get(n)) for n in names}

    kinds = sorted(set(old["kind"].unique().to_list()) | set(new["kind"].unique().to_list()))
    return {
        "all": table(percentiles(old["chars"].to_list()), percentiles(new["chars"].to_list())),
        "by_kind": {k: table(percentiles(old.filter(pl.col("kind") == k)["chars"].to_list()),
                             percentiles(new.filter(pl.col("kind") == k)["chars"].to_list())) for k in kinds},
    }


def _ratio(manifest: Manifest) -> dict[str, Any]:
    r = manifest.ratio
    return {"requested": r.requested, "achieved_general_per_domain": r.achieved_general_per_domain,
            "domain": r.domain, "general": r.general}


def diff_bundles(old: Path, new: Path) -> dict[str, Any]:
    """Differences from bundle `old` to bundle `new` (version dirs or output roots), as sorted JSON data."""
    old_manifest, old_dir, old_frame = _load(Path(old))
    new_manifest, new_dir, new_frame = _load(Path(new))
    added = new_frame.join(old_frame, on=["id", "h"], how="anti")
    removed = old_frame.join(new_frame, on=["id", "h"], how="anti")
    changed = sorted(set(added["id"].to_list()) & set(removed["id"].to_list()))
    by_source, by_kind = {}, {}
    for target, column in ((by_source, "source"), (by_kind, "kind")):
        a, r = _per(added, column), _per(removed, column)
        for key in sorted(set(a) | set(r)):
            target[key] = {"added": a.get(key, 0), "removed": r.get(key, 0)}
    counts = {k: _moved(old_manifest.counts.get(k), new_manifest.counts.get(k))
              for k in sorted(set(old_manifest.counts) | set(new_manifest.counts))}
    old_ratio, new_ratio = _ratio(old_manifest), _ratio(new_manifest)
    result = {
        "old": {"path": str(old_dir), "id": old_manifest.id, "name": old_manifest.name},
        "new": {"path": str(new_dir), "id": new_manifest.id, "name": new_manifest.name},
        "identical": old_manifest.id == new_manifest.id,
        "records": {
            "added": added.height, "removed": removed.height, "changed": len(changed),
            "unchanged": new_frame.height - added.height,
            "by_source": by_source, "by_kind": by_kind,
            "examples": {"added": sorted(added["id"].to_list())[:EXAMPLES],
                         "removed": sorted(removed["id"].to_list())[:EXAMPLES],
                         "changed": changed[:EXAMPLES]},
        },
        "counts": counts,
        "ratio": {k: _moved(old_ratio[k], new_ratio[k]) for k in sorted(old_ratio)},
        "lengths": _length_moves(old_frame, new_frame),
        "recipe": recipe_changes(old_manifest.recipe, new_manifest.recipe),
    }
    return json.loads(json.dumps(result, sort_keys=True, ensure_ascii=False))
