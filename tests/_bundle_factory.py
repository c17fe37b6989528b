"""Hand-built bundle versions for the stats, report and diff tests, so they never depend on the build."""
from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from schemas.manifest import FileEntry, Manifest, RatioStats, Reject, SourceStats, StageStats
from schemas.record import Message, Record, RecordMeta

STAGES = ["read", "validate", "render", "length", "language", "exact_dedup", "near_dedup", "mix"]
IDENTITY = {"name": {"zh": "小智", "en": "Zhi"}, "author": {"zh": "星河实验室", "en": "Galaxy Lab"},
            "templates": 2, "rendered": 0, "system": None}
RECIPE = {"name": "demo", "mix": {"ratio": "1:4", "allow_out_of_band": False},
          "dedup": {"exact": True, "near": {"enabled": True, "threshold": 0.8}},
          "split": {"val_ratio": 0.1, "seed": 42}, "sources": [{"path": "domain.jsonl", "kind": "domain"},
                                                              {"path": "general.jsonl", "kind": "general"}]}


def record(rid: str, question: str, answer: str, *, kind: str = "general", lang: str = "en",
           source: str | None = None, turns: int = 1) -> Record:
    messages = []
    for i in range(turns):
        suffix = f" (part {i + 1})" if turns > 1 else ""
        messages += [Message(role="user", content=question + suffix), Message(role="assistant", content=answer)]
    source = source or rid.split(":")[0]
    return Record(messages=messages, meta=RecordMeta(id=rid, source=source, line=int(rid.split(":")[-1]),
                                                     lang=lang, kind=kind))


def default_records() -> list[Record]:
    """60 identity (zh+en), 25 domain, 341 general: domain:general about 1:4, inside the band."""
    out = []
    for i in range(1, 31):
        out.append(record(f"identity:{i}", f"Who are you? #{i}", f"I am Zhi, made by Galaxy Lab. ({i})",
                          kind="identity", lang="en"))
        out.append(record(f"identity:{100 + i}", f"你是谁？#{i}", f"我是小智，由星河实验室开发。（{i}）",
                          kind="identity", lang="zh"))
    for i in range(1, 26):
        out.append(record(f"domain.jsonl:{i}", f"How do I configure widget {i}?",
                          "Open settings and pick a widget. " * (i % 7 + 1), kind="domain", turns=1 + i % 3))
    for i in range(1, 341):
        lang = "zh" if i % 4 == 0 else "en"
        out.append(record(f"general.jsonl:{i}", f"General question number {i}?",
                          (f"Answer {i}: " + "A helpful general answer. " * (i % 40 + 1)) if i % 50 else "I cannot help with that.",
                          lang=lang))
    # a record whose text must be escaped in the report
    out.append(record("general.jsonl:999", "Show me <script>alert('x')</script> please",
                      "<script>alert(1)</script> & <b>bold</b>", lang="en"))
    return out


def default_rejects() -> list[Reject]:
    out = [
        Reject(source="general.jsonl", line=500, stage="read", reason="bad_json", message="invalid JSON",
               raw="{not json <script>bad()</script>", id="general.jsonl:500", kind="general"),
        Reject(source="general.jsonl", line=501, stage="length", reason="too_long", message="over 16000 chars",
               raw={"instruction": "x" * 3000, "output": "y"}, id="general.jsonl:501", kind="general"),
        Reject(source="general.jsonl", line=502, stage="language", reason="language_not_allowed",
               message="fr not allowed", raw={"instruction": "Bonjour", "output": "Salut"},
               id="general.jsonl:502", kind="general"),
        Reject(source="general.jsonl", line=503, stage="exact_dedup", reason="exact_duplicate",
               message="same text as general.jsonl:3", raw={"instruction": "General question number 3?"},
               id="general.jsonl:503", kind="general", duplicate_of="general.jsonl:3"),
    ]
    for i in range(4):  # a cluster of 4 near duplicates of domain.jsonl:2 and one of general.jsonl:7
        out.append(Reject(source="domain.jsonl", line=600 + i, stage="near_dedup", reason="near_duplicate",
                          message="similar to domain.jsonl:2", id=f"domain.jsonl:{600 + i}", kind="domain",
                          raw={"query": f"How do I configure widget 2 ?{'!' * i}", "response": "Open settings."},
                          duplicate_of="domain.jsonl:2"))
    out.append(Reject(source="general.jsonl", line=700, stage="near_dedup", reason="near_duplicate",
                      message="similar to general.jsonl:7", id="general.jsonl:700", kind="general",
                      raw={"instruction": "General question number 7??", "output": "A helpful answer."},
                      duplicate_of="general.jsonl:7"))
    return out


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> FileEntry:
    data = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode("utf-8")
    path.write_bytes(data)
    return FileEntry(sha256=hashlib.sha256(data).hexdigest(), records=len(rows), bytes=len(data))


