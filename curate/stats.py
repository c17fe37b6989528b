"""Figures about a bundle version or a source file, so people can judge data before training on it.

The figures the manifest already holds (counts, ratio, stages, sources, identity settings) are
read from it, never recomputed, so `curate stats`, `--json` and the HTML report always agree with
the build. Everything else is computed in one streaming pass over the jsonl files: per record only
a few integers are kept, never the texts.
"""
from __future__ import annotations

import bisect
import hashlib
import json
import math
from array import array
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from curate.identity_coverage import IdentityTally, coverage_warnings, identity_figures, identity_terms
from schemas.bundle import VERSION_DIR, BundleError, load_manifest, resolve_bundle
from schemas.manifest import Manifest

PERCENTILES = (0, 50, 90, 99, 100)  # reported as p0 p50 p90 p99 max
CHAR_EDGES = [0, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768]
TOKEN_EDGES = [0, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192]
MIN_IDENTITY = 50
REPEATED_ANSWER_QUESTIONS = 5
TOP = 10  # longest lists kept in the figures (clusters, repeated answers)
SNIPPET = 200  # characters of a record text quoted in the figures
LANGUAGES = ("en", "zh")
SPLITS = ("train", "val")


class StatsError(ValueError):
    """A path stats cannot read; one line, shown as is by the CLI."""


# ---------------------------------------------------------------- reading inputs

