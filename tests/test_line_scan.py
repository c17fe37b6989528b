"""The block-by-block scan equals the plain line-by-line one it replaced, on awkward files."""
import hashlib
import random

import pytest

from curate import line_scan


def plain_scan(path, every=0):
    digest, count, cuts, offset = hashlib.sha256(), 0, [], 0
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            digest.update(line)
            if not line.isspace():
                if every and count % every == 0:
                    cuts.append((offset, number))
                count += 1
            offset += len(line)
    return digest.hexdigest(), count, cuts


PIECES = [b'{"a": 1}', b"", b" ", b"  \t", b"\r", b" x", b"\x0b\x0c", b"\xe4\xb8\xad\xe6\x96\x87", b'{"long": "' + b"y" * 40 + b'"}']


@pytest.mark.parametrize("seed", range(40))
def test_scan_equals_the_line_by_line_scan(tmp_path, monkeypatch, seed):
    rng = random.Random(seed)
    lines = [rng.choice(PIECES) + rng.choice([b"", b" ", b"\r"]) for _ in range(rng.randint(0, 60))]
    data = b"\n".join(lines) + rng.choice([b"", b"\n", b"  ", b"\n\n"])
    path = tmp_path / "f.jsonl"
    path.write_bytes(data)
    monkeypatch.setattr(line_scan, "SCAN_BLOCK", rng.choice([1, 2, 3, 7, 16, 1 << 22]))
    for every in (0, 1, 3):
        assert line_scan.scan_jsonl(path, every) == plain_scan(path, every)
