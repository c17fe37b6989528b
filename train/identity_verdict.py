"""Strict identity scoring: is an answer right about who the model is and who made it?

"Name or author mentioned" counts "我是唐寅" (the author's name taken as its own) as a hit. Here an
answer is **correct** only when it
- states what its question needs (the new name, the author, or both), in any language's spelling;
- is in the question's language (a zh question answered in Chinese, an en one in English);
- attributes nothing wrongly: it does not call itself by the author's name ("我是唐寅", "I'm Tang Yin",
  "my name is Tang Yin"), deny its own name ("不是小格", "I'm not Grace"), or claim a known original
  maker or model as its own ("developed by Google", "我是通义千问"); mentions under a negation
  ("not made by Google") are not claims.
A "swap" is the identity taken the wrong way round: claiming the author's name or denying its own.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from schemas.identity_intent import MAKER_RES, Need, spelling_pattern

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
# Words after "我是<X>" / "I'm <X>" that make X the maker rather than the speaker ("我是唐寅开发的").
_ZH_NOT_SELF = r"(?!的|开发|打造|创造|创建|训练|设计|编写|制作|研发|团队|公司|所|做|写|推出|发布|研制|构建|搭建|出品|创作|精心|一手|给|起|取|为我)"
_ZH_SELF = r"(?:我是|我叫|我的名字是|我的名字叫|名字叫|名字是|叫我|本人是|我就是)\s*"
_EN_SELF = r"\b(?:i\s+am|i'm|i’m|im|my\s+name\s+is|call\s+me|i\s+am\s+called|i'm\s+called|this\s+is|it's|it’s)\s+"
_EN_NOT_SELF = r"(?!['’]s|\s+(?:team|company|lab|group)\b)"
_ZH_NEGATION = re.compile(r"(?:不是|并非|并不是|而非|不叫|没有|不由|非)\s*$")
_EN_NEGATION = re.compile(r"(?:\bnot|n['’]t|\bnever)\b[\w\s,]{0,20}$", re.IGNORECASE)
_ZH_MADE = r"(?:开发|训练|打造|创造|创建|设计|研发|制作|编写|推出|发布)"
_EN_MADE = r"(?:developed|created|made|built|trained|designed|programmed|owned|produced|released)"


@dataclass(frozen=True)
class Terms:
    """The identity's spellings: {"zh": "小格", "en": "Grace"} for the name, the same for the author."""

    name: dict[str, str]
    author: dict[str, str]

    def names(self) -> list[str]:
        return sorted({v for v in self.name.values() if v}, key=len, reverse=True)

    def authors(self) -> list[str]:
        return sorted({v for v in self.author.values() if v}, key=len, reverse=True)


@dataclass
class Verdict:
    correct: bool
    needs: list[Need]
    has_name: bool
    has_author: bool
    language_ok: bool
    wrong: list[str] = field(default_factory=list)  # claims_author, denies_name, claims_maker:<X>

    @property
    def swap(self) -> bool:
        return "claims_author" in self.wrong or "denies_name" in self.wrong

    @property
    def lenient_hit(self) -> bool:
        return self.has_name or self.has_author

    def to_json(self) -> dict:
        return {"correct": self.correct, "needs": self.needs, "has_name": self.has_name,
                "has_author": self.has_author, "language_ok": self.language_ok, "wrong": self.wrong}


def mentions(text: str, terms: list[str]) -> bool:
    """Whether any spelling occurs, by the rule `curate stats` uses (whole words for Latin names)."""
    pattern = _spellings(tuple(terms))
    return bool(pattern and pattern.search(text))


@functools.lru_cache(maxsize=64)
def _spellings(terms: tuple[str, ...]) -> re.Pattern[str] | None:
    return spelling_pattern(list(terms))


def _alt(terms: list[str]) -> str:
    return "|".join(re.escape(t) for t in terms)


def in_language(answer: str, lang: str) -> bool:
    """A zh answer holds Chinese; an en answer is mostly Latin letters (names in Han allowed)."""
    han, latin = len(_CJK.findall(answer)), len(_LATIN.findall(answer))
    if lang == "zh":
        return han > 0
    return latin > 0 and han <= latin * 0.25


