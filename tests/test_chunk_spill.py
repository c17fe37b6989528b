"""Chunks spilled by several processes, each to files of its own, read back by position: the
records and signature rows come back as if one file held them all in arrival order."""
import numpy as np

from curate.chunk_spill import ProcessSpill
from curate.dedup.minhash import _EMPTY, band, lsh_params
from curate.kept_store import KeptChunk, KeptStore, Prepared
from curate.prepare import ChunkResult
from curate.signature_spill import SignatureSpill

PERM = 16


def _chunk(rng: np.random.Generator, start: int, n: int) -> ChunkResult:
    items = [Prepared(line=f'{{"n": {start + i}}}'.encode() * int(rng.integers(1, 5)), id=f"f:{start + i}",
                      file="f", row=start + i, kind="general", source=1, lang="en", key=bytes(16),
                      summary=(start + i,), tools=False) for i in range(n)]
    signatures = rng.integers(0, 2**32 - 1, size=(n, PERM), dtype=np.uint32)
    signatures[rng.random(n) < 0.2] = _EMPTY  # records without shingles
    return ChunkResult(KeptChunk.pack(items), [], signatures, band(signatures, lsh_params(0.8, PERM)))


def test_positions_read_back_across_the_spills_of_several_processes(tmp_path):
    rng = np.random.default_rng(7)
    writers = [ProcessSpill(tmp_path) for _ in range(3)]
    for number, writer in enumerate(writers):  # three processes: three pairs of files
        writer.kept_path = writer.kept_path.with_name(f"{writer.kept_path.name}-{number}")
        writer.sig_path = writer.sig_path.with_name(f"{writer.sig_path.name}-{number}")
    store = KeptStore(tmp_path)
    spill = SignatureSpill(tmp_path, PERM, lsh_params(0.8, PERM))
    lines, signatures, start = [], [], 0
    for _ in range(12):
        n = int(rng.integers(0, 40))
        result = _chunk(rng, start, n)
        lines += [f'{{"n": {start + i}}}' for i in range(n)]
        signatures.append(result.signatures.copy())
        result = writers[int(rng.integers(0, 3))].put(result)
        assert result.kept.blob == b"" and len(result.signatures) == 0
        if n:
            store.add(result.kept, 1)
            spill.add(result.sig_at, result.valid, result.band_keys)
        start += n
    store.close_writing()
    spill.close_writing()
    every = np.concatenate(signatures)
    assert len(store) == len(every) == start and len(store.spills.paths) == 3
    positions = rng.permutation(start)[: start // 2]
    got = list(store.get_many(positions))
    assert [item.row for item in got] == positions.tolist()
    assert all(item.line.startswith(lines[p].encode()) for item, p in zip(got, positions))
    assert store.ids(positions) == [f"f:{p}" for p in positions]
    rows = spill.signature_rows(positions)
    asked = rng.integers(0, len(positions), size=50)
    assert np.array_equal(rows[asked], every[positions[asked]])
    assert np.array_equal(spill.valid, every[:, 0] != _EMPTY)
    store.discard()
    spill.discard()
    assert not list(tmp_path.iterdir())
