"""The per-source language filter: keep a record when its main language is one the source allows.

A record is judged on a sample of all its user and assistant turns (curate.filters.language_text),
split by script and weighed by content:

- Han, kana and hangul settle zh/ja/ko by their proportions, with no model: a stray kana does not
  make Chinese Japanese, and Japanese or Korean with Han characters is not Chinese.
- Latin-script text goes to fastText (curate.filters.language_models). When fastText is unsure
  (its top language under SURE), the recipe's `unsure` setting decides: `model` (the default) asks
  a word-frequency model (curate.filters.language_words) whether the words are plainly one of
  fastText's candidates, and rejects the record as `language_unsure` if not; `reject` rejects it
  as `language_unsure` at once. Nothing is English just because it is plain ASCII.
- Other scripts (Cyrillic, Arabic, Thai...) go to fastText, which is sure of them.

The record is kept when its main language (the largest weight) is allowed, or when allowed
languages hold at least MIXED_SHARE of it: a Chinese instruction that quotes a longer English or
French passage is still a Chinese record. Code, URLs, numbers and quoted passages are taken out
first. Texts with fewer than `min_chars` characters of Latin script and nothing else ("hi", "ok")
are not judged and kept; CJK text is judged at any length ("嗨" is Chinese).

Most records are plainly in an allowed language; an accept-only quick check on the raw heads of the
turns settles those for about what the old first-80-characters check cost, and everything else
(every rejection included) gets the full judgement.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from curate.filters import language_models as models
from curate.filters.language_text import (
    WEIGHTS,
    Scripts,
    cjk_counts,
    cjk_language,
    head_sample,
    sample_turns,
)
from curate.filters.language_words import warm as warm_words
from curate.filters.language_words import word_evidence, word_language, words
from schemas.record import Record

SURE = 0.8  # fastText's probability for its top language at and above which it decides alone
MIXED_SHARE = 1 / 3  # allowed languages holding this share of a record keep it
LATIN_WORTH = 0.2  # Latin text under this fraction of the CJK or other-script weight is not classified
QUICK_SHARE = 0.6  # CJK share of a raw sample that settles it without the full judgement
QUICK_MIN_CHARS = 40  # ASCII samples shorter than this go to the full judgement
QUICK_SURE = 0.5  # fastText's probability at which the quick check accepts an allowed language (unsure: model)
SHORT_TEXT = 40  # Latin text shorter than this is checked with the word model even when fastText is sure
FIRST_CHARS = 200  # of Latin text in the first fastText call: enough for most records
LATIN_CHARS = 400  # in the second, when the first was unsure
UNSURE_MODES = ("model", "reject")


@dataclass(frozen=True)
class Guess:
    """One script group's language, its weight in the record, and whether a model was sure of it."""

    lang: str
    weight: float
    sure: bool
    how: str  # script, fasttext, langdetect, words or guess


@dataclass(slots=True)
class Judgement:
    """A record's main language (None: nothing to judge), with every language's share of it."""

    lang: str | None
    sure: bool = True
    shares: dict[str, float] = field(default_factory=dict)
    how: str = ""
    sure_shares: dict[str, float] | None = None  # the parts a model was sure of; None: all of them

    def sure_share(self, langs: list[str]) -> float:
        """The share of the record in these languages, counting only the parts a model was sure of."""
        shares = self.shares if self.sure_shares is None else self.sure_shares
        return sum(v for k, v in shares.items() if k in langs)