@dataclass
class Inputs:
    """A bundle version or a single source file, both seen as (split, record dict) plus reject dicts."""

    path: Path
    manifest: Manifest | None = None
    version_dir: Path | None = None
    _records: list[dict] | None = None
    _rejects: list[dict] | None = None
    kept_records: dict[str, tuple[str, dict]] | None = None  # filled by the stats pass for the report

    def parts(self, pieces: int) -> list[list[tuple[str, Path, int, int]]]:
        """The split files cut into `pieces` byte ranges on line boundaries, for parallel passes."""
        assert self.version_dir is not None
        files = [(split, self.version_dir / f"{split}.jsonl") for split in SPLITS]
        files = [(split, f, f.stat().st_size) for split, f in files if f.is_file()]
        total = sum(size for *_, size in files)
        target = max(1, total // pieces)
        out: list[list[tuple[str, Path, int, int]]] = [[]]
        used = 0
        for split, file, size in files:
            start = 0
            with open(file, "rb") as handle:
                while start < size:
                    end = min(size, start + max(1, target - used))
                    if end < size:
                        handle.seek(end)
                        handle.readline()
                        end = handle.tell()
                    out[-1].append((split, file, start, end))
                    used += end - start
                    start = end
                    if used >= target and len(out) < pieces:
                        out.append([])
                        used = 0
        return [part for part in out if part]

    def records(self) -> Iterator[tuple[str, dict]]:
        if self.version_dir is None:
            yield from (("source", r) for r in self._records or [])
            return
        for split in SPLITS:
            for row in _jsonl(self.version_dir / f"{split}.jsonl"):
                yield split, row

    def rejects(self) -> Iterator[dict]:
        if self.version_dir is None:
            yield from self._rejects or []
            return
        yield from _jsonl(self.version_dir / "rejects.jsonl")


def _jsonl(path: Path) -> Iterator[dict]:
    """Rows of a bundle jsonl file, streamed; a missing file (e.g. no val split) reads as empty."""
    if not path.is_file():
        return
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise StatsError(f"{path}:{number}: not valid JSON: {exc}") from None


def open_inputs(path: str | Path) -> Inputs:
    """A version dir, an output root (newest version) or any source file curatune reads."""
    path = Path(path)
    if not path.exists():
        raise StatsError(f"{path}: no such file or directory")
    if path.is_file() and path.name == "manifest.json":
        path = path.parent
    if path.is_dir():
        try:
            version_dir = resolve_bundle(path)
            manifest = load_manifest(version_dir)
        except BundleError as exc:
            raise StatsError(str(exc)) from None
        return Inputs(path=version_dir, manifest=manifest, version_dir=version_dir)
    try:
        from curate.sources import load_file
    except ImportError as exc:  # the reader belongs to another module; say what is missing
        raise StatsError(f"{path}: cannot read source files here ({exc})") from None
    try:
        records, rejects = load_file(path)
    except ValueError as exc:
        raise StatsError(str(exc)) from None
    return Inputs(path=path, _records=[r.to_json_dict() for r in records],
                  _rejects=[r.model_dump() for r in rejects])


# ---------------------------------------------------------------- small pure helpers

def conversation_text(record: dict) -> str:
    """Same text as schemas.record.Record.conversation_text, from a plain dict."""
    return "\n".join(m.get("content") or "" for m in record.get("messages") or [])


def summarise(record: dict) -> tuple:
    """What the figures need of one record: (kind, lang, source, id, characters, user turns,
    answer hash, question hash). The build computes it in its workers, so the report of a fresh
    bundle never parses the bundle again."""
    meta = record.get("meta") or {}
    messages = record.get("messages") or []
    return (meta.get("kind") or "general", meta.get("lang") or "unknown", meta.get("source") or "unknown",
            meta.get("id"), len(conversation_text(record)), sum(1 for m in messages if m.get("role") == "user"),
            content_hash(_last(messages, "assistant").strip()), content_hash(_last(messages, "user").strip()))


def summarise_record(record) -> tuple:
    """summarise() of a schemas Record object, without dumping it to a dict first."""
    messages = record.messages
    answer = next((m.content for m in reversed(messages) if m.role == "assistant"), "")
    question = next((m.content for m in reversed(messages) if m.role == "user"), "")
    meta = record.meta
    return (meta.kind, meta.lang or "unknown", meta.source, meta.id, len(record.conversation_text()),
            sum(1 for m in messages if m.role == "user"), content_hash(answer.strip()), content_hash(question.strip()))


def largest_clusters(clusters: Counter) -> list[tuple[str, int]]:
    """The near-duplicate clusters the report shows: most removed records first."""
    return sorted(clusters.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]


def content_hash(text: str) -> int:
    """64-bit hash, enough to tell 1M answers apart while storing 8 bytes each."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def percentiles(values: Iterable[int]) -> dict[str, int] | None:
    """Nearest-rank p0/p50/p90/p99/max: integers that are real record lengths, None when empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    out = {}
    for p in PERCENTILES:
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        out["max" if p == 100 else f"p{p}"] = ordered[rank - 1]
    return out


def histogram(values: Iterable[int], edges: list[int]) -> list[int]:
    """Counts per fixed bin [edges[i], edges[i+1]); the last bin takes everything above."""
    counts = [0] * len(edges)
    for value in values:
        counts[max(0, bisect.bisect_right(edges, value) - 1)] += 1
    return counts


def _sorted(counter: dict) -> dict:
    return {k: counter[k] for k in sorted(counter)}


def _snippet(text: str, limit: int = SNIPPET) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _last(messages: list[dict], role: str) -> str:
    for message in reversed(messages):
        if message.get("role") == role:
            return message.get("content") or ""
    return ""


# ---------------------------------------------------------------- the streaming pass

def _int_array() -> array:
    return array("q")


class _Pass:
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

    def merge(self, other: "_Pass") -> None:
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

    def pick(pred: Callable[[str, str], bool]) -> Iterator[int]:
        for (kind, split), values in groups.items():
            if pred(kind, split):
                yield from values

    return {
        "all": percentiles(pick(lambda k, s: True)),
        "by_kind": {k: percentiles(pick(lambda kk, s, k=k: kk == k)) for k in kinds},
        "by_split": {s: percentiles(pick(lambda k, ss, s=s: ss == s)) for s in splits},
        "histogram": {
            "edges": edges,
            "by_kind_split": {k: {s: histogram(groups[(k, s)], edges) for s in splits if (k, s) in groups}
                              for k in kinds},
        },
    }


def _rejects_figures(inputs: Inputs) -> dict[str, Any]:
    """Stage and reason counts from the manifest; near-dup clusters and line counts from rejects.jsonl."""
    file_counts: dict[str, Counter] = defaultdict(Counter)
    clusters: Counter = Counter()
    lines = 0
    for reject in inputs.rejects():
        lines += 1
        file_counts[reject.get("stage") or "unknown"][reject.get("reason") or "unknown"] += 1
        if reject.get("reason") == "near_duplicate" and reject.get("duplicate_of"):
            clusters[reject["duplicate_of"]] += 1
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
        "duplicates": {
            "exact": by_reason.get("exact_duplicate", 0),
            "near": by_reason.get("near_duplicate", 0),
            "near_clusters": len(clusters),
            "largest_clusters": [{"kept": kept, "removed": n} for kept, n in largest],
        },
    }


