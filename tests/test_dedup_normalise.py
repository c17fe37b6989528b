"""The exact-dedup key's normalisation: the ASCII fast path gives what the general path gives."""
import random
import re
import unicodedata

from curate.dedup.exact import find_exact_duplicates, normalise, normalise_many

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


def test_batch_normalisation_equals_per_turn_normalisation_on_every_code_point():
    everything = [[chr(code)] for code in range(0x110000)]
    assert normalise_many(everything) == [normalise(turns[0]) for turns in everything]


def test_batch_normalisation_equals_per_turn_normalisation_on_mixed_conversations():
    rng = random.Random(1)
    alphabet = [chr(c) for c in range(0x3000)] + list("\x1e\x1f ﬁ①²Åß̈İ你好，世界！ＡＢＣ１２３") + \
        [chr(0xD800), chr(0x1F600), "\u0301", "\u1100", "\u1161"]
    for _ in range(3000):
        conversations = [["".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))
                          for _ in range(rng.randrange(4))] for _ in range(rng.randrange(1, 6))]
        assert normalise_many(conversations) == ["\x1f".join(normalise(t) for t in turns) for turns in conversations]
    assert normalise_many([["Who are you？", "I am Grace."], ["Straße ²"], []]) == \
        ["whoareyou\x1fiamgrace", "strasse2", ""]
