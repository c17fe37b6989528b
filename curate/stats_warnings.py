"""The warnings `curate stats` and the report put first: problems worth a look before training,
each a stable code (for scripts and tests) plus one readable line.
"""
from __future__ import annotations

from typing import Any

from curate.identity_coverage import coverage_warnings
from curate.stats_inputs import SPLITS

MIN_IDENTITY = 50
LANGUAGES = ("en", "zh")


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
