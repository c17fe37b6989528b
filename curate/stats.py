"""Figures about a bundle version or a source file, so people can judge data before training on it.

The figures the manifest already holds (counts, ratio, stages, sources, identity settings) are
read from it, never recomputed, so `curate stats`, `--json` and the HTML report always agree with
the build. Everything else comes from one streaming pass over the jsonl files (curate.stats_pass):
per record only a few integers are kept, never the texts. Inputs are opened by curate.stats_inputs,
warnings worded by curate.stats_warnings.
"""
from __future__ import annotations

import json
from array import array
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np

from curate.identity_coverage import identity_figures, identity_terms
from curate.rejects_pass import RejectsPass, tally_rejects
from curate.stats_arrays import answers_with_many_questions, histogram, percentiles
from curate.stats_inputs import Inputs, StatsError, open_inputs
from curate.stats_pass import StatsPass, content_hash, last_content, records_pass
from curate.stats_warnings import warnings_for
from schemas.bundle import VERSION_DIR

CHAR_EDGES = [0, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768]
TOKEN_EDGES = [0, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192]
REPEATED_ANSWER_QUESTIONS = 5
TOP = 10  # longest lists kept in the figures (clusters, repeated answers)
SNIPPET = 200  # characters of a record text quoted in the figures


# ---------------------------------------------------------------- small pure helpers

def largest_clusters(clusters: Counter) -> list[tuple[str, int]]:
    """The near-duplicate clusters the report shows: most removed records first."""
    return sorted(clusters.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]


def _sorted(counter: dict) -> dict:
    return {k: counter[k] for k in sorted(counter)}