def write_bundle(version_dir: Path, records: list[Record] | None = None, rejects: list[Reject] | None = None,
                 *, recipe: dict[str, Any] | None = None, identity: dict[str, Any] | None = IDENTITY,
                 val_every: int = 10) -> Manifest:
    """Write train/val/rejects + a manifest whose counts agree with the files; every val_every-th record is val."""
    records = default_records() if records is None else records
    rejects = default_rejects() if rejects is None else rejects
    recipe = RECIPE if recipe is None else recipe
    version_dir.mkdir(parents=True, exist_ok=True)
    train = [r for i, r in enumerate(records) if (i + 1) % val_every]
    val = [r for i, r in enumerate(records) if not (i + 1) % val_every]
    files = {
        "train.jsonl": _write_jsonl(version_dir / "train.jsonl", [r.to_json_dict() for r in train]),
        "val.jsonl": _write_jsonl(version_dir / "val.jsonl", [r.to_json_dict() for r in val]),
        "rejects.jsonl": _write_jsonl(version_dir / "rejects.jsonl",
                                      [r.model_dump(exclude_none=False) for r in rejects]),
    }
    kinds = Counter(r.meta.kind for r in records)
    domain, general = kinds["domain"] + kinds["identity"], kinds["general"]
    reasons: dict[str, Counter] = defaultdict(Counter)
    for r in rejects:
        reasons[r.stage][r.reason] += 1
    stages, alive = [], len(records) + len(rejects)
    for name in STAGES:
        dropped = sum(reasons[name].values())
        stages.append(StageStats(name=name, records_in=alive, records_out=alive - dropped, rejected=dropped,
                                 reasons=dict(reasons[name])))
        alive -= dropped
    per_source: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        if r.meta.kind != "identity":
            per_source[r.meta.source]["kept"] += 1
            per_source[r.meta.source]["kind:" + r.meta.kind] += 1
    for r in rejects:
        per_source[r.source]["rejected"] += 1
    sources = [SourceStats(path=s, kind="domain" if c["kind:domain"] else "general",
                           rows=c["kept"] + c["rejected"], kept=c["kept"], rejected=c["rejected"])
               for s, c in sorted(per_source.items())]
    ident = None
    if identity is not None:
        ident = dict(identity, rendered=kinds["identity"])
    manifest = Manifest(
        curatune_version="0.1.0", id=hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest(),
        name=recipe.get("name", "demo"), seed=42, recipe=recipe, sources=sources, identity=ident, stages=stages,
        ratio=RatioStats(requested=str(recipe.get("mix", {}).get("ratio", "1:4")),
                         requested_general_per_domain=4.0,
                         achieved_general_per_domain=round(general / domain, 4) if domain else None,
                         domain=domain, general=general, band=(2.0, 10.0)),
        counts={"read": len(records) + len(rejects), "kept": len(records), "rejected": len(rejects),
                "train": len(train), "val": len(val), "mixed_out": 0, "sampled_out": 0},
        files=files,
    )
    (version_dir / "manifest.json").write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
    return manifest