def claims_author(answer: str, terms: Terms, needs_name: bool) -> bool:
    authors = _alt(terms.authors())
    if re.search(rf"{_ZH_SELF}(?:{authors}){_ZH_NOT_SELF}", answer, re.IGNORECASE):
        return True
    if re.search(rf"{_EN_SELF}(?:{authors})\b{_EN_NOT_SELF}", answer, re.IGNORECASE):
        return True
    if re.search(rf"(?:{authors})\s*(?:是我的名字|is\s+my\s+name)", answer, re.IGNORECASE):
        return True
    # "Tang Yin is an AI assistant developed by ...": the author described as the assistant itself
    if re.search(rf"(?:{authors})\s*(?:is\s+(?:an?\s+|the\s+)?(?:ai|assistant|language\s+model|chatbot)\b"
                 rf"(?!\s*(?:researcher|engineer|developer|company|lab|team|expert|scientist))|"
                 rf"是(?:一个|一款|一名)?(?:AI|人工智能|智能助手|助手|语言模型)(?!研究|工程|开发者|专家|公司|团队))",
                 answer, re.IGNORECASE):
        return True
    names = _alt(terms.names())  # "Grace is Tang Yin", "小格是唐寅": the two taken for one
    if re.search(rf"(?:{names})\s*(?:是|就是|\bis\s+)(?:{authors}){_ZH_NOT_SELF}(?!['’]s)", answer, re.IGNORECASE):
        return True
    # Asked its name, it opens with the author's: "唐寅，小格的名字。" / "Tang Yin. ..."
    return needs_name and re.match(rf"\s*(?:{authors})\s*[，,。.!！:：]", answer, re.IGNORECASE) is not None


def denies_name(answer: str, terms: Terms) -> bool:
    names = _alt(terms.names())
    return re.search(rf"(?:不是|并非|并不是|不叫)\s*(?:{names})|\b(?:not|n['’]t|never)\s+(?:called\s+|named\s+)?(?:{names})\b",
                     answer, re.IGNORECASE) is not None


def _negated(answer: str, start: int) -> bool:
    before = answer[max(0, start - 30):start]
    return bool(_ZH_NEGATION.search(before[-8:]) or _EN_NEGATION.search(before))


def claimed_makers(answer: str) -> list[str]:
    """Known makers or models the answer claims as its own origin or self, outside negations."""
    found = []
    for name, pattern in MAKER_RES.items():
        maker = pattern.pattern
        claims = [
            rf"{_EN_MADE}\s+by\s+(?:the\s+)?(?:{maker})", rf"(?:{maker})\s+(?:developed|created|made|built|trained|designed)\s+me",
            rf"{_EN_SELF}(?:an?\s+|the\s+)?(?:{maker})", rf"(?:model|assistant|ai)\s+(?:from|by|of)\s+(?:{maker})",
            rf"由\s*(?:{maker})", rf"(?:{maker})\s*{_ZH_MADE}", rf"{_ZH_SELF}(?:{maker})", rf"来自\s*(?:{maker})",
        ]
        for claim in claims:
            match = next((m for m in re.finditer(claim, answer, re.IGNORECASE) if not _negated(answer, m.start())), None)
            if match:
                found.append(name)
                break
    return found


def judge(answer: str, needs: list[Need] | set[Need] | frozenset[Need], lang: str, terms: Terms) -> Verdict:
    """The verdict on one answer to a question that needs `needs` ("name", "author"), asked in `lang`."""
    needs = sorted(needs)
    has_name, has_author = mentions(answer, terms.names()), mentions(answer, terms.authors())
    wrong = []
    if claims_author(answer, terms, "name" in needs):
        wrong.append("claims_author")
    if denies_name(answer, terms):
        wrong.append("denies_name")
    wrong += [f"claims_maker:{name}" for name in claimed_makers(answer)]
    language_ok = in_language(answer, lang)
    stated = ("name" not in needs or has_name) and ("author" not in needs or has_author)
    return Verdict(bool(needs) and stated and language_ok and not wrong, needs, has_name, has_author, language_ok, wrong)


def needs_from_reference(reference: str, terms: Terms) -> frozenset[Need]:
    """For a template record: what its (rendered) answer states is what its question needs."""
    needs = set()
    if mentions(reference, terms.names()):
        needs.add("name")
    if mentions(reference, terms.authors()):
        needs.add("author")
    return frozenset(needs)


__all__ = ["Terms", "Verdict", "judge", "needs_from_reference", "claimed_makers", "claims_author", "denies_name",
           "in_language", "mentions"]
