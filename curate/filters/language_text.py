"""What the language filter reads of a record: a bounded sample of every turn, with code, URLs,
numbers and placeholders taken out, split by script.

A conversation is judged on all its turns (a Chinese question with a long English passage in its
first 80 characters is still a Chinese record), but on a bounded sample of each, so a 16k-character
record costs about what a 600-character one does. Scripts are counted with weights that put them on
one scale (a Han character says about as much as three Latin letters), so "mostly Chinese" means
mostly by content, not by character count.
"""
from __future__ import annotations

import re

SAMPLE_CHARS = 240  # per record, shared out over its turns
MIN_TURN_CHARS = 60  # per turn, however many turns there are
MAX_TURNS = 8  # turns sampled, spread over the conversation
QUICK_CHARS = 80  # raw characters the quick check reads, shared out over the turns
QUICK_TURN_CHARS = 32  # per turn in the quick check
# letters' worth of content per character, by script (a letter of any other script counts 1)
WEIGHTS = {"han": 3.0, "kana": 2.0, "hangul": 2.5}

_CODE_BLOCK = re.compile(r"```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)", re.DOTALL)
# a line of code outside a fenced block: a definition, a block opener ending in ':', an assignment,
# a keyword with a call or assignment after it, or a statement ending in ; { } that holds a call
_CODE_LINE = re.compile(
    r"^[ \t]*(?:(?:def|class|fn|func)[ \t]+\w+.*"
    r"|(?:import|from)[ \t]+[\w.]+(?:[ \t]+(?:import|as)\b.*)?|return(?:[ \t]+[\w.]+)?"
    r"|(?:for|while|if|elif|else|try|except|with)\b.*:"
    r"|(?:return|print|var|let|const|int|void|float|double|bool|public|private|static|#include|#define)\b.*[(=;*+/<>%].*"
    r"|[\w.\[\]'\"]+[ \t]*(?:[-+*/%]?=|==|=>|->)[ \t]*\S.*"
    r"|.*[(=].*(?:[;{}]|\);?)|[{}]+;?)[ \t]*$", re.MULTILINE)
# a run of printable ASCII (so Chinese is never touched) with a digit, a symbol of code or URLs, or a
# capital inside a word: numbers, identifiers, URLs, e-mails, markup, ChatGPT, iPhone; scanned once
_NOISE = re.compile(r"(?<![!-~])(?=[!-~]*?(?:[\d_/@`{}<>=()\[\]\\#$%^&*+|~]|[a-z][A-Z]))[!-~]+")
_CODE_HINT = re.compile(r"[=;{}]|\)\s*:|^[ \t]*(?:import|from|return|def|class|fn|func|for|while|if|elif|else|try|"
                        r"except|with)\b", re.MULTILINE)
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")
_KANA = re.compile(r"[\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9d]")
_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f\u1e00-\u1eff]")
_CJK_ANY = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\u1100-\u11ff"
                      r"\u3130-\u318f\uff66-\uff9d\U00020000-\U0002fa1f]+")
