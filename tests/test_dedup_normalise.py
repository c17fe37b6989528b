"""The exact-dedup key's normalisation: the ASCII fast path gives what the general path gives."""
import random
import re
import unicodedata

from curate.dedup.exact import find_exact_duplicates, normalise

NOT_WORD = re.compile(r"[\W_]+")


def reference(text: str) -> str:
    text = NOT_WORD.sub("", text.casefold())
    return NOT_WORD.sub("", unicodedata.normalize("NFKC", text).casefold())


def test_ascii_fast_path_equals_the_regex_path():
    rng = random.Random(0)
    for _ in range(20_000):
        text = "".join(chr(rng.randrange(128)) for _ in range(rng.randrange(40)))
        assert normalise(text) == reference(text), repr(text)


def test_unicode_text_normalised_as_before():
    for text in ("Who are you？", "ＡＢＣ１２３", "Straße", "你好，世界！", "ﬁne_tune", "İstanbul", "Å Å"):
        assert normalise(text) == reference(text)
    assert normalise("Who are you？") == normalise("who are you?") == "whoareyou"


def test_exact_duplicates_name_the_first_record_with_the_key():
    keys = [b"a" * 16, b"b" * 16, b"a" * 16, b"b" * 15 + b"\x00", b"c" * 16, b"a" * 16]
    assert find_exact_duplicates(keys) == {2: 0, 5: 0}
    assert find_exact_duplicates([]) == {}
