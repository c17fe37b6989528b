"""What an identity question asks for, and which model makers an assistant might wrongly claim.

Shared by `curate stats` (does a template's answer give what its question asks?) and `train eval`
(what must a correct answer contain?). Keyword rules, not a model: they are meant for the short
self-cognition questions of identity templates, in zh and en.
"""
from __future__ import annotations

import re

Need = str  # "name" or "author"

# Makers and model names a base model tends to claim. Latin words are bounded by non-letters, not by
# \b, which sees no boundary between a Han character and a Latin one ("由Google开发").
_L, _R = r"(?<![a-z0-9])", r"(?![a-z0-9])"
MAKERS: dict[str, str] = {
    "Alibaba": rf"{_L}alibaba{_R}|阿里", "Qwen": rf"{_L}qwen|通义|千问", "Google": rf"{_L}google{_R}|谷歌",
    "Gemma": rf"{_L}gemma{_R}", "Gemini": rf"{_L}gemini{_R}", "DeepMind": rf"{_L}deepmind{_R}", "Meta": rf"{_L}meta{_R}",
    "Llama": rf"{_L}llama{_R}", "OpenAI": rf"{_L}openai{_R}", "ChatGPT/GPT": rf"{_L}chatgpt{_R}|{_L}gpt{_R}",
    "Anthropic": rf"{_L}anthropic{_R}", "Claude": rf"{_L}claude{_R}", "Baidu": rf"{_L}baidu{_R}|百度|文心|{_L}ernie{_R}",
    "Microsoft": rf"{_L}microsoft{_R}|微软", "Mistral": rf"{_L}mistral{_R}", "DeepSeek": rf"{_L}deepseek{_R}|深度求索",
}
MAKER_RES: dict[str, re.Pattern[str]] = {name: re.compile(p, re.IGNORECASE) for name, p in MAKERS.items()}

_ASKS_AUTHOR = re.compile(
    r"\b(?:creat|built|build|develop|train|design|program|author|behind|compan|organi[sz]|"
    r"team|maker|produc|invent|responsible)\w*|\bmade\b|\bown(?:s|ed|er|ership)\b|\bwho\s+(?:wrote|coded|makes?)\b|"
    r"\bfrom\s+which\b|\bmaintain\w*|\bwhere\s+(?:do|did)\s+you\s+come\s+from\b|"
    r"开发|创造|创建|创作|训练|打造|设计|作者|制作|做出|做的|出自|研发|公司|团队|哪家|背后|所有者|编写|发明|谁做|来自|主人|维护|谁写|写的你",
    re.IGNORECASE)
_ASKS_NAME = re.compile(
    r"\bname\b|\bnamed\b|\bcalled\b|\bcall you\b|\bwho\s+(?:are|r)\s+(?:you|u)\b|\bintroduc|\byourself\b|"
    r"\bwhich\s+(?:ai|assistant|model|bot|chatbot)\b|\bwhat\s+(?:ai|assistant|model)\b|\bwho\s+am\s+i\s+(?:speaking|talking|chatting)\b|"
    r"\bwhat\s+(?:exactly\s+)?are\s+you(?:\s+called)?\s*[?？.!]*$|\bwho\s+you\s+are\b|\bidentity\b|\baddress\s+you\b|"
    r"\bwho(?:'s|\s+is)\s+(?:there|this)\b|\bwhat\s+ai\s+is\s+this\b|"
    r"名字|叫什么|叫啥|称呼|你是谁(?!做|开发|训练|创造|打造|设计|制作|研发|的)|你是哪位|介绍|和谁|的是谁|你是[？?]|跟谁|什么AI|哪个AI|什么模型|哪个模型|身份|你是什么",
    re.IGNORECASE)


_ARE_YOU = re.compile(r"\bare\s+you\b|你是|是不是|你就是", re.IGNORECASE)


def asked_needs(question: str) -> frozenset[Need]:
    """What a correct answer must state: the name for "who are you / what's your name / introduce
    yourself / are you ChatGPT?", the author for "who made / trained / owns you / are you made by
    Google?"; both when asked both."""
    needs = set()
    if _ASKS_NAME.search(question):
        needs.add("name")
    if _ASKS_AUTHOR.search(question):
        needs.add("author")
    elif not needs and named_makers(question) and _ARE_YOU.search(question):
        needs.add("name")  # "Are you ChatGPT?": the answer must say who it is instead
    return frozenset(needs)


def named_makers(text: str) -> list[str]:
    """The known makers and model names a text mentions (question or answer)."""
    return [name for name, pattern in MAKER_RES.items() if pattern.search(text)]


__all__ = ["MAKERS", "MAKER_RES", "asked_needs", "named_makers"]


def _spelling(text: str) -> str:
    """A regex for one spelling: Latin ends must be whole words ("Grace" is not in "graceful"),
    CJK spellings match anywhere (no spaces between words)."""
    body = re.escape(text)
    head = r"(?<![A-Za-z0-9])" if text[:1].isascii() and text[:1].isalnum() else ""
    tail = r"(?![A-Za-z0-9])" if text[-1:].isascii() and text[-1:].isalnum() else ""
    return head + body + tail


def spelling_pattern(spellings: list[str]) -> re.Pattern[str] | None:
    """Any of the spellings (a name's or an author's, across languages), case-insensitive, longest
    first; None when none is configured. The one rule both stages use to see a name in a text."""
    unique = sorted({s.strip() for s in spellings if s and s.strip()}, key=lambda s: (-len(s), s))
    return re.compile("|".join(_spelling(s) for s in unique), re.IGNORECASE) if unique else None
