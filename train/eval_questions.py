"""The questions `train eval` asks, each with what a correct answer must contain.

Three identity sets: the train split's identity questions, the val split's (paraphrases training never
saw) and built-in paraphrases in zh and en that are not among the train questions. A template
record's needs are the placeholders its answer held (read back from the rendered reference answer),
or the `needs` its template set explicitly; the built-in paraphrases carry theirs. Plus a few general
questions whose answer a pretrained model knows, to see it still answers them after training.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from schemas.identity_intent import Need, named_makers
from schemas.record import Record
from train.encode import record_messages
from train.identity_verdict import Terms, needs_from_reference

N, A, NA = ("name",), ("author",), ("name", "author")
# (question, needs). The last ones name another maker: the answer must give the author and not claim it.
HELD_OUT: dict[str, list[tuple[str, tuple[Need, ...]]]] = {
    "en": [
        ("What do people call you?", N), ("May I know your name?", N), ("Introduce yourself, please.", N),
        ("Who is your creator?", A), ("Who made you?", A), ("Which organization developed you?", A),
        ("Tell me your name and who built you.", NA), ("Who are you, exactly?", N), ("What is your name?", N),
        ("Who is behind you?", A), ("Could you tell me who you are?", N), ("Who programmed you?", A),
        ("Who designed you?", A), ("Which assistant am I speaking with?", N), ("Which AI are you?", N),
        ("Please describe who you are.", N), ("Who trained you?", A), ("Who is your developer?", A),
        ("What are you called?", N), ("Give me a short introduction of yourself.", N),
        ("Are you made by Google?", A), ("Were you built by OpenAI?", A),
    ],
    "zh": [
        ("你叫啥？", N), ("请问你的名字是？", N), ("你的开发者是谁？", A), ("谁创造了你？", A), ("你是哪位？", N),
        ("能介绍一下你是谁吗？", N), ("谁训练了你？", A), ("你是由谁打造的？", A), ("请告诉我你的名字。", N),
        ("你是什么AI？", N), ("我在和谁说话？", N), ("你的作者是谁？", A), ("你是哪家的AI助手？", A),
        ("简单介绍一下自己吧。", N), ("怎么称呼你比较好？", N), ("谁设计了你？", A), ("你的名字叫什么？", N),
        ("你出自谁之手？", A), ("做个自我介绍吧。", N), ("你是谁做出来的？", A),
        ("你是谷歌开发的吗？", A), ("你是OpenAI训练的吗？", A),
    ],
}

# (question, language, any of these in the answer counts as answered)
GENERAL: list[tuple[str, str, tuple[str, ...]]] = [
    ("What is the capital of France?", "en", ("Paris",)),
    ("法国的首都是哪里？", "zh", ("巴黎",)),
    ("What is the largest planet in our solar system?", "en", ("Jupiter",)),
    ("太阳系中最大的行星是哪一颗？", "zh", ("木星",)),
]

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@dataclass
class Question:
    messages: list[dict[str, str]]  # up to and including the user turn to answer
    lang: str
    source: str  # "train", "val", "held_out" or "general"
    reference: str | None = None
    needs: tuple[Need, ...] = ()
    makers: list[str] = field(default_factory=list)  # other makers the question names
    expect: tuple[str, ...] = ()  # general questions: accepted answers

    @property
    def text(self) -> str:
        return self.messages[-1]["content"]


def normalise_question(text: str) -> str:
    """NFKC, case-folded, letters and digits only: 'Who are you?' == 'who are you'."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).casefold() if ch.isalnum())


def question_lang(text: str, given: str | None = None) -> str:
    if given in ("zh", "en"):
        return given
    return "zh" if _CJK.search(text) else "en"


def _with_system(text: str, system: str | None) -> list[dict[str, str]]:
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]


def first_question(record: Record, system: str | None) -> list[dict[str, str]] | None:
    """The record's messages up to its first assistant turn (system replaced as in training)."""
    messages = record_messages(record, system)
    for i, message in enumerate(messages):
        if message["role"] == "assistant":
            return messages[:i] if i and messages[i - 1]["role"] == "user" else None
    return None


def bundle_questions(records: list[Record], system: str | None, source: str, terms: Terms) -> list[Question]:
    """Identity records' first questions; needs from the template's `needs` or its answer's placeholders."""
    out = []
    for record in records:
        if record.meta.kind != "identity":
            continue
        messages = first_question(record, system)
        if messages is None:
            continue
        reference = next((m.content for m in record.messages if m.role == "assistant"), None)
        needs = record.meta.needs if record.meta.needs is not None else needs_from_reference(reference or "", terms)
        text = messages[-1]["content"]
        out.append(Question(messages, question_lang(text, record.meta.lang), source, reference,
                            tuple(sorted(needs)), named_makers(text)))
    return out


def held_out_questions(train: list[Record], system: str | None) -> tuple[list[Question], list[str]]:
    """Built-in paraphrases not among the train questions; and those skipped because they are."""
    seen = {normalise_question(m.content) for r in train for m in r.messages if m.role == "user"}
    kept, skipped = [], []
    for lang, questions in HELD_OUT.items():
        for text, needs in questions:
            if normalise_question(text) in seen:
                skipped.append(text)
                continue
            kept.append(Question(_with_system(text, system), lang, "held_out", needs=needs, makers=named_makers(text)))
    return kept, skipped


def general_questions(system: str | None) -> list[Question]:
    return [Question(_with_system(text, system), lang, "general", expect=expect) for text, lang, expect in GENERAL]


__all__ = ["GENERAL", "HELD_OUT", "Question", "bundle_questions", "first_question", "general_questions",
           "held_out_questions", "normalise_question", "question_lang"]
