"""The vectorised MinHash fingerprint equals the algorithm it documents, computed plainly."""
import random

import numpy as np

from curate.dedup.minhash import densify, fingerprint

MASK = (1 << 64) - 1


def mix(x: int) -> int:
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & MASK
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def plain_signature(text: str, num_perm: int, size: int) -> list[int]:
    """Polynomial hash of each window (the whole text when shorter), mixed; top bits pick the bin."""
    sig = [0xFFFFFFFF] * num_perm
    windows = [text[i:i + size] for i in range(len(text) - size + 1)] or ([text] if text else [])
    for window in windows:
        h = 0
        for char in window:
            h = (h * 0x100000001B3 + ord(char)) & MASK
        h = mix(h)
        slot = ((h >> 32) * num_perm) >> 32
        sig[slot] = min(sig[slot], h & 0xFFFFFFFE)
    return sig


def test_fingerprint_equals_the_plain_algorithm():
    rng = random.Random(7)
    alphabet = "abc de你好世界\x1f" + "".join(chr(c) for c in range(0x4E00, 0x4E20))
    for size, num_perm in ((5, 128), (3, 16), (1, 8)):
        texts = ["".join(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 2, 4, 5, 6, 40, 300])))
                 for _ in range(60)]
        plain = np.array([plain_signature(t, num_perm, size) for t in texts], dtype=np.uint32)
        assert np.array_equal(fingerprint(texts, num_perm, size), densify(plain))


def test_fingerprint_blocks_do_not_change_the_result():
    """Texts long enough to cross the hashing blocks give the same rows alone and together."""
    rng = random.Random(8)
    texts = ["".join(rng.choice("abcdefgh") for _ in range(rng.randrange(5000, 30000))) for _ in range(6)]
    together = fingerprint(texts, 64, 5)
    for row, text in enumerate(texts):
        assert np.array_equal(together[row], fingerprint([text], 64, 5)[0])