class Detector:
    """Language of texts and records with one backend, one min_chars and one way to settle doubt."""

    def __init__(self, backend: str = "fasttext", min_chars: int = 10, unsure: str = "model"):
        if backend not in ("fasttext", "langdetect"):
            raise ValueError(f"unknown language backend '{backend}' (use fasttext or langdetect)")
        if unsure not in UNSURE_MODES:
            raise ValueError(f"unknown unsure setting '{unsure}' (use model or reject)")
        self.backend, self.min_chars, self.unsure = backend, min_chars, unsure

    def _predict(self, text: str, k: int = 5) -> models.Prediction:
        predict = models.fasttext_predict() if self.backend == "fasttext" else models.langdetect_predict()
        try:
            return predict(text, k)
        except (TypeError, ValueError, UnicodeError):  # a lone surrogate from "\ud800" in JSON
            try:
                return predict(text.encode("utf-8", "replace").decode("utf-8"), k)
            except (TypeError, ValueError, UnicodeError):
                return []

    def latin(self, text: str, letters: int) -> Guess:
        """Latin-script text: fastText when it is sure (on the first FIRST_CHARS, then on up to
        LATIN_CHARS) and the text is not short; else the word model, when the words plainly belong
        to one of fastText's candidates (to any listed language, for short text, where fastText is
        often sure and wrong: "Write a tweet" is Dutch to it); else fastText's guess, unsure."""
        prediction = self._predict(text[:FIRST_CHARS])
        if len(text) > FIRST_CHARS and (not prediction or prediction[0][1] < SURE):
            prediction = self._predict(text[:LATIN_CHARS])
        if not prediction:
            return Guess("und", letters, False, "guess")
        top, prob = prediction[0]
        short = len(text) < SHORT_TEXT
        if prob >= SURE and (not short or self.unsure == "reject"):
            return Guess(top, letters, True, self.backend)
        if self.unsure == "model":
            lang = word_language(words(text))
            if lang and (short or any(lang == candidate for candidate, _ in prediction)):
                return Guess(lang, letters, True, "words")
        return Guess(top, letters, prob >= SURE, self.backend if prob >= SURE else "guess")

    def other(self, text: str, letters: int) -> Guess:
        prediction = self._predict(text)
        if not prediction:
            return Guess("und", letters, False, "guess")
        return Guess(prediction[0][0], letters, prediction[0][1] >= SURE / 2, self.backend)

    def quick(self, turns: list[str], expected: list[str] | None) -> Judgement | None:
        """Accept-only check on the raw heads of the turns. Most records are plainly in an allowed
        language (mostly Han, and Chinese is allowed; or 40+ characters to which fastText gives an
        allowed language at least even odds, or the word lists do), and for them this is the whole
        cost. Anything else, every rejection included, goes through the full judgement."""
        sample = head_sample(turns)
        if not sample:
            return None
        if not sample.isascii():
            han, kana, hangul, letters = cjk_counts(sample)
            if han or kana or hangul:
                cjk = han * WEIGHTS["han"] + kana * WEIGHTS["kana"] + hangul * WEIGHTS["hangul"]
                lang = cjk_language(han, kana, hangul)
                if cjk >= QUICK_SHARE * (cjk + letters - han - kana - hangul) and (not expected or lang in expected):
                    return Judgement(lang, True, {lang: 1.0}, "script")
                return None
        if len(sample) < max(self.min_chars, QUICK_MIN_CHARS):
            return None
        prediction = self._predict(sample, 1)
        if not prediction or (expected and prediction[0][0] not in expected):
            return None
        lang, how = prediction[0][0], self.backend
        if prediction[0][1] < (QUICK_SURE if self.unsure == "model" else SURE):
            if self.unsure == "reject" or not word_evidence(words(sample), lang):
                return None
            how = "words"
        return Judgement(lang, True, {lang: 1.0}, how)

    def judge(self, turns: list[str], expected: list[str] | None = None) -> Judgement:
        """The main language of a conversation's turns (user and assistant text). With `expected`,
        Latin text whose language is not expected is looked at again turn by turn."""
        return self.quick(turns, expected) or self.full(turns, expected)

    def full(self, turns: list[str], expected: list[str] | None = None) -> Judgement:
        """The judgement on a cleaned sample of every turn, script by script."""
        per_turn = [Scripts(s) for s in sample_turns(turns)]
        han = kana = hangul = latin = other = 0
        for s in per_turn:
            han, kana, hangul, latin, other = (han + s.han, kana + s.kana, hangul + s.hangul, latin + s.latin,
                                               other + s.other)
        guesses: list[Guess] = []
        cjk = han * WEIGHTS["han"] + kana * WEIGHTS["kana"] + hangul * WEIGHTS["hangul"]
        if cjk:
            guesses.append(Guess(cjk_language(han, kana, hangul), cjk, True, "script"))
        if other and other >= LATIN_WORTH * max(cjk, latin):
            guesses.append(self.other(" ".join(s.other_text for s in per_turn if s.other), other))
        # a few Latin letters beside much Chinese (a product name, a term) cannot change the answer;
        # min_chars is measured on the Latin text as classified (letters, spaces, punctuation)
        if latin and latin >= LATIN_WORTH * max(cjk, other) and \
                sum(len(s.latin_text) for s in per_turn if s.latin) >= self.min_chars:
            guesses.extend(self._latin_guesses(per_turn, latin, expected))
        if not guesses:
            return Judgement(None)
        if len(guesses) == 1:
            g = guesses[0]
            return Judgement(g.lang, g.sure, {g.lang: 1.0}, g.how, None if g.sure else {})
        return _combine(guesses)

    def _latin_guesses(self, per_turn: list, latin: int, expected: list[str] | None) -> list[Guess]:
        """One guess for all the Latin text; turn by turn when that one is unsure or not expected
        and there are several turns (an English question about a French passage)."""
        whole = self.latin(" ".join(s.latin_text for s in per_turn if s.latin), latin)
        turns = [s for s in per_turn if s.latin and len(s.latin_text) >= self.min_chars]
        if len(turns) < 2 or (whole.sure and (not expected or whole.lang in expected)):
            return [whole]
        return [self.latin(s.latin_text, s.latin) for s in turns]


