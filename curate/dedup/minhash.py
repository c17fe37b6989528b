"""Near duplicates with MinHash LSH over character shingles, vectorised with numpy.

Stages, named as in text-dedup: shingle -> fingerprint -> band -> candidates -> verify -> choose.
Fingerprints use one-permutation MinHash with rotation densification (Shrivastava & Li, 2014):
each shingle is hashed once and falls into one of `num_perm` bins, instead of being hashed
`num_perm` times; the fraction of equal bins still estimates Jaccard similarity. Band collisions
are only candidates: each is verified by its estimated similarity before anything is removed.
`near_duplicates_datasketch` is the plain datasketch pipeline, kept as the reference.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_EMPTY = np.uint32(0xFFFFFFFF)
_ROTATION = np.uint64(0x9E3779B1)
_BASE = np.uint64(0x100000001B3)


@dataclass(frozen=True)
class LshParams:
    bands: int
    rows: int


def lsh_params(threshold: float, num_perm: int, recall_at: float = 0.9, target: float = 0.995) -> LshParams:
    """The most selective bands x rows whose candidate probability at recall_at*threshold >= target.

    Tuning for 0.5/0.5 error weights (datasketch's default) misses a third of the twins just above
    the threshold; verification removes the extra candidates a recall-first choice lets in.
    """
    low = threshold * recall_at
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if 1 - (1 - low**rows) ** bands >= target:
            return LshParams(bands, rows)
    return LshParams(num_perm, 1)


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_BLOCK = 1 << 15  # positions hashed at a time: the working arrays stay in cache (2x faster than whole arrays)


def _splitmix_into(x: np.ndarray, scratch: np.ndarray) -> None:
    """_splitmix in place, with no temporary arrays."""
    np.right_shift(x, np.uint64(30), out=scratch)
    x ^= scratch
    x *= _MIX1
    np.right_shift(x, np.uint64(27), out=scratch)
    x ^= scratch
    x *= _MIX2
    np.right_shift(x, np.uint64(31), out=scratch)
    x ^= scratch


def fingerprint(texts: list[str], num_perm: int = 128, size: int = 5) -> np.ndarray:
    """(len(texts), num_perm) uint32 MinHash signatures; a row of 0xFFFFFFFF means no shingles.

    Every `size`-character window gets a 64-bit hash (a polynomial rolling hash over the code
    points, then mixed); its top bits pick the bin, its low bits the value. All texts are hashed
    joined, block by block; a window that runs into the next text lands in a spare row that is
    dropped. A text shorter than `size` is one shingle; an empty one has none.
    """
    n = len(texts)
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=n)
    codes = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32)
    total = len(codes)
    codes = np.concatenate((codes, np.zeros(size, np.uint32)))
    starts = np.cumsum(lengths) - lengths
    windows = np.maximum(lengths - size + 1, 0)
    row_start = np.repeat(np.arange(n, dtype=np.int64) * num_perm, lengths)
    row_start[(np.arange(total) - np.repeat(starts, lengths)) >= np.repeat(windows, lengths)] = n * num_perm
    sig = np.full((n + 1) * num_perm, _EMPTY, dtype=np.uint32)
    hashes, scratch, slots = np.empty(_BLOCK, np.uint64), np.empty(_BLOCK, np.uint64), np.empty(_BLOCK, np.int64)
    for low in range(0, total, _BLOCK):
        high = min(low + _BLOCK, total)
        h, t, slot = hashes[:high - low], scratch[:high - low], slots[:high - low]
        h[:] = codes[low:high]
        for offset in range(1, size):
            h *= _BASE
            t[:] = codes[low + offset:high + offset]
            h += t
        _splitmix_into(h, t)
        np.right_shift(h, np.uint64(32), out=t)
        t *= np.uint64(num_perm)
        t >>= np.uint64(32)
        np.add(row_start[low:high], t.view(np.int64), out=slot)
        h &= np.uint64(0xFFFFFFFE)  # 0xFFFFFFFF stays free to mean "empty"
        np.minimum.at(sig, slot, h.astype(np.uint32))
    short = np.flatnonzero((lengths > 0) & (lengths < size))
    if len(short):
        h = np.zeros(len(short), dtype=np.uint64)
        for offset in range(size):
            more = offset < lengths[short]
            h = np.where(more, h * _BASE + codes[np.minimum(starts[short] + offset, total)], h)
        h = _splitmix(h)
        bins = (((h >> np.uint64(32)) * np.uint64(num_perm)) >> np.uint64(32)).astype(np.int64)
        np.minimum.at(sig, short * num_perm + bins, (h & np.uint64(0xFFFFFFFE)).astype(np.uint32))
    return densify(sig[:n * num_perm].reshape(n, num_perm))


def densify(sig: np.ndarray) -> np.ndarray:
    """Fill each empty bin from the next non-empty bin to its right, offset by the distance."""
    n, k = sig.shape
    filled = sig != _EMPTY
    if filled.all() or n == 0:
        return sig
    cols = np.arange(k)
    position = np.where(filled, cols, 2 * k)
    doubled = np.concatenate((position, np.where(filled, cols + k, 2 * k)), axis=1)
    nearest = np.minimum.accumulate(doubled[:, ::-1], axis=1)[:, ::-1][:, :k]
    has_any = filled.any(axis=1)
    nearest = np.where(has_any[:, None], nearest, cols)
    donor = np.take_along_axis(sig, nearest % k, axis=1).astype(np.uint64)
    distance = (nearest - cols).astype(np.uint64)
    rotated = ((donor + distance * _ROTATION) & np.uint64(0xFFFFFFFE)).astype(np.uint32)
    out = np.where(filled, sig, rotated)
    out[~has_any] = _EMPTY
    return out


_BAND_MULTIPLIERS = _splitmix(np.arange(1, 1025, dtype=np.uint64)) | np.uint64(1)  # fixed random odd numbers


def band(sig: np.ndarray, params: LshParams) -> np.ndarray:
    """(n, bands) uint64 keys: records sharing a key in any band are candidates.

    Each band's rows are combined with fixed random odd multipliers (mod 2^64) and mixed once:
    equal bands always collide, unequal ones almost never, and verification catches the rest.
    """
    n = sig.shape[0]
    used = params.bands * params.rows
    keys = np.zeros((n, params.bands), dtype=np.uint64)
    for start in range(0, n, 32768):  # row blocks stay in cache; whole columns would not
        block = sig[start:start + 32768, :used].astype(np.uint64) * _BAND_MULTIPLIERS[:used]
        combined = block.reshape(len(block), params.bands, params.rows).sum(axis=2, dtype=np.uint64)
        keys[start:start + 32768] = _splitmix(combined + np.arange(params.bands, dtype=np.uint64))
    return keys


def bucket_order(column: np.ndarray, index: np.ndarray, fanout: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Band keys sorted, and the members in that order: by key, then by index inside a bucket.

    Only the order inside a bucket of more than fanout + 1 members changes which pairs
    `candidates` makes, so an introsort (several times faster than a stable sort) orders all, and
    only those buckets are then put in index order: the pairs are well defined ("each member with
    up to `fanout` earlier members by index"), and a sharded version (curate.ray_dedup) makes the same.
    `index` must be ascending.
    """
    order = np.argsort(column)
    sorted_keys = column[order]
    members = index[order]
    del order
    span = fanout + 1
    if len(sorted_keys) > span and (sorted_keys[span:] == sorted_keys[:-span]).any():
        run = np.cumsum(np.concatenate(([False], sorted_keys[1:] != sorted_keys[:-1])))
        inside = np.flatnonzero(np.bincount(run)[run] > span)
        members[inside] = members[inside][np.lexsort((members[inside], run[inside]))]
    return sorted_keys, members


def candidates(keys: np.ndarray, valid: np.ndarray, fanout: int = 8) -> np.ndarray:
    """Unique (i, j) pairs with i < j sharing a band key; each j is paired with up to `fanout`
    earlier members (by index) of its bucket, which bounds the work on huge buckets.

    Pairs are made unique band by band: a twin pair collides in most of the bands, and holding
    every band's pairs until the end took gigabytes at 10M records."""
    n = keys.shape[0]
    index = np.flatnonzero(valid)
    codes = np.zeros(0, dtype=np.int64)
    for b in range(keys.shape[1]):
        codes = sorted_unique(np.concatenate((codes, band_pairs(keys[index, b], index, n, fanout))))
    return pair_array(codes, n)


_SORTED_AT_ONCE = 1 << 20  # band keys sorted at a time: a band is split by its keys' top bits past this


def band_pairs(column: np.ndarray, index: np.ndarray, n: int, fanout: int = 8) -> np.ndarray:
    """One band's candidate pairs (i, j), i < j, as sorted unique codes i * n + j; `column` holds
    the band keys of the records at `index` (ascending).

    A large band is split by the keys' top bits and each part sorted on its own: equal keys fall in
    the same part, so the pairs are the same, and the sort's arrays are a part's size, not the band's."""
    bits = max(0, int(np.ceil(np.log2(max(1, len(column)) / _SORTED_AT_ONCE))))
    if bits == 0:
        return _bucket_pairs(column, index, n, fanout)
    part_of = _top_bits(column, bits)
    found = []
    for part in range(1 << bits):
        chosen = np.flatnonzero(part_of == part)
        found.append(_bucket_pairs(column[chosen], index[chosen], n, fanout))
    codes = np.concatenate(found)
    codes.sort()  # each part's codes are unique, and no pair is in two parts
    return codes


def _top_bits(column: np.ndarray, bits: int) -> np.ndarray:
    """column >> (64 - bits) as uint16 (bits <= 16), read from each key's top 16 bits without a
    temporary the column's size."""
    top = np.ascontiguousarray(column, dtype=np.uint64).view(np.uint16).reshape(-1, 4)
    return top[:, 3 if np.little_endian else 0] >> np.uint16(16 - bits)


def _bucket_pairs(column: np.ndarray, index: np.ndarray, n: int, fanout: int) -> np.ndarray:
    sorted_keys, members = bucket_order(column, index, fanout)
    found = []
    for step in range(1, fanout + 1):
        same = sorted_keys[step:] == sorted_keys[:-step]
        if not same.any():
            break
        found.append(np.stack((members[:-step][same], members[step:][same]), axis=1))
    if not found:
        return np.zeros(0, dtype=np.int64)
    pairs = np.concatenate(found)
    pairs.sort(axis=1)
    return sorted_unique(pairs[:, 0].astype(np.int64) * n + pairs[:, 1])


def pair_array(codes: np.ndarray, n: int) -> np.ndarray:
    """Codes i * n + j back to (i, j) rows, written straight into the result (no temporaries)."""
    pairs = np.empty((len(codes), 2), dtype=np.int64)
    np.floor_divide(codes, n, out=pairs[:, 0])
    np.remainder(codes, n, out=pairs[:, 1])
    return pairs


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique by sorting `values` in place (callers pass an array of their own): numpy 2.4's
    unique hashes integer arrays first, 40x slower on millions, and copies them."""
    values.sort()
    return values[np.concatenate(([True], values[1:] != values[:-1]))] if len(values) else values


def verify(sig: np.ndarray, pairs: np.ndarray, threshold: float, chunk: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
    """Pairs whose estimated Jaccard similarity reaches the threshold, with that estimate."""
    keep, scores = [], []
    for start in range(0, len(pairs), chunk):
        part, similarity = verify_part(sig, pairs[start:start + chunk], threshold)
        keep.append(part)
        scores.append(similarity)
    if not keep:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0)
    return np.concatenate(keep), np.concatenate(scores)


def verify_part(sig: np.ndarray, part: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of `part` that reach the threshold, and their estimated similarity."""
    similarity = (sig[part[:, 0]] == sig[part[:, 1]]).mean(axis=1)
    ok = similarity >= threshold
    return part[ok], similarity[ok]


def choose(pairs: np.ndarray, scores: np.ndarray) -> dict[int, tuple[int, float]]:
    """Greedy in priority order: j is removed when it is similar to an earlier record still kept.

    Returns removed index -> (kept index it duplicates, estimated similarity).
    """
    removed: dict[int, tuple[int, float]] = {}
    order = np.lexsort((pairs[:, 0], pairs[:, 1]))
    for (i, j), score in zip(pairs[order].tolist(), scores[order].tolist()):
        if j not in removed and i not in removed:
            removed[j] = (i, score)
    return removed


def near_duplicates(sig: np.ndarray, threshold: float) -> dict[int, tuple[int, float]]:
    """Signatures (rows in priority order) -> removed index -> (kept index, similarity)."""
    params = lsh_params(threshold, sig.shape[1])
    valid = sig[:, 0] != _EMPTY
    pairs = candidates(band(sig, params), valid)
    pairs, scores = verify(sig, pairs, threshold)
    return choose(pairs, scores)


def near_duplicates_datasketch(texts: list[str], threshold: float, num_perm: int = 128,
                               size: int = 5) -> dict[int, int]:
    """The reference: datasketch MinHash.update per shingle and MinHashLSH, no candidate check."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    removed: dict[int, int] = {}
    for index, text in enumerate(texts):
        minhash = MinHash(num_perm=num_perm)
        for start in range(max(1, len(text) - size + 1)):
            minhash.update(text[start:start + size].encode("utf-8"))
        hits = [int(key) for key in lsh.query(minhash)]
        if hits:
            removed[index] = min(hits)
        else:
            lsh.insert(str(index), minhash)
    return removed
