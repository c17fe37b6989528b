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


def test_band_by_band_verification_equals_verifying_all_candidates():
    """curate.dedup_pool verifies each band's pairs as they are found, in forked workers or not:
    same pairs, same scores as verify(candidates(...))."""
    from curate.dedup.minhash import band, candidates, lsh_params, verify
    from curate.dedup_pool import near_pairs

    rng = np.random.default_rng(3)
    base = rng.integers(0, 2**31, size=(300, 64), dtype=np.uint32)
    sig = np.concatenate([base] + [np.where(rng.random(base.shape) < rate, base, base + 1)
                                   for rate in (0.95, 0.85, 0.7)])  # twins at several similarities
    sig[::97] = 0xFFFFFFFF  # records without shingles take no part
    keys = band(sig, lsh_params(0.8, 64))
    valid = sig[:, 0] != 0xFFFFFFFF
    pairs = candidates(keys, valid)
    want_pairs, want_scores = verify(sig, pairs, 0.8, chunk=50)
    assert len(pairs) > len(want_pairs) >= 300  # some candidates fail
    for processes in (1, 2):
        got_pairs, got_scores = near_pairs(keys, valid, sig, 0.8, processes=processes, chunk=50)
        assert np.array_equal(got_pairs, want_pairs) and np.array_equal(got_scores, want_scores)


def test_a_band_split_by_key_bits_makes_the_same_pairs(monkeypatch):
    """Past _SORTED_AT_ONCE keys a band is sorted in parts by the keys' top bits: same codes,
    big buckets (more members than the fanout) included."""
    import curate.dedup.minhash as minhash

    rng = np.random.default_rng(5)
    keys = rng.integers(0, 2**64, size=5000, dtype=np.uint64, endpoint=False)
    keys[rng.choice(5000, 1500)] = keys[rng.choice(5000, 1500)]  # pairs and triples
    keys[rng.choice(5000, 40)] = keys[7]  # one bucket far over the fanout
    index = np.sort(rng.choice(20000, 5000, replace=False))
    whole = minhash.band_pairs(keys, index, 20000)
    monkeypatch.setattr(minhash, "_SORTED_AT_ONCE", 300)  # 2^5 parts
    split = minhash.band_pairs(keys, index, 20000)
    assert len(whole) > 1000 and np.array_equal(split, whole)


def test_band_keys_gathered_piece_by_piece_equal_the_whole_file(tmp_path, monkeypatch):
    import curate.signature_spill as signature_spill

    rng = np.random.default_rng(6)
    column = rng.integers(0, 2**64, size=1000, dtype=np.uint64, endpoint=False)
    column.tofile(tmp_path / "band")
    positions = rng.permutation(1000)[:700]
    monkeypatch.setattr(signature_spill, "_READ_AT_ONCE", 64)
    assert np.array_equal(signature_spill._gather(tmp_path / "band", positions), column[positions])
