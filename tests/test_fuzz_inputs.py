"""Bad input never crashes a build and never loses a record (issue: nothing lost, nobody let in)."""
import json
import random
from collections import Counter

import polars as pl
import pytest

from curate.pipeline import build
from schemas.recipe import load_recipe
from tests.curate_helpers import general_rows, make_project, read_jsonl


def _bad_lines(rng: random.Random, count: int) -> list[bytes]:
    """Lines that are each one bad record, of many kinds (none contains a newline byte)."""
    makers = [
        lambda: b'{"instruction": "truncated", "output": "x',
        lambda: json.dumps({"instruction": rng.randint(0, 9), "output": "number as instruction"}).encode(),
        lambda: json.dumps({"instruction": "list output", "output": ["a", "b"]}).encode(),
        lambda: b"[" * 5000 + b"]" * 5000,
        lambda: json.dumps({"instruction": "deep", "output": json.loads("[" * 400 + "]" * 400)}).encode(),
        lambda: bytes(rng.choice([b for b in range(256) if b != 10]) for _ in range(rng.randint(1, 200))),
        lambda: b'{"instruction": "bad \xff\xfe utf8", "output": "x"}',
        lambda: b'{"instruction": "nan", "output": NaN}',
        lambda: b'{"instruction": "inf", "output": Infinity}',
        lambda: json.dumps({"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "x"}]}).encode(),
        lambda: json.dumps({"messages": [{"role": "user", "content": "ends on user"}]}).encode(),
        lambda: json.dumps({"conversations": [{"from": "gpt", "value": "x"}, {"from": "human", "value": "y"}]}).encode(),
        lambda: json.dumps({"unknown": "fields", "only": True}).encode(),
        lambda: json.dumps({"instruction": "empty answer", "output": "   "}).encode(),
        lambda: json.dumps({"query": None, "response": "null query"}).encode(),
        lambda: b'{"instruction": "lone surrogate \\ud800", "output": "x"}',
        lambda: b"null",
        lambda: b'"just a string"',
        lambda: json.dumps({"instruction": "x" * 50, "output": "huge " * 2_100_000}).encode(),  # ~10 MB line
    ]
    lines = []
    for index in range(count):
        maker = makers[index % len(makers)] if index < len(makers) else rng.choice(makers[:-1])
        lines.append(maker())
    return lines


@pytest.mark.parametrize("seed", [1])
def test_fuzzed_sources_lose_nothing(tmp_path, seed):
    rng = random.Random(seed)
    recipe_path = make_project(tmp_path, general_per_lang=1)
    good = general_rows("en", 300, start=100)
    bad = _bad_lines(rng, 1100)
    mixed = [(json.dumps(r).encode(), "good") for r in good] + [(b, "bad") for b in bad]
    rng.shuffle(mixed)
    body = b"\xef\xbb\xbf" + b"\r\n".join(line for line, _ in mixed) + b"\r\n"
    (tmp_path / "general" / "fuzz.jsonl").write_bytes(body)
    (tmp_path / "general" / "empty.jsonl").write_bytes(b"")
    (tmp_path / "general" / "empty.json").write_bytes(b"  \n")
    (tmp_path / "general" / "junk.json").write_bytes(b"\x00\x01\x02 not json at all")
    pl.DataFrame({"instruction": ["csv ok", None, "csv nan"], "output": ["fine", "no instruction", None]}).write_csv(
        tmp_path / "general" / "table.csv")
    pl.DataFrame({"instruction": ["pq ok", "pq nan"], "output": [1.5, float("nan")]}).write_parquet(
        tmp_path / "general" / "table.parquet")
    text = recipe_path.read_text(encoding="utf-8")
    extra = "".join(f"- path: general/{name}\n  kind: general\n" for name in
                    ("fuzz.jsonl", "empty.jsonl", "empty.json", "junk.json", "table.csv", "table.parquet"))
    text = text.replace("sources:\n", "sources:\n" + extra, 1).replace("'1:4'", "'1:10'")
    text = text.replace("mix:\n  ratio: '1:10'", "mix:\n  ratio: '1:10'\n  allow_out_of_band: true")
    recipe_path.write_text(text, encoding="utf-8")

    result = build(load_recipe(recipe_path))
    version = result.version_dir
    kept = [r for name in ("train.jsonl", "val.jsonl") for r in read_jsonl(version / name)]
    rejects = read_jsonl(version / "rejects.jsonl")
    fuzz_kept = [r for r in kept if r["meta"]["source"] == "general/fuzz.jsonl"]
    fuzz_rejected = [r for r in rejects if r["source"] == "general/fuzz.jsonl"]
    # every good record reaches the bundle (or is left out by the mix, which is also recorded)
    mixed_out = [r for r in fuzz_rejected if r["stage"] == "mix"]
    assert len(fuzz_kept) + len(mixed_out) == len(good)
    # every bad one reaches rejects with a reason
    assert len(fuzz_rejected) - len(mixed_out) == len(bad)
    assert all(r["reason"] and r["message"] and r["line"] for r in fuzz_rejected)
    reasons = Counter(r["reason"] for r in fuzz_rejected)
    assert {"bad_json", "bad_utf8", "wrong_type", "not_an_object", "unknown_shape", "empty_answer",
            "ends_not_on_assistant", "role_order", "too_long", "bad_unicode"} <= set(reasons), reasons
    # the counts add up, per source and overall
    manifest = result.manifest
    for source in manifest.sources:
        assert source.rows - source.sampled_out == source.kept + source.rejected + source.mixed_out
    assert manifest.counts["read"] == manifest.counts["kept"] + manifest.counts["rejected"] + manifest.counts["mixed_out"]
    assert manifest.counts["rejects_file"] == len(rejects)
    by_path = {s.path: s for s in manifest.sources}
    assert by_path["general/empty.jsonl"].rows == 0 and by_path["general/empty.json"].rows == 0
    assert by_path["general/junk.json"].rejected == 1
    csv = by_path["general/table.csv"]
    assert (csv.rows, csv.kept + csv.mixed_out, csv.rejected) == (3, 1, 2)
    assert by_path["general/table.parquet"].rows == 2 and by_path["general/table.parquet"].rejected == 2
    # the bundle is valid JSON, UTF-8, one record per line
    for name in ("train.jsonl", "val.jsonl", "rejects.jsonl"):
        (version / name).read_bytes().decode("utf-8")
