"""Plain rows skip validation (curate.quick_rows): whatever they become must be exactly what the
validating way makes of them, and anything else must go the validating way."""
import random

from curate.quick_rows import quick_record
from curate.raw_row import RawRow
from curate.shapes import _validated, row_to_record
from schemas.record import Record

VALUES = ["", " ", "hello", "你好，世界", "  spaced  ", "\n", None, 3, 1.5, True, [], ["a"], {"a": 1}, [["q", "a"]]]
KEYS = ["instruction", "input", "output", "query", "response", "system", "history", "tag", "extra"]


TEXTS = ["hello", "你好，世界", "  spaced  ", "zh", "en", "Who made you?"]


def random_row(rng: random.Random) -> dict:
    """Mostly strings, so that many rows are plain; sometimes anything."""
    return {key: rng.choice(TEXTS if rng.random() < 0.8 else VALUES)
            for key in rng.sample(KEYS, rng.randrange(1, len(KEYS)))}


def test_quick_records_equal_validated_ones_and_the_rest_is_left_to_validation():
    rng = random.Random(5)
    quick = 0
    for number in range(20_000):
        row = random_row(rng)
        raw = RawRow("f.jsonl", number + 1, row=row, index=rng.choice([None, 2]))
        for shape in ("alpaca", "query_response"):
            system = rng.choice([None, "", "Be brief."])
            lang = rng.choice([None, "en"])
            fast = quick_record(row, shape, raw, kind="domain", system=system, lang=lang)
            slow = _validated(raw, row, shape, kind="domain", system=system, lang=lang)
            if fast is not None:
                quick += 1
                assert isinstance(slow, Record), (row, shape, slow)
                assert fast.model_dump_json(exclude_none=True) == slow.model_dump_json(exclude_none=True)
                assert fast.to_json_dict() == slow.to_json_dict()
    assert quick > 2000  # the plain rows did take the quick way


def test_other_shapes_and_rejects_take_the_validating_way():
    raw = RawRow("f.jsonl", 1, row={"messages": [{"role": "user", "content": "hi"}]})
    assert quick_record(raw.row, "messages", raw, kind="general", system=None, lang=None) is None
    blank = row_to_record(RawRow("f.jsonl", 2, row={"instruction": "q", "output": "  "}), kind="general")
    assert blank.reason == "empty_answer"
    typed = row_to_record(RawRow("f.jsonl", 3, row={"instruction": "q", "output": 3}), kind="general")
    assert typed.reason == "wrong_type" and "output" in typed.message


def test_json_lines_fail_with_json_loads_own_messages():
    """The shared decoder keeps json.loads's wording, a BOM on a later line included."""
    import json

    from curate.raw_row import parse_json_line, reject_nan

    for text in ('\ufeff{"a": 1}', '{"a": NaN}', '{"a": 1} x', '{"a": ', '[1]'):
        row = parse_json_line("f.jsonl", 2, text.encode("utf-8"))
        try:
            value = json.loads(text, parse_constant=reject_nan)
        except ValueError as exc:
            assert row.error == "bad_json" and row.message == f"invalid JSON: {str(exc)[:200]}"
        else:
            assert row.row == value or row.error == "not_an_object"
