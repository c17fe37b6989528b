"""Identity coverage: do the identity records teach the model who it is, in every language?

A LoRA run learns what the identity answers say, so the figures that predict trouble are about
those answers: how many state the name and the author, per language, and which answer a name
question ("who are you?") without the name, worst of all with the author's name instead (the
model then answers "who are you" with its maker's name). Counted in the stats pass, a few
integers and at most a handful of examples per record kind; never imports curate.stats.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from schemas.identity_intent import asked_needs, spelling_pattern

MIN_NAME_SHARE = 0.5  # below this, in some language, the model may not learn its name there
MIN_AUTHOR_SHARE = 0.3
MIN_BALANCE = 0.5  # a language with fewer than half the identity records of the largest one
MIN_SHARE_RECORDS = 10  # shares of fewer records are noise; `few_identity` flags such tiny sets
WATCHED_LANGUAGES = ("en", "zh")  # stats already warns when one of these has no identity record
EXAMPLES = 5
TOP = 10
SNIPPET = 200


def identity_terms(identity: dict[str, Any] | None) -> dict[str, str]:
    """"name.zh" -> "小格", ... from the manifest's identity settings (empty when there are none)."""
    terms = {}
    for part in ("name", "author"):
        for lang, text in sorted(((identity or {}).get(part) or {}).items()):
            terms[f"{part}.{lang}"] = text
    return terms


def _pairs(messages: list[dict]) -> list[tuple[str, str]]:
    """(question, answer) per user turn, the answer being the assistant turns that follow it."""
    pairs: list[tuple[str, str]] = []
    for message in messages:
        role, content = message.get("role"), message.get("content") or ""
        if role == "user":
            pairs.append((content, ""))
        elif role == "assistant" and pairs:
            pairs[-1] = (pairs[-1][0], (pairs[-1][1] + "\n" + content).strip())
    return pairs


def _snippet(text: str) -> str:
    return text if len(text) <= SNIPPET else text[: SNIPPET - 1] + "…"


@dataclass
class Flagged:
    """Records caught by one check: how many, and the first few in bundle order (train, then val)."""

    records: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    def add(self, rid: str | None, question: str, answer: str) -> None:
        self.records += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append({"id": rid, "question": _snippet(question), "answer": _snippet(answer)})

    def merge(self, other: "Flagged") -> None:
        """Fold in a later part of the same files, so the examples stay the first ones."""
        self.records += other.records
        self.examples = (self.examples + other.examples)[:EXAMPLES]

    def figures(self) -> dict[str, Any]:
        return {"records": self.records, "examples": list(self.examples)}


class IdentityTally:
    """The identity part of one stats pass: counters per language, split and term, plus examples."""

    def __init__(self, terms: dict[str, str]):
        self.terms = terms  # "name.zh" -> rendered text
        names = [t for k, t in terms.items() if k.startswith("name.")]
        authors = [t for k, t in terms.items() if k.startswith("author.")]
        self.name_re = spelling_pattern(names)
        self.author_re = spelling_pattern(authors)
        # an author spelling that holds the name ("Grace Labs") must not count as stating the name
        self.author_holding_name = spelling_pattern([a for a in authors if self.name_re and self.name_re.search(a)])
        self.by_lang: Counter = Counter()
        self.by_split: Counter = Counter()
        self.terms_hit: Counter = Counter()
        self.name_stated: Counter = Counter()
        self.author_stated: Counter = Counter()
        self.answers: Counter = Counter()
        self.empty = 0
        self.name_not_stated = Flagged()
        self.author_not_name = Flagged()

    def states_name(self, text: str) -> bool:
        if self.name_re is None:
            return False
        if self.author_holding_name is not None:
            text = self.author_holding_name.sub(" ", text)
        return bool(self.name_re.search(text))

    def states_author(self, text: str) -> bool:
        return bool(self.author_re and self.author_re.search(text))

    def add(self, split: str, lang: str, rid: str | None, messages: list[dict]) -> None:
        """Count one identity record (its messages as dicts)."""
        said = [m.get("content") or "" for m in messages if m.get("role") == "assistant"]
        text = "\n".join(said)
        self.by_lang[lang] += 1
        self.by_split[split] += 1
        folded = text.casefold()
        for key, term in self.terms.items():
            if term and term.casefold() in folded:
                self.terms_hit[key] += 1
        if any(not s.strip() for s in said):
            self.empty += 1
        self.answers[(said[-1] if said else "").strip()] += 1
        self.name_stated[lang] += self.states_name(text)
        self.author_stated[lang] += self.states_author(text)
        self._check_name_questions(rid, messages)

    def _check_name_questions(self, rid: str | None, messages: list[dict]) -> None:
        if self.name_re is None:
            return
        missed = [(q, a) for q, a in _pairs(messages) if "name" in asked_needs(q) and not self.states_name(a)]
        if missed:
            self.name_not_stated.add(rid, *missed[0])
        author_only = [(q, a) for q, a in missed if self.states_author(a)]
        if author_only:
            self.author_not_name.add(rid, *author_only[0])

    def merge(self, other: "IdentityTally") -> None:
        """Fold in the tally of a later part of the same files."""
        for mine, theirs in ((self.by_lang, other.by_lang), (self.by_split, other.by_split),
                             (self.terms_hit, other.terms_hit), (self.name_stated, other.name_stated),
                             (self.author_stated, other.author_stated), (self.answers, other.answers)):
            mine.update(theirs)
        self.empty += other.empty
        self.name_not_stated.merge(other.name_not_stated)
        self.author_not_name.merge(other.author_not_name)


