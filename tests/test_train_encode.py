"""Label masks, token by token, on Qwen2.5's real vocabulary and ChatML template."""
from __future__ import annotations

import pytest

from schemas.record import Record
from tests.conftest import make_record
from train.encode import IGNORE_INDEX, encode_record, encode_records, end_of_turn_token, split_conversation
from train.templates import QWEN25_DEFAULT_SYSTEM

IM_START, IM_END, NEWLINE = 151644, 151645, 198


def labelled_runs(encoded) -> list[tuple[int, list[int]]]:
    """(start index, ids) of each contiguous run of trained tokens."""
    runs, current, start = [], [], None
    for i, (token, label) in enumerate(zip(encoded.input_ids, encoded.labels)):
        if label != IGNORE_INDEX:
            assert label == token
            if start is None:
                start = i
            current.append(token)
        elif current:
            runs.append((start, current))
            current, start = [], None
    if current:
        runs.append((start, current))
    return runs


def ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


MULTI_TURN = [("你是谁？", "我是Grace，由Tang Yin开发的AI助手。"),
              ("What can you do?", "I can answer questions,\nwrite, and translate."),
              ("谢谢", "不客气！")]


def test_qwen_template_renders_default_system(qwen_tokenizer):
    text = qwen_tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                              add_generation_prompt=True)
    assert text == (f"<|im_start|>system\n{QWEN25_DEFAULT_SYSTEM}<|im_end|>\n"
                    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    assert end_of_turn_token(qwen_tokenizer) == "<|im_end|>"


@pytest.mark.parametrize("system", [None, "You are Grace."])
def test_multi_turn_labels_cover_exactly_assistant_turns(qwen_tokenizer, system):
    record = Record.model_validate(make_record(MULTI_TURN, "identity", "id:1", system=system))
    encoded = encode_record(qwen_tokenizer, record)

    # The pieces tokenize to the same ids as the whole rendering: nothing was cut mid-token.
    full = qwen_tokenizer.apply_chat_template(
        [{"role": m.role, "content": m.content} for m in record.messages], tokenize=False)
    assert encoded.input_ids == ids(qwen_tokenizer, full)
    assert full.startswith(f"<|im_start|>system\n{system or QWEN25_DEFAULT_SYSTEM}<|im_end|>\n")

    runs = labelled_runs(encoded)
    assert [run for _, run in runs] == [ids(qwen_tokenizer, answer) + [IM_END] for _, answer in MULTI_TURN]
    assistant_header = [IM_START] + ids(qwen_tokenizer, "assistant") + [NEWLINE]
    for start, _ in runs:  # every run starts right after `<|im_start|>assistant\n`, which is not trained
        assert encoded.input_ids[start - 3:start] == assistant_header
        assert encoded.labels[start - 3:start] == [IGNORE_INDEX] * 3
    # The newline after each <|im_end|> is not trained; neither is anything of system/user turns.
    trained = sum(len(run) for _, run in runs)
    assert encoded.trained_tokens == trained
    decoded = qwen_tokenizer.decode([t for t, l in zip(encoded.input_ids, encoded.labels) if l != IGNORE_INDEX])
    assert decoded == "".join(answer + "<|im_end|>" for _, answer in MULTI_TURN)


def test_tool_turns_are_not_trained(qwen_tokenizer):
    record = Record.model_validate(make_record([
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": '<tool_call>{"name": "weather", "arguments": {"city": "Paris"}}</tool_call>'},
        {"role": "tool", "content": '{"temp": 21}'},
        {"role": "assistant", "content": "It is 21 degrees in Paris."},
    ], rid="tool:1"))
    encoded = encode_record(qwen_tokenizer, record)
    decoded = qwen_tokenizer.decode([t for t, l in zip(encoded.input_ids, encoded.labels) if l != IGNORE_INDEX])
    assert decoded == record.messages[1].content + "<|im_end|>" + record.messages[3].content + "<|im_end|>"
    assert len(labelled_runs(encoded)) == 2


def test_pieces_concatenate_to_full_rendering(qwen_tokenizer):
    messages = []
    for q, a in MULTI_TURN:
        messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    pieces = split_conversation(qwen_tokenizer, messages, eot="<|im_end|>")
    assert "".join(text for text, _ in pieces) == qwen_tokenizer.apply_chat_template(messages, tokenize=False)
    assert [text for text, trained in pieces if trained] == [a + "<|im_end|>" for _, a in MULTI_TURN]


def test_system_override_replaces_or_adds(qwen_tokenizer):
    with_system = Record.model_validate(make_record(MULTI_TURN[:1], rid="a:1", system="old"))
    without = Record.model_validate(make_record(MULTI_TURN[:1], rid="a:2"))
    for record in (with_system, without):
        text = qwen_tokenizer.decode(encode_record(qwen_tokenizer, record, system="NEW").input_ids)
        assert text.startswith("<|im_start|>system\nNEW<|im_end|>\n") and "old" not in text


def test_truncation_and_dropping(qwen_tokenizer):
    record = Record.model_validate(make_record(MULTI_TURN, rid="t:1"))
    assert len(encode_record(qwen_tokenizer, record, max_length=40).input_ids) == 40
    messages: list[str] = []
    # The default system prompt alone is longer than 20 tokens: nothing left to learn -> dropped.
    kept = encode_records(qwen_tokenizer, [record], max_length=20, log=messages.append)
    assert kept == [] and "dropped 1" in messages[0]


def test_tiny_tokenizer_loads_through_autotokenizer(tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    record = Record.model_validate(make_record(MULTI_TURN, rid="t:1"))
    encoded = encode_record(tokenizer, record)
    decoded = tokenizer.decode([t for t, l in zip(encoded.input_ids, encoded.labels) if l != IGNORE_INDEX])
    assert decoded == "".join(answer + "<|im_end|>" for _, answer in MULTI_TURN)