def _ratio_figures(inputs: Inputs, acc: _Pass) -> dict[str, Any]:
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


def _repeated_answers(inputs: Inputs, acc: _Pass) -> list[dict[str, Any]]:
    """Answers given to >= 5 different questions; texts fetched in a second pass only if any exist."""
    if not len(acc.answer_hashes):
        return []
    import polars as pl

    frame = pl.DataFrame({"a": pl.Series(acc.answer_hashes, dtype=pl.UInt64),
                          "q": pl.Series(acc.question_hashes, dtype=pl.UInt64)})
    flagged = (frame.group_by("a").agg(pl.col("q").n_unique().alias("questions"), pl.len().alias("records"))
               .filter(pl.col("questions") >= REPEATED_ANSWER_QUESTIONS))
    if flagged.is_empty():
        return []
    wanted = {row["a"]: row for row in flagged.iter_rows(named=True)}
    texts: dict[int, str] = {}
    for _, record in inputs.records():
        answer = _last(record.get("messages") or [], "assistant").strip()
        h = content_hash(answer)
        if h in wanted and h not in texts:
            texts[h] = _snippet(answer)
            if len(texts) == len(wanted):
                break
    found = [{"answer": texts.get(h, ""), "questions": row["questions"], "records": row["records"]}
             for h, row in wanted.items()]
    return sorted(found, key=lambda x: (-x["questions"], x["answer"]))[:TOP]


def _records_figures(acc: _Pass) -> dict[str, Any]:
    return {
        "total": sum(acc.by_split.values()),
        "by_split": _sorted(acc.by_split),
        "by_kind": _sorted(acc.by_kind),
        "by_language": _sorted(acc.by_lang),
        "by_kind_split": {k: _sorted(acc.by_kind_split[k]) for k in sorted(acc.by_kind_split)},
        "by_source": {s: {"kinds": sorted(acc.source_kinds[s]), "total": sum(acc.by_source[s].values()),
                          **_sorted(acc.by_source[s])} for s in sorted(acc.by_source)},
    }


def _turns_figures(acc: _Pass) -> dict[str, Any]:
    total = sum(acc.turns.values())
    return {
        "distribution": [[t, acc.turns[t]] for t in sorted(acc.turns)],
        "mean": round(sum(t * n for t, n in acc.turns.items()) / total, 3) if total else None,
        "max": max(acc.turns) if acc.turns else None,
    }


def _counts(inputs: Inputs, acc: _Pass) -> dict[str, int]:
    if inputs.manifest is not None:
        return _sorted(inputs.manifest.counts)
    kept = sum(acc.by_split.values())
    rejected = len(inputs._rejects or [])
    return {"kept": kept, "read": kept + rejected, "rejected": rejected}


# ---------------------------------------------------------------- warnings

