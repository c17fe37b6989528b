"""Word frequencies as the second opinion on Latin-script text that fastText is unsure of.

fastText guesses on short text ("a blog post" is Spanish to it half the time). A few words that are
mostly words of a language, and likelier in it than in each of 26 other Latin-script languages,
settle it in microseconds: a unigram model over the small lists of the `wordfreq` package, each cut
to its TOP_WORDS most common words so that none is favoured (a word in none of them counts the same
for all). The lists load on first use (about half a second) into about 25 MB of numpy arrays.
"""
from __future__ import annotations

import math
import re
from functools import cache, lru_cache

import numpy as np

# Latin-script languages with a wordfreq list (wordfreq's own codes: fil is Tagalog, sh Serbo-Croatian)
LISTS = ("ca", "cs", "da", "de", "en", "es", "fi", "fil", "fr", "hu", "id", "is", "it", "lt", "lv", "ms", "nb",
         "nl", "pl", "pt", "ro", "sh", "sk", "sl", "sv", "tr", "vi")
CODES = {"tl": "fil", "hr": "sh", "sr": "sh", "bs": "sh"}  # filter code -> wordfreq code
FILTER_CODE = {"fil": "tl", "sh": "hr"}
TOP_WORDS = 10000
MISSING = math.log(1e-7)  # log frequency of a word outside a language's top words
MIN_COVER = 0.6  # share of the words that must be in the language's list at all
WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")


def words(text: str, limit: int = 40) -> list[str]:
    """Lower-case words, leaving out capitalised ones after the first (names say nothing of the
    language: "Selena Gomez", "Tongyi Qianwen") unless nothing else is left."""
    found = WORD.findall(text.replace("’", "'"))[:limit]
    common = [w for i, w in enumerate(found) if i == 0 or not w[0].isupper()]
    return [w.lower() for w in (common or found)]


def _buckets(lang: str) -> list[list[str]]:
    """A wordfreq list, read straight from its file: wordfreq's own reader would keep every list
    it reads for the life of the process (tens of MB per worker)."""
    try:
        from wordfreq import available_languages, read_cBpack
    except ImportError:  # the filter still works, with fastText alone deciding
        return []
    path = available_languages("small").get(lang)
    return read_cBpack(path) if path else []


def _hashes(words: list[str]) -> np.ndarray:
    return np.fromiter((hash(w) for w in words), dtype=np.int64, count=len(words))


def _find(keys: np.ndarray, tokens: list[str]) -> np.ndarray:
    """Row of each token in the sorted `keys` (hashes: words are not kept), -1 where absent."""
    wanted = _hashes(tokens)
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return np.where(keys[at] == wanted, at, -1) if len(keys) else np.full(len(tokens), -1)


@cache
def vocabulary(lang: str) -> np.ndarray:
    """Sorted hashes of every word of a language's small list (the coverage check)."""
    return np.unique(_hashes([word for bucket in _buckets(lang) for word in bucket]))


@lru_cache(maxsize=1)
def _table() -> tuple[np.ndarray, np.ndarray]:
    """Sorted word hashes, and per word a row of log frequencies, a column per language in LISTS
    (MISSING where a list's top words do not hold it). About 20 MB."""
    hashes, columns, logs = [], [], []
    for column, lang in enumerate(LISTS):
        words: list[str] = []
        for index, bucket in enumerate(_buckets(lang)):
            words += bucket
            logs.append(np.full(len(bucket), -index / 100 * math.log(10), dtype=np.float32))  # centibels
            if len(words) >= TOP_WORDS:
                break
        hashes.append(_hashes(words))
        columns.append(np.full(len(words), column, dtype=np.int16))
    if not hashes:
        return np.zeros(0, dtype=np.int64), np.zeros((0, len(LISTS)), dtype=np.float32)
    keys, rows = np.unique(np.concatenate(hashes), return_inverse=True)
    matrix = np.full((len(keys), len(LISTS)), MISSING, dtype=np.float32)
    matrix[rows, np.concatenate(columns)] = np.concatenate(logs)
    return keys, matrix


def word_language(tokens: list[str]) -> str | None:
    """The list whose language the words are likeliest in, when they are mostly its words: a
    filter code (tl, hr for wordfreq's fil, sh), or None when no list fits."""
    if not tokens:
        return None
    keys, matrix = _table()
    if not len(keys):
        return None
    rows = _find(keys, tokens)
    found = rows[rows >= 0]
    scores = matrix[found].sum(axis=0) + MISSING * (len(tokens) - len(found))
    best = int(np.argmax(scores))
    if (scores == scores[best]).sum() > 1:  # a tie: the words do not tell
        return None
    code = LISTS[best]
    if (_find(vocabulary(code), tokens) >= 0).sum() < MIN_COVER * len(tokens):
        return None
    return FILTER_CODE.get(code, code)


def word_evidence(tokens: list[str], lang: str) -> bool:
    """True when the words are mostly words of `lang` and likelier in it than in any other list."""
    return CODES.get(lang, lang) in LISTS and word_language(tokens) == lang


def warm() -> None:
    """Load the lists now (a benchmark's timing, a worker's start) rather than on first use."""
    _table()
    vocabulary("en")