def _snippet(text: str, limit: int = SNIPPET) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def load_tokenizer(path: str) -> Callable[[list[str]], list[int]]:
    """Token counts per text with the model's own tokenizer (no special tokens, as the length filter)."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise StatsError("--tokenizer needs the 'transformers' package (pip install transformers)") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except Exception as exc:  # transformers raises OSError, ValueError, ... for a bad path
        raise StatsError(f"{path}: cannot load tokenizer: {str(exc).splitlines()[0]}") from None

    def count(texts: list[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]

    return count


# ---------------------------------------------------------------- figures

def _length_figures(groups: dict[tuple[str, str], array], edges: list[int]) -> dict[str, Any] | None:
    if not groups:
        return None
    kinds = sorted({k for k, _ in groups})
    splits = sorted({s for _, s in groups})
    arrays = {group: np.frombuffer(values, dtype=np.int64) if len(values) else np.zeros(0, dtype=np.int64)
              for group, values in groups.items()}

    def pick(pred: Callable[[str, str], bool]) -> np.ndarray:
        return np.concatenate([values for (kind, split), values in arrays.items() if pred(kind, split)] or
                              [np.zeros(0, dtype=np.int64)])

    return {
        "all": percentiles(pick(lambda k, s: True)),
        "by_kind": {k: percentiles(pick(lambda kk, s, k=k: kk == k)) for k in kinds},
        "by_split": {s: percentiles(pick(lambda k, ss, s=s: ss == s)) for s in splits},
        "histogram": {
            "edges": edges,
            "by_kind_split": {k: {s: histogram(arrays[(k, s)], edges) for s in splits if (k, s) in groups}
                              for k in kinds},
        },
    }


def _rejects_figures(inputs: Inputs, tally: RejectsPass | None = None) -> dict[str, Any]:
    """Stage and reason counts from the manifest; near-dup clusters and line counts from rejects.jsonl
    (tallied by the build as it wrote the file, when given, else read now)."""
    if tally is None:
        tally = tally_rejects(inputs.rejects())
    inputs.rejects_pass = tally
    file_counts, clusters, by_language, lines = tally.file_counts, tally.clusters, tally.by_language, tally.lines
    if inputs.manifest is not None:
        by_stage = {s.name: {"in": s.records_in, "out": s.records_out, "rejected": s.rejected,
                             "reasons": _sorted(s.reasons)} for s in inputs.manifest.stages}
        stage_order = [s.name for s in inputs.manifest.stages]
    else:
        by_stage = {stage: {"in": None, "out": None, "rejected": sum(c.values()), "reasons": _sorted(c)}
                    for stage, c in file_counts.items()}
        stage_order = sorted(by_stage)
    by_reason: Counter = Counter()
    for stage in by_stage.values():
        by_reason.update(stage["reasons"])
    largest = largest_clusters(clusters)
    # The mix stage "rejects" nothing wrong: it leaves records out for the ratio (counts.mixed_out).
    filtered = sum(s["rejected"] for name, s in by_stage.items() if name != "mix")
    return {
        "total": inputs.manifest.counts.get("rejected", filtered) if inputs.manifest else filtered,
        "mixed_out": by_stage.get("mix", {}).get("rejected", 0),
        "lines": lines,
        "stage_order": stage_order,
        "by_stage": {k: by_stage[k] for k in sorted(by_stage)},
        "by_reason": _sorted(by_reason),
        "language_by_source": {src: {"rejected": sum(c["reasons"].values()), "reasons": _sorted(c["reasons"]),
                                     "languages": _sorted(c["languages"])} for src, c in sorted(by_language.items())},
        "duplicates": {
            "exact": by_reason.get("exact_duplicate", 0),
            "near": by_reason.get("near_duplicate", 0),
            "near_clusters": len(clusters),
            "largest_clusters": [{"kept": kept, "removed": n} for kept, n in largest],
        },
    }


def _ratio_figures(inputs: Inputs, acc: StatsPass) -> dict[str, Any]:
    if inputs.manifest is not None:
        r = inputs.manifest.ratio
        requested, requested_value = r.requested, r.requested_general_per_domain
        achieved, domain, general, band = r.achieved_general_per_domain, r.domain, r.general, list(r.band)
    else:
        from schemas.recipe import RATIO_BAND

        domain = acc.by_kind.get("domain", 0) + acc.by_kind.get("identity", 0)
        general = acc.by_kind.get("general", 0)
        requested, requested_value, band = None, None, list(RATIO_BAND)
        achieved = round(general / domain, 4) if domain else None
    in_band = achieved is not None and band[0] <= achieved <= band[1]
    return {"requested": requested, "requested_general_per_domain": requested_value,
            "achieved_general_per_domain": achieved, "domain": domain, "general": general,
            "band": band, "in_band": in_band}


def _repeated_answers(inputs: Inputs, acc: StatsPass) -> list[dict[str, Any]]:
    """Answers given to >= 5 different questions; texts fetched in a second pass only if any exist."""
    if not len(acc.answer_hashes):
        return []
    wanted = {answer: {"questions": questions, "records": records} for answer, questions, records in
              answers_with_many_questions(np.frombuffer(acc.answer_hashes, dtype=np.uint64),
                                          np.frombuffer(acc.question_hashes, dtype=np.uint64),
                                          REPEATED_ANSWER_QUESTIONS)}
    if not wanted:
        return []
    texts: dict[int, str] = {}
    for _, record in inputs.records():
        answer = last_content(record.get("messages") or [], "assistant").strip()
        h = content_hash(answer)
        if h in wanted and h not in texts:
            texts[h] = _snippet(answer)
            if len(texts) == len(wanted):
                break
    found = [{"answer": texts.get(h, ""), "questions": row["questions"], "records": row["records"]}
             for h, row in wanted.items()]
    return sorted(found, key=lambda x: (-x["questions"], x["answer"]))[:TOP]


def _records_figures(acc: StatsPass) -> dict[str, Any]:
    return {
        "total": sum(acc.by_split.values()),
        "by_split": _sorted(acc.by_split),
        "by_kind": _sorted(acc.by_kind),
        "by_language": _sorted(acc.by_lang),
        "by_kind_split": {k: _sorted(acc.by_kind_split[k]) for k in sorted(acc.by_kind_split)},
        "by_source": {s: {"kinds": sorted(acc.source_kinds[s]), "total": sum(acc.by_source[s].values()),
                          **_sorted(acc.by_source[s])} for s in sorted(acc.by_source)},
    }


def _turns_figures(acc: StatsPass) -> dict[str, Any]:
    total = sum(acc.turns.values())
    return {
        "distribution": [[t, acc.turns[t]] for t in sorted(acc.turns)],
        "mean": round(sum(t * n for t, n in acc.turns.items()) / total, 3) if total else None,
        "max": max(acc.turns) if acc.turns else None,
    }


def _counts(inputs: Inputs, acc: StatsPass) -> dict[str, int]:
    if inputs.manifest is not None:
        return _sorted(inputs.manifest.counts)
    kept = sum(acc.by_split.values())
    rejected = len(inputs._rejects or [])
    return {"kept": kept, "read": kept + rejected, "rejected": rejected}


# ---------------------------------------------------------------- entry point

def collect_stats(path: Path, tokenizer: str | None = None) -> dict[str, Any]:
    """All figures for a bundle version, an output root (newest version) or one source file.

    The result is plain JSON data with sorted keys, identical for identical inputs.
    """
    return stats_for(open_inputs(path), tokenizer)


def stats_for(inputs: Inputs, tokenizer: str | None = None, records: StatsPass | None = None,
              rejects_pass: RejectsPass | None = None) -> dict[str, Any]:
    """collect_stats on inputs already opened (the report reuses them for its examples).

    `records` and `rejects_pass`, when given, are the passes over train and val and over the
    rejects already made (by the build)."""
    count_tokens = load_tokenizer(tokenizer) if tokenizer else None
    rejects = _rejects_figures(inputs, rejects_pass)
    wanted = frozenset(c["kept"] for c in rejects["duplicates"]["largest_clusters"])
    if records is not None and (tokenizer or records.wanted_ids != wanted):
        records = None  # made for other figures: read the bundle instead
    manifest = inputs.manifest
    identity = manifest.identity if manifest else None
    acc = records or records_pass(inputs, identity_terms(identity), count_tokens, wanted)
    inputs.kept_records = acc.wanted_records
    stats: dict[str, Any] = {
        "source": "bundle" if manifest else "file",
        "path": str(inputs.path),
        "bundle": None if manifest is None else {
            "name": manifest.name, "id": manifest.id,
            "version": inputs.path.name if VERSION_DIR.match(inputs.path.name) else None,
            "curatune_version": manifest.curatune_version, "seed": manifest.seed,
            "schema_version": manifest.schema_version},
        "counts": _counts(inputs, acc),
        "sources": [] if manifest is None else sorted(
            (s.model_dump(exclude={"files"}) for s in manifest.sources), key=lambda s: s["path"]),
        "records": _records_figures(acc),
        "ratio": _ratio_figures(inputs, acc),
        "lengths": {"chars": _length_figures(acc.chars, CHAR_EDGES),
                    "tokens": _length_figures(acc.tokens, TOKEN_EDGES) if count_tokens else None,
                    "tokenizer": tokenizer},
        "turns": _turns_figures(acc),
        "rejects": rejects,
        "identity": identity_figures(identity, acc.identity),
        "repeated_answers": _repeated_answers(inputs, acc),
    }
    stats["duplicates"] = stats["rejects"].pop("duplicates")
    stats["warnings"] = warnings_for(stats)
    return json.loads(json.dumps(stats, sort_keys=True, ensure_ascii=False))
