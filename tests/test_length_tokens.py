"""Token limits use a local tokenizer: a record over max_tokens is rejected with its count."""
from curate.filters.length import LengthFilter
from curate.pipeline import build
from schemas.recipe import LengthConfig, load_recipe
from schemas.record import Record
from tests.curate_helpers import make_project, read_jsonl


def _record(text: str) -> Record:
    return Record.model_validate({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": text}],
                                  "meta": {"id": "t:1", "source": "t", "line": 1}})


def test_char_limits_per_record_and_turn():
    check = LengthFilter(LengthConfig(min_chars=3, max_chars=50, max_turn_chars=20))
    assert check(_record("fine answer")) is None
    assert LengthFilter(LengthConfig(min_turn_chars=2))(_record("fine"))[0] == "turn_too_short"  # user turn "q"
    assert check(_record("x"))[0] == "too_short"
    assert check(_record("y" * 30))[0] == "turn_too_long"
    assert check(_record("z" * 60))[0] == "too_long"


def test_token_limit_with_a_local_tokenizer(tiny_model):
    from transformers import AutoTokenizer

    sentence = "Paris is the capital of France."
    tokens = len(AutoTokenizer.from_pretrained(tiny_model)(f"q\n{sentence}", add_special_tokens=False)["input_ids"])
    check = LengthFilter(LengthConfig(max_tokens=tokens, tokenizer=str(tiny_model)))
    assert check(_record(sentence)) is None
    reason, message = check(_record(sentence * 3))
    assert reason == "too_many_tokens" and f"above filters.length.max_tokens={tokens}" in message


def test_build_applies_token_limit(tmp_path, tiny_model):
    recipe = make_project(tmp_path, recipe_extra={"filters": {"length": {"max_tokens": 150, "tokenizer": str(tiny_model)}}})
    with open(tmp_path / "general" / "en.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"instruction": "Say it long.", "output": "' + "A long answer that keeps going. " * 80 + '"}\n')
    version = build(load_recipe(recipe, data_roots=[tiny_model])).version_dir
    reasons = [r["reason"] for r in read_jsonl(version / "rejects.jsonl")]
    assert "too_many_tokens" in reasons
