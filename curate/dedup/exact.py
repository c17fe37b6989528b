"""Exact duplicates on normalised text: NFKC, case folded, whitespace and punctuation removed."""
from __future__ import annotations

import hashlib
import re
import unicodedata

import numpy as np

from schemas.record import Record

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
    text = _NOT_WORD.sub("", text.casefold())
    if unicodedata.is_normalized("NFKC", text):
        return text
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", text).casefold())


def exact_key(record: Record) -> bytes:
    """A 16-byte digest of the conversation (system prompt aside) after normalising each turn."""
    return exact_key_text("\x1f".join(normalise(m.content) for m in record.messages if m.role != "system"))


def exact_key_text(normalised: str) -> bytes:
    return hashlib.blake2b(normalised.encode("utf-8"), digest_size=16).digest()


def find_exact_duplicates(keys: list[bytes] | np.ndarray) -> dict[int, int]:
    """index -> index of the first record with the same key (the one kept).

    Sorted, not hashed: 16-byte keys as a numpy array cost 16 bytes each, a dict of them ~100.
    """
    keys = np.asarray(keys, dtype="S16")
    if not len(keys):
        return {}
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    twin = first[inverse.reshape(-1)]
    dupes = np.flatnonzero(twin != np.arange(len(keys)))
    return dict(zip(dupes.tolist(), twin[dupes].tolist(), strict=True))