def _combine(guesses: list[Guess]) -> Judgement:
    """One judgement from several guesses: each language's share of the weight, the main language
    the largest share (sure when most of it was judged surely), ties to the sure and then the name."""
    total = sum(g.weight for g in guesses) or 1.0
    shares: dict[str, float] = {}
    sure: dict[str, float] = {}
    how: dict[str, str] = {}
    for g in guesses:
        shares[g.lang] = shares.get(g.lang, 0.0) + g.weight / total
        sure[g.lang] = sure.get(g.lang, 0.0) + (g.weight / total if g.sure else 0.0)
        how.setdefault(g.lang, g.how)
    main = max(shares, key=lambda lang: (shares[lang], sure[lang], lang))
    return Judgement(main, sure[main] >= shares[main] / 2, {k: round(v, 4) for k, v in sorted(shares.items())},
                     how[main], {k: round(v, 4) for k, v in sorted(sure.items())})


def record_turns(record: Record) -> list[str]:
    """What language is judged on: the user and assistant turns, not the system prompt or tools."""
    return [m.content for m in record.messages if m.role in ("user", "assistant")]


@dataclass
class _Cache:
    detectors: dict[tuple, Detector] = field(default_factory=dict)

    def get(self, backend: str, min_chars: int, unsure: str = "model") -> Detector:
        key = (backend, min_chars, unsure)
        if key not in self.detectors:
            self.detectors[key] = Detector(*key)
        return self.detectors[key]


_DETECTORS = _Cache()


def detect_language(text: str, backend: str = "fasttext", min_chars: int = 10) -> str | None:
    """ISO 639-1 code of the text's main language, or None when it is too short to judge."""
    if not isinstance(text, str):
        return None
    return _DETECTORS.get(backend, min_chars).judge([text]).lang


def verdict(judgement: Judgement, expected: list[str] | None) -> tuple[str, str] | None:
    """(reason, message) when a record with this judgement is not wanted, else None."""
    if not expected or judgement.lang is None:
        return None
    wanted = "/".join(expected)
    if judgement.sure and judgement.lang in expected:
        return None
    if judgement.sure_share(expected) >= MIXED_SHARE:
        return None
    if not judgement.sure:
        return ("language_unsure", f"cannot tell the language (best guess '{judgement.lang}'), expected {wanted}")
    return ("wrong_language", f"detected '{judgement.lang}' ({_shares(judgement)}), expected {wanted}")


def _shares(judgement: Judgement) -> str:
    return ", ".join(f"{k} {v:.0%}" for k, v in sorted(judgement.shares.items(), key=lambda kv: -kv[1])[:3])


@lru_cache(maxsize=256)
def _expected(allowed: tuple[str, ...]) -> list[str]:
    return [models.normalise(x) for x in allowed]


class LanguageFilter:
    """Keeps records in the languages allowed for their source; identity records in their own."""

    name = "language"

    def __init__(self, backend: str = "fasttext", min_chars: int = 10, unsure: str = "model"):
        self.detector = _DETECTORS.get(backend, min_chars, unsure)

    def judge(self, record: Record, expected: list[str] | None = None) -> Judgement:
        return self.detector.judge(record_turns(record), expected)

    def warm(self) -> None:
        """Load the backend and, when unsure text is settled by them, the word lists now."""
        self.detector._predict("warm up", 1)
        if self.detector.unsure == "model":
            warm_words()

    def decide(self, turns: list[str], allowed: list[str] | None) -> tuple[str | None, tuple[str, str] | None]:
        """(main language, verdict) for a conversation's user and assistant turns."""
        expected = _expected(tuple(allowed)) if allowed else None
        judgement = self.detector.judge(turns, expected)
        return judgement.lang, verdict(judgement, expected)

    def __call__(self, record: Record, allowed: list[str] | None) -> tuple[str | None, tuple[str, str] | None]:
        """(detected language, verdict); the detected language is stored in the record's meta."""
        expected = [record.meta.lang] if record.meta.kind == "identity" and record.meta.lang else allowed
        return self.decide(record_turns(record), expected)