# ---------------------------------------------------------------- figures

def _sorted(counter: dict) -> dict:
    return {k: counter[k] for k in sorted(counter)}


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _stating(tally: IdentityTally) -> dict[str, dict[str, Any]]:
    """Per language: identity records, and how many (and what share) state the name / the author."""
    out = {}
    for lang in sorted(tally.by_lang):
        n = tally.by_lang[lang]
        name = tally.name_stated[lang] if tally.name_re else None
        author = tally.author_stated[lang] if tally.author_re else None
        out[lang] = {"records": n, "name": name, "author": author,
                     "name_share": None if name is None else _share(name, n),
                     "author_share": None if author is None else _share(author, n)}
    return out


def identity_figures(identity: dict[str, Any] | None, tally: IdentityTally) -> dict[str, Any]:
    """The `identity` block of the stats: settings from the manifest, coverage from the pass."""
    ident = identity or {}
    repeated = sorted(((a, n) for a, n in tally.answers.items() if n > 1), key=lambda x: (-x[1], x[0]))
    return {
        "configured": bool(ident),
        "name": _sorted(ident.get("name") or {}),
        "author": _sorted(ident.get("author") or {}),
        "languages": sorted(ident.get("languages") or []),
        "system": ident.get("system"),
        "templates": ident.get("templates"),
        "rendered": ident.get("rendered"),
        "records": sum(tally.by_lang.values()),
        "by_language": _sorted(tally.by_lang),
        "by_split": _sorted(tally.by_split),
        "carrying": {key: tally.terms_hit.get(key, 0) for key in sorted(tally.terms)},
        "stating": _stating(tally),
        "name_asked_not_stated": tally.name_not_stated.figures(),
        "name_asked_author_only": tally.author_not_name.figures(),
        "empty_answers": tally.empty,
        "repeated_answers": {
            "distinct": len(repeated),
            "records": sum(n for _, n in repeated),
            "top": [{"answer": _snippet(a), "records": n} for a, n in repeated[:TOP]],
        },
    }


# ---------------------------------------------------------------- warnings

def _warn(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def _imbalance(ident: dict[str, Any]) -> list[dict[str, str]]:
    """Languages with fewer than half the identity records of the largest: the model learns its
    identity there from too few examples. A watched language with none is warned about already."""
    counts = dict(ident["by_language"])
    for lang in ident["languages"]:
        counts.setdefault(lang, 0)
    counts = {lang: n for lang, n in counts.items() if n or lang not in WATCHED_LANGUAGES}
    if len(counts) < 2 or not ident["records"]:
        return []
    top_lang, top = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [_warn("identity_language_imbalance",
                  f"'{lang}' has {n} identity records, fewer than half of '{top_lang}' ({top})")
            for lang, n in sorted(counts.items()) if n < top * MIN_BALANCE]


def _few_stating(ident: dict[str, Any]) -> list[dict[str, str]]:
    """Languages where too few identity answers state the name (or the author) for it to be learnt."""
    out = []
    for part, least, code in (("name", MIN_NAME_SHARE, "few_name_answers"),
                              ("author", MIN_AUTHOR_SHARE, "few_author_answers")):
        spellings = " / ".join(sorted(set(ident[part].values())))
        for lang, row in ident["stating"].items():
            share = row[f"{part}_share"]
            if share is not None and row["records"] >= MIN_SHARE_RECORDS and share < least:
                out.append(_warn(code, f"only {row[part]} of {row['records']} '{lang}' identity answers "
                                       f"({share:.0%}) state the {part} ({spellings}); want at least {least:.0%}"))
    return out


def coverage_warnings(ident: dict[str, Any]) -> list[dict[str, str]]:
    """Identity-coverage problems worth fixing before training, from the `identity` figures."""
    out = _imbalance(ident) + _few_stating(ident)
    flagged = ident["name_asked_author_only"]
    if flagged["records"]:
        out.append(_warn("name_question_author_answer",
                         f"{flagged['records']} identity records answer a name question with the author but not "
                         f"the name (first: {flagged['examples'][0]['id']}); the model may give its maker's "
                         f"name when asked who it is"))
    return out
