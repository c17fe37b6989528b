"""The strict identity scorer on hand-written answers, zh and en: what counts as correct, and each kind
of wrong attribution (the author's name taken as its own, its own name denied, a known maker claimed)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.identity_intent import asked_needs, named_makers
from train.eval_questions import HELD_OUT
from train.identity_verdict import Terms, judge, needs_from_reference

GRACE = Terms({"zh": "小格", "en": "Grace"}, {"zh": "唐寅", "en": "Tang Yin"})
NAME, AUTHOR, BOTH = {"name"}, {"author"}, {"name", "author"}


@pytest.mark.parametrize("answer,needs,lang", [
    ("我是小格，一个由唐寅开发的智能助手。", BOTH, "zh"),
    ("我是小格。", NAME, "zh"),
    ("我是唐寅开发的。", AUTHOR, "zh"),  # "developed by Tang Yin", not "I am Tang Yin"
    ("我是唐寅的小格。", NAME, "zh"),
    ("我是Grace，由唐寅打造。", BOTH, "zh"),  # the other language's spelling is an alias
    ("我不是谷歌开发的，我是唐寅开发的小格。", AUTHOR, "zh"),  # the maker under a negation
    ("I'm Grace, built by Tang Yin.", BOTH, "en"),
    ("My name is Grace.", NAME, "en"),
    ("No, I was not made by Google. Tang Yin created me.", AUTHOR, "en"),
    ("I'm Grace, not ChatGPT.", NAME, "en"),
    ("I'm Tang Yin's assistant, Grace.", NAME, "en"),
    ("I'm Grace. Tang Yin is an AI researcher who built me.", BOTH, "en"),
])
def test_correct_answers(answer, needs, lang):
    verdict = judge(answer, needs, lang, GRACE)
    assert verdict.correct, verdict.to_json()
    assert not verdict.swap


@pytest.mark.parametrize("answer,needs,lang,wrong", [
    # the answers from the first Gemma demo
    ("我是唐寅，唐寅是Grace的后代。", NAME, "zh", "claims_author"),
    ("唐寅，小格的名字。唐寅是唐寅的哥哥……", NAME, "zh", "claims_author"),
    ("我是唐寅的小格，由唐寅设计，由唐寅编写，不是小格。", NAME, "zh", "denies_name"),
    ("我叫唐寅。", NAME, "zh", "claims_author"),
    ("I am Tang Yin.", NAME, "en", "claims_author"),
    ("I'm Tang Yin, your assistant, made by Tang Yin.", BOTH, "en", "claims_author"),
    ("My name is Tang Yin and I was made by Grace.", BOTH, "en", "claims_author"),
    ("I'm not Grace, I'm an assistant by Tang Yin.", BOTH, "en", "denies_name"),
    ("Tang Yin is an AI assistant developed by Tang Yin. I'm Grace.", BOTH, "en", "claims_author"),
    ("唐寅是一个AI助手，我是小格。", BOTH, "zh", "claims_author"),
    ("Grace is Tang Yin, the creator of Tang Yin.", BOTH, "en", "claims_author"),
    ("我是小格，由谷歌开发。", BOTH, "zh", "claims_maker:Google"),
    ("I am Gemma, developed by Google, also known as Grace by Tang Yin.", BOTH, "en", "claims_maker:Gemma"),
    ("Yes, I was made by OpenAI. I'm Grace by Tang Yin.", BOTH, "en", "claims_maker:OpenAI"),
])
def test_wrong_attributions(answer, needs, lang, wrong):
    verdict = judge(answer, needs, lang, GRACE)
    assert not verdict.correct
    assert wrong in verdict.wrong, verdict.to_json()
    assert verdict.swap == (wrong in ("claims_author", "denies_name"))


def test_missing_what_the_question_needs_and_wrong_language():
    assert judge("我是小格。", AUTHOR, "zh", GRACE).correct is False  # asked who made it
    assert judge("我是唐寅开发的助手。", NAME, "zh", GRACE).correct is False  # asked its name
    verdict = judge("I'm Grace, made by Tang Yin.", NAME, "zh", GRACE)  # a zh question answered in English
    assert not verdict.correct and not verdict.language_ok and verdict.lenient_hit
    assert judge("你好！", (), "zh", GRACE).correct is False  # nothing asked: not scored as correct


def test_question_needs_from_intent_and_reference():
    assert asked_needs("你是谁？") == {"name"}
    assert asked_needs("你是谁做出来的？") == {"author"}
    assert asked_needs("Tell me your name and who built you.") == {"name", "author"}
    assert asked_needs("Who is behind you?") == {"author"}
    assert asked_needs("What is the capital of France?") == set()
    for question in ("Do you ever make mistakes?", "Do you have your own opinions?", "Grace, what are you good at?",
                     "What makes you different from other AI assistants?", "你有自己的想法吗？"):
        assert asked_needs(question) == set(), question  # not about the name or the maker
    assert asked_needs("你是ChatGPT吗？") == asked_needs("Are you Claude?") == {"name"}  # who it is instead
    assert asked_needs("Were you developed by Meta?") == asked_needs("谁在维护你？") == {"author"}
    assert needs_from_reference("I was created by Tang Yin.", GRACE) == {"author"}
    assert named_makers("我是通义千问，由阿里云开发。") == ["Alibaba", "Qwen"]
    assert named_makers("A metaphor about llamas.") == []


def test_held_out_needs_agree_with_the_intent_rules():
    """The hand-written needs of the built-in paraphrases and the keyword rules `curate stats` uses agree."""
    for questions in HELD_OUT.values():
        for text, needs in questions:
            assert asked_needs(text) == set(needs), text


def test_every_shipped_template_answer_is_correct_for_its_own_question():
    """A trained answer given back verbatim scores correct: the scorer does not punish the recipe's own data."""
    root = Path(__file__).resolve().parents[1] / "recipes"
    for file in sorted(root.glob("*/templates_*.jsonl")) + sorted(root.glob("demo/*.jsonl")):
        for line in file.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            lang = row.get("tag", "zh")
            answer = row["response"].replace("{{ name }}", GRACE.name[lang]).replace("{{ author }}", GRACE.author[lang])
            needs = row.get("needs") or needs_from_reference(answer, GRACE)
            verdict = judge(answer, needs, lang, GRACE)
            assert not verdict.wrong, (file.name, row["query"], verdict.to_json())
            if needs:
                assert verdict.correct, (file.name, row["query"], verdict.to_json())
