"""Exact duplicates on normalised text: NFKC, case folded, whitespace and punctuation removed."""
from __future__ import annotations

import hashlib
import re
import unicodedata

import numpy as np

_NOT_WORD = re.compile(r"[\W_]+")
_ASCII_NOT_WORD = bytes(c for c in range(128) if not chr(c).isalnum())


def normalise(text: str) -> str:
    """The text two records must share to count as the same: 'Who are you？' == 'who are you?'.

    Case folded, everything but letters and digits dropped, then NFKC. Dropping first leaves NFKC
    little to do (full-width punctuation, the usual reason Chinese text is not NFKC, is gone),
    which makes this several times faster on Chinese than normalising first. ASCII text takes a
    byte-level path with the same result (its letters and digits are [A-Za-z0-9]; it is NFKC).
    """
    if text.isascii():
        return text.encode("ascii").lower().translate(None, _ASCII_NOT_WORD).decode("ascii")
    return _finish(_NOT_WORD.sub("", text.casefold()))


def _finish(text: str) -> str:
    """`normalise`'s second step, on text already case folded and stripped: NFKC when it is not."""
    if unicodedata.is_normalized("NFKC", text):
        return text
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", text).casefold())


_RECORD, _TURN = "\x1e", "\x1f"
_DROP, _EXPANDS = np.uint32(0xFFFFFFFE), np.uint32(0xFFFFFFFF)
_TABLE: np.ndarray | None = None


def char_table() -> np.ndarray:
    """Per code point, what `normalise`'s first step makes of it: its case folding when that is one
    character `_NOT_WORD` does not match, _DROP when the regex drops it, _EXPANDS when case folding
    gives several characters (ß -> ss). Built from str.casefold and the regex themselves, once per
    process (the build calls this in the parent before its workers fork)."""
    global _TABLE
    if _TABLE is None:
        fold = np.arange(0x110000, dtype=np.uint32)
        for start in range(0, 0x110000, 256):  # casefold is per character, so whole blocks can be folded
            block = "".join(map(chr, range(start, start + 256)))
            folded = block.casefold()
            if folded == block:
                continue
            if len(folded) == len(block):
                fold[start:start + 256] = np.frombuffer(folded.encode("utf-32-le", "surrogatepass"), np.uint32)
                continue
            for code in range(start, start + 256):
                one = chr(code).casefold()
                fold[code] = ord(one) if len(one) == 1 else _EXPANDS
        word = np.ones(0x110000, dtype=bool)
        for match in _NOT_WORD.finditer("".join(map(chr, range(0x110000)))):
            word[match.start():match.end()] = False
        expands = fold == _EXPANDS
        table = np.where(word[np.where(expands, 0, fold)], fold, _DROP)
        table[expands] = _EXPANDS
        _TABLE = table
    return _TABLE


def normalise_many(conversations: list[list[str]]) -> list[str]:
    """Each conversation's turns normalised and joined by "\x1f", as
    `"\x1f".join(normalise(t) for t in turns)` would give, for a whole chunk at once.

    ASCII conversations take `normalise`'s byte path. The others are laid out as one array of code
    points, mapped through one lookup table (case folding and the regex in one gather), and cut
    back into conversations at the separators put between them (those characters inside a turn
    are dropped like any other): a few array passes instead of two string passes and a regex per
    turn, 3x faster on Chinese. A conversation holding a character whose folding is several, or
    whose result is not NFKC, goes the per-turn way, which settles those cases (U+001E/F are NFKC
    starters that never compose, so the joined text is NFKC exactly when each turn's is).
    """
    out = [""] * len(conversations)
    wide = []
    for index, turns in enumerate(conversations):
        if all(turn.isascii() for turn in turns):
            out[index] = _TURN.join(normalise(turn) for turn in turns)
        else:
            wide.append(index)
    if not wide:
        return out
    turns_of = [conversations[index] or [""] for index in wide]
    lengths = np.fromiter((len(turn) for turns in turns_of for turn in turns), dtype=np.int64)
    raw = np.frombuffer(_RECORD.join(_TURN.join(turns) for turns in turns_of).encode("utf-32-le", "surrogatepass"),
                        dtype=np.uint32)
    codes = char_table()[raw]
    separators = np.cumsum(lengths)[:-1] + np.arange(len(lengths) - 1)
    codes[separators] = raw[separators]
    expands = np.flatnonzero(codes == _EXPANDS)
    pieces = codes[codes < _DROP].tobytes().decode("utf-32-le", "surrogatepass").split(_RECORD)
    slow = set()
    if len(expands):
        starts = np.cumsum([0] + [sum(map(len, turns)) + len(turns) for turns in turns_of])[:-1]
        slow = set((np.searchsorted(starts, expands, side="right") - 1).tolist())
    for position, (index, piece) in enumerate(zip(wide, pieces, strict=True)):
        if position in slow:
            piece = _TURN.join(normalise(turn) for turn in conversations[index])
        elif not unicodedata.is_normalized("NFKC", piece):
            piece = _TURN.join(_finish(turn) for turn in piece.split(_TURN))
        out[index] = piece
    return out


def exact_key_text(normalised: str) -> bytes:
    return hashlib.blake2b(normalised.encode("utf-8"), digest_size=16).digest()


def find_exact_duplicates(keys: list[bytes] | np.ndarray) -> dict[int, int]:
    """index -> index of the first record with the same key (the one kept).

    Sorted, not hashed: 16-byte keys as a numpy array cost 16 bytes each, a dict of them ~100. A
    stable sort puts each key's first record first in its run (half the time and memory of np.unique).
    """
    keys = np.asarray(keys, dtype="S16")
    if not len(keys):
        return {}
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    first = np.concatenate(([True], ordered[1:] != ordered[:-1]))
    del ordered
    twin = order[first][np.cumsum(first) - 1]
    dupes = ~first
    return dict(zip(order[dupes].tolist(), twin[dupes].tolist(), strict=True))
