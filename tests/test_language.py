import pytest

from curate.filters.language import detect_language


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


def test_fasttext_backend_never_downloads(monkeypatch):
    """The lite model comes from inside the installed wheel: with sockets refused, it still works."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("language detection tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    from curate.filters import language

    language._backend.cache_clear()
    try:
        assert detect_language("This is an English sentence for the test.") == "en"
        assert detect_language("Ceci est une phrase française pour le test.") == "fr"
    finally:
        language._backend.cache_clear()