def _warn(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def _repeated_warning(item: dict[str, Any]) -> dict[str, str]:
    return _warn("repeated_answer",
                 f"one answer is given to {item['questions']} different questions: {item['answer'][:80]!r}")


def warnings_for(stats: dict[str, Any]) -> list[dict[str, str]]:
    """Problems worth a look before training; each a stable code plus one readable line."""
    out = []
    ratio, records, ident = stats["ratio"], stats["records"], stats["identity"]
    if stats["source"] != "bundle":
        # one source file has one kind and no detected language yet: only the answer check applies
        return [_repeated_warning(item) for item in stats["repeated_answers"]]
    low, high = ratio["band"]
    achieved = ratio["achieved_general_per_domain"]
    if achieved is None:
        out.append(_warn("ratio_undefined", "no domain or identity records: the domain:general ratio is undefined"))
    elif not ratio["in_band"]:
        out.append(_warn("ratio_out_of_band",
                         f"domain:general is 1:{achieved:g}, outside the allowed 1:{low:g}..1:{high:g}"))
    if ident["records"] < MIN_IDENTITY:
        out.append(_warn("few_identity", f"only {ident['records']} identity records (want at least {MIN_IDENTITY})"))
    for lang in LANGUAGES:
        if not records["by_language"].get(lang):
            out.append(_warn("language_missing", f"no '{lang}' records at all"))
        elif ident["records"] and not ident["by_language"].get(lang):
            out.append(_warn("identity_language_missing", f"no '{lang}' identity records"))
    if records["by_split"].get("val") and not ident["by_split"].get("val"):
        out.append(_warn("val_without_identity", "the val split holds no identity record"))
    out += coverage_warnings(ident)
    out += [_repeated_warning(item) for item in stats["repeated_answers"]]
    counts = stats["counts"]
    if "rejects_file" in counts and counts["rejects_file"] != stats["rejects"]["lines"]:
        out.append(_warn("manifest_mismatch", f"manifest says {counts['rejects_file']} rows in rejects.jsonl, "
                                              f"the file holds {stats['rejects']['lines']}"))
    for split in SPLITS:
        if split in counts and counts[split] != records["by_split"].get(split, 0):
            out.append(_warn("manifest_mismatch", f"manifest says {counts[split]} {split} records, "
                                                  f"{split}.jsonl holds {records['by_split'].get(split, 0)}"))
    return out


# ---------------------------------------------------------------- entry point

PARALLEL_BYTES = 64 << 20  # below this a second process costs more than it saves


def _read_range(file: Path, start: int, end: int) -> Iterator[dict]:
    with open(file, "rb") as handle:
        handle.seek(start)
        while handle.tell() < end:
            line = handle.readline()
            if not line:
                break
            if line.strip():
                yield json.loads(line)


def _pass_over(part: list[tuple[str, Path, int, int]], terms: dict[str, str], wanted: frozenset[str]) -> _Pass:
    acc = _Pass(terms, None, wanted)
    for split, file, start, end in part:
        for record in _read_range(file, start, end):
            acc.add(split, record)
    return acc


def _records_pass(inputs: Inputs, terms: dict[str, str], count_tokens, wanted: frozenset[str]) -> _Pass:
    """One pass over train and val; big bundles are read by two processes, results merged in order."""
    import multiprocessing
    import os

    size = sum((inputs.version_dir / f"{s}.jsonl").stat().st_size for s in SPLITS
               if inputs.version_dir and (inputs.version_dir / f"{s}.jsonl").is_file())
    workers = min(2, os.cpu_count() or 1)
    if inputs.version_dir is None or count_tokens is not None or size < PARALLEL_BYTES or workers < 2:
        acc = _Pass(terms, count_tokens, wanted)
        for split, record in inputs.records():
            acc.add(split, record)
        acc.flush_tokens()
        return acc
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        parts = pool.starmap(_pass_over, [(part, terms, wanted) for part in inputs.parts(workers)])
    acc = parts[0]
    for part in parts[1:]:
        acc.merge(part)
    return acc


def collect_stats(path: Path, tokenizer: str | None = None) -> dict[str, Any]:
    """All figures for a bundle version, an output root (newest version) or one source file.

    The result is plain JSON data with sorted keys, identical for identical inputs.
    """
    return stats_for(open_inputs(path), tokenizer)


def new_pass(manifest: Manifest | None, wanted: frozenset[str]) -> _Pass:
    """An empty accumulator for a bundle, to feed with add_summary (what the build does)."""
    return _Pass(identity_terms(manifest.identity if manifest else None), None, wanted)


def stats_for(inputs: Inputs, tokenizer: str | None = None, records: _Pass | None = None) -> dict[str, Any]:
    """collect_stats on inputs already opened (the report reuses them for its examples).

    `records`, when given, is the pass over train and val already made (by the build)."""
    count_tokens = load_tokenizer(tokenizer) if tokenizer else None
    rejects = _rejects_figures(inputs)
    wanted = frozenset(c["kept"] for c in rejects["duplicates"]["largest_clusters"])
    if records is not None and (tokenizer or records.wanted_ids != wanted):
        records = None  # made for other figures: read the bundle instead
    manifest = inputs.manifest
    identity = manifest.identity if manifest else None
    acc = records or _records_pass(inputs, identity_terms(identity), count_tokens, wanted)
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
