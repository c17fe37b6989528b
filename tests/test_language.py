"""The language filter (issue 15): whole conversations, main language, no 'ASCII means English'."""
import pytest

from curate.filters.language import LanguageFilter, detect_language
from curate.filters.language_models import normalise
from curate.filters.language_text import clean, sample_turns

ZH_EN = ["zh", "en"]


def decide(turns, allowed=ZH_EN, **kwargs):
    return LanguageFilter(**kwargs).decide(turns, allowed)


@pytest.mark.parametrize("backend", ["fasttext", "langdetect"])
@pytest.mark.parametrize("text,lang", [
    ("你和GPT-4有区别吗?", "zh"),
    ("你是ChatGPT吗？", "zh"),
    ("请用Python写一个快速排序函数。", "zh"),
    ("今天天气很好，我们去公园散步吧。", "zh"),
    ("The quick brown fox jumps over the lazy dog.", "en"),
    ("Please explain how photosynthesis works in plants.", "en"),
])
def test_detects_zh_and_en_including_mixed_script(backend, text, lang):
    assert detect_language(text, backend) == lang


def test_short_latin_text_is_not_judged():
    assert detect_language("ok", "fasttext") is None


def test_japanese_is_not_chinese():
    assert detect_language("これは日本語の文章です。", "fasttext") == "ja"


@pytest.mark.parametrize("turns", [
    ["嗨"], ["hi"], ["你好"], ["Hello!"], ["hey there"], ["嗨", "你好！有什么可以帮你的吗？"], ["hi", "Hello! How can I help?"],
])
def test_short_greetings_are_kept(turns):
    assert decide(turns)[1] is None


MIXED_ZH = [
    # a Chinese instruction quoting an English passage longer than itself
    [("把下面这段话翻译成中文：\n\"The committee met on Tuesday to discuss the new budget, and after a long debate "
      "it decided to postpone the vote until the next meeting in March.\""),
     "委员会周二开会讨论新预算，经过长时间的辩论，决定将投票推迟到三月的下一次会议。"],
    # ...and a French one
    [("请总结下面这段法语：Je suis arrivé à Paris il y a dix ans et depuis je travaille dans une petite librairie "
      "près de la Seine."), "这段话说的是作者十年前来到巴黎，从那以后一直在塞纳河边的一家小书店工作。"],
    # a conversation whose first 80 characters are English, the rest Chinese
    ["Translate into Chinese, please: good morning, everyone, and welcome to the meeting today.",
     "大家早上好，欢迎参加今天的会议。", "再帮我翻译一句：会议将在下午三点结束。", "好的，这句话的意思是会议会在下午三点钟结束，请大家注意时间安排。"],
    # one kana in a Chinese record
    ["“の”这个字在日语里是什么意思？", "它是日语中的助词，通常表示所属关系，相当于中文的“的”。"],
    # code, URLs and numbers do not decide
    ["请解释这段代码的作用：\n```python\nfor item in items:\n    total += item.price * item.count\nprint(total)\n```",
     "这段代码遍历所有商品，把每件商品的价格乘以数量后累加到总数里，最后打印总价。详见 https://docs.python.org/3/tutorial/"],
    # Cantonese is Chinese
    ["佢哋而家喺邊度呀？我哋一齊去食飯啦。", "佢哋喺公司附近嘅茶餐廳度等緊我哋。"],
]


@pytest.mark.parametrize("turns", MIXED_ZH)
def test_mixed_chinese_instruction_records_are_kept_as_chinese(turns):
    lang, verdict = decide(turns, ["zh"])
    assert verdict is None and lang == "zh"


def test_mixed_zh_en_records_are_kept_with_both_allowed():
    turns = ["用“opulent”这个词造一个句子。", "The wedding was held in an opulent ballroom with crystal chandeliers."]
    assert decide(turns)[1] is None


@pytest.mark.parametrize("turns,lang", [
    (["東京は日本の首都です。毎日たくさんの人が電車で会社に通っています。"], "ja"),
    (["日本語の文章を書いてください。", "私は毎朝七時に起きて、駅まで歩いて行きます。"], "ja"),
    (["大韓民國의 主權은 國民에게 있고, 모든 權力은 國民으로부터 나온다."], "ko"),
    (["한국어로 대답해 주세요.", "네, 알겠습니다. 오늘 날씨가 아주 좋네요."], "ko"),
])
def test_japanese_and_korean_with_han_characters_are_rejected(turns, lang):
    detected, verdict = decide(turns)
    assert detected == lang and verdict and verdict[0] == "wrong_language"