_NOT_LATIN_LETTER = re.compile(r"[^\sA-Za-z\u00c0-\u024f\u1e00-\u1eff'’.,;:!?\"-]+")
_LATIN_RUN = re.compile(r"[A-Za-z\u00c0-\u024f\u1e00-\u1eff'’.,;:!?\"\s-]+")
_ANY_LETTER = re.compile(r"[^\W\d_]")
_FOUR_LETTERS = re.compile(r"[^\W\d_](?:[\W\d_]*[^\W\d_]){3}")
_ASCII_LETTERS = str.maketrans("", "", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_OTHER_LETTER = re.compile(r"[^\W\d_A-Za-z\u00c0-\u024f\u1e00-\u1eff\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf"
                           r"\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\u1100-\u11ff\u3130-\u318f\uff66-\uff9d"
                           r"\U00020000-\U0002fa1f]")
# quoted passages: text in quotation marks is someone else's words, not the record's language
_QUOTED = re.compile(r"“[^”]{1,400}”|\"[^\"\n]{1,400}\"|「[^」]{1,400}」|『[^』]{1,400}』|«[^»]{1,400}»|‘[^’]{1,400}’"
                     r"|\([^()]{1,200}\)|（[^（）]{1,200}）")  # and glosses in brackets: 宇多田光 (Utada Hikaru)


def clean(text: str) -> str:
    """The text without what says nothing about its language: code, URLs, numbers, identifiers.
    Each pattern runs only where a character it needs is present (most prose has none)."""
    if "```" in text or "~~~" in text:
        text = _CODE_BLOCK.sub(" ", text)
    if _CODE_HINT.search(text):
        text = _CODE_LINE.sub(" ", text)
    text = _NOISE.sub(" ", text)
    return " ".join(text.split())


def _looks_like_data(text: str) -> bool:
    """A turn that is a JSON object or list (a tool call, a tool's answer) is data, not language."""
    head, tail = text[:64].lstrip()[:1], text[-64:].rstrip()[-1:]  # never copies a long turn
    return bool(head) and head in "{[" and bool(tail) and tail in "}]" and len(text.strip()) > 1


def sample_turns(turns: list[str], budget: int = SAMPLE_CHARS) -> list[str]:
    """Up to MAX_TURNS turns spread over the conversation, each its share of the budget (head and
    middle of a long turn), without quoted passages and cleaned; data turns skipped."""
    turns = [t for t in turns if t and not _looks_like_data(t)]
    if len(turns) > MAX_TURNS:
        step = (len(turns) - 1) / (MAX_TURNS - 1)
        turns = [turns[round(i * step)] for i in range(MAX_TURNS)]
    if not turns:
        return []
    share = max(MIN_TURN_CHARS, budget // len(turns))
    out = []
    for text in turns:
        if len(text) > 2 * share:
            middle = len(text) // 2
            text = text[:share // 2] + "\n" + text[middle:middle + share // 2]
        out.append(clean(without_quotes(text[:share + share // 4])))
    return out


def head_sample(turns: list[str], budget: int = QUICK_CHARS) -> str:
    """The raw heads of up to MAX_TURNS turns, on one line: what the quick check reads."""
    turns = [t for t in turns if t and not _looks_like_data(t)][:MAX_TURNS]
    if not turns:
        return ""
    share = max(QUICK_TURN_CHARS, budget // len(turns))
    return " ".join(t[:share] for t in turns).replace("\n", " ")


def without_quotes(text: str) -> str:
    """The text with quoted passages taken out, when what is left still has something to judge."""
    rest = _QUOTED.sub(" ", text)
    return rest if rest is not text and _FOUR_LETTERS.search(rest) else text


class Scripts:
    """Characters of each script in one cleaned sample; its Latin and other-script parts, made on
    first use, are classified apart (a French passage in a Chinese instruction is judged as French)."""

    __slots__ = ("_latin_text", "_other_text", "han", "hangul", "kana", "latin", "other", "text")

    def __init__(self, text: str):
        self.text = text
        self._latin_text: str | None = None
        self._other_text: str | None = None
        if text.isascii():
            self.han = self.kana = self.hangul = self.other = 0
            self.latin = len(text) - len(text.translate(_ASCII_LETTERS))
            self._latin_text, self._other_text = text, ""
        else:
            self.han = len(_HAN.findall(text))
            self.kana = len(_KANA.findall(text))
            self.hangul = len(_HANGUL.findall(text))
            self.latin = len(_LATIN.findall(text))
            self.other = len(_OTHER_LETTER.findall(text))

    @property
    def cjk(self) -> float:
        return self.han * WEIGHTS["han"] + self.kana * WEIGHTS["kana"] + self.hangul * WEIGHTS["hangul"]

    @property
    def latin_text(self) -> str:
        if self._latin_text is None:
            self._latin_text = " ".join(_NOT_LATIN_LETTER.sub(" ", self.text).split()) if self.latin else ""
        return self._latin_text

    @property
    def other_text(self) -> str:
        if self._other_text is None:
            rest = _CJK_ANY.sub(" ", self.text)
            self._other_text = " ".join(_LATIN_RUN.sub(" ", rest).split()) if self.other else ""
        return self._other_text


def cjk_counts(text: str) -> tuple[int, int, int, int]:
    """Han, kana and hangul characters and letters of any script: the quick check's counts (kana
    and hangul are counted only where there are some, as they seldom are in Chinese)."""
    rest = _CJK_ANY.sub("", text)
    cjk = len(text) - len(rest)
    letters = len(_ANY_LETTER.findall(rest)) + cjk
    if not cjk:
        return 0, 0, 0, letters
    kana = len(_KANA.findall(text)) if _KANA.search(text) else 0
    hangul = len(_HANGUL.findall(text)) if _HANGUL.search(text) else 0
    return cjk - kana - hangul, kana, hangul, letters


def cjk_language(han: int, kana: int, hangul: int) -> str:
    """zh, ja or ko from how much kana and hangul there is beside the Han characters: Japanese
    writes its grammar in kana and Korean in hangul, so a stray kana in Chinese text is not enough."""
    if hangul and hangul * WEIGHTS["hangul"] >= 0.3 * (han * WEIGHTS["han"] + kana * WEIGHTS["kana"] + hangul):
        return "ko"
    if kana and kana >= 0.12 * (han + kana):
        return "ja"
    return "zh"