@pytest.mark.parametrize("text", [
    "Sawubona, unjani namhlanje? Ngiyabonga kakhulu ngosizo lwakho.",  # Zulu
    "Molo, unjani? Ndiyabulela kakhulu ngoncedo lwakho namhlanje.",  # Xhosa
    "Dumela, o phela joang? Ke leboha haholo ka thuso ea hao kajeno.",  # Sotho
    "Gallia est omnis divisa in partes tres, quarum unam incolunt Belgae.",  # Latin
    "Ik woon al tien jaar in Amsterdam en ik fiets elke dag naar mijn werk.",  # Dutch
    "Habari za asubuhi? Ninafurahi sana kukutana nawe leo.",  # Swahili
    "Je voudrais réserver une table pour deux personnes ce soir.",  # French
    "Magandang umaga po, kumusta kayo ngayong araw na ito?",  # Tagalog
])
def test_latin_script_non_english_is_rejected(text):
    detected, verdict = decide([text])
    assert verdict is not None
    assert detected != "en" or verdict[0] == "language_unsure"  # fastText's unsure guess is no verdict


def test_plain_ascii_is_not_english_by_default():
    """The old fallback called unsure ASCII English; now unsure text needs a model to settle it."""
    _, verdict = decide(["Ngiyabonga kakhulu, mngane wami."])
    assert verdict is not None


def test_unsure_text_is_settled_by_the_word_model_or_rejected():
    text = ["a blog post about gardening"]
    assert decide(text)[1] is None  # fastText alone is unsure here; the word lists settle it
    _, verdict = decide(text, unsure="reject")
    assert verdict[0] == "language_unsure" and "best guess" in verdict[1]


def test_chinese_varieties_are_zh():
    assert {normalise(x) for x in ("zh", "wuu", "yue", "zh-cn", "zh-tw", "__label__yue", "lzh")} == {"zh"}


def test_identity_records_are_judged_in_their_own_language():
    from schemas.record import Message, Record, RecordMeta

    record = Record(messages=[Message(role="user", content="Who are you?"),
                              Message(role="assistant", content="I am Grace, an assistant made by Tang Yin.")],
                    meta=RecordMeta(id="t:1", source="t", kind="identity", lang="zh"))
    lang, verdict = LanguageFilter()(record, ZH_EN)
    assert lang == "en" and verdict and verdict[0] == "wrong_language"


def test_sampling_covers_every_turn_and_is_bounded():
    turns = ["English question " * 20] + ["中文回答。" * 400] * 3
    samples = sample_turns(turns)
    assert len(samples) == 4 and all(samples) and sum(map(len, samples)) < 1200


def test_clean_drops_code_urls_numbers_and_identifiers():
    assert clean("see https://a.b/c?d=1 and GPT4, snake_case, ChatGPT 2024 x = 5") == "see and x"
    assert clean("说明：\ndef f(a):\n    return a * 2\n结束") == "说明： 结束"


@pytest.mark.parametrize("turns", [
    [""], ["   "], ["\x00\x00"], ["\ud800 hello there my friend, how are you today?"], ["🙂🙂🙂"], ["12345 + 678"],
    ["{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}"], ["\ud800" * 50], [],
])
def test_bad_input_never_raises(turns):
    for backend in ("fasttext", "langdetect"):
        for unsure in ("model", "reject"):
            decide(turns, ["en"], backend=backend, unsure=unsure)


def test_unknown_settings_are_errors():
    with pytest.raises(ValueError):
        LanguageFilter(backend="cld3")
    with pytest.raises(ValueError):
        LanguageFilter(unsure="english")


def test_fasttext_and_word_lists_never_download(monkeypatch):
    """The lite model comes from inside the installed wheel, the word lists from wordfreq's: with
    sockets refused, both still work."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("language detection tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    from curate.filters import language_models, language_words

    language_models.fasttext_predict.cache_clear()
    language_words._table.cache_clear()
    try:
        assert detect_language("This is an English sentence for the test.") == "en"
        assert detect_language("Ceci est une phrase française pour le test.") == "fr"
        assert decide(["a blog post about gardening"], ["en"])[1] is None  # the word lists, loaded now
    finally:
        language_models.fasttext_predict.cache_clear()


def test_recipe_setting_for_unsure_text():
    from pydantic import ValidationError

    from schemas.recipe import LanguageConfig

    assert LanguageConfig().unsure == "model"
    assert LanguageConfig(unsure="reject").unsure == "reject"
    with pytest.raises(ValidationError):
        LanguageConfig(unsure="english")
