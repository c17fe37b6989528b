"""The built-in templates mark the assistant's part with {% generation %}, so transformers'
assistant mask (TRL's assistant_only_loss) works and agrees with what train.encode learns."""
from __future__ import annotations

import pytest

from train.encode import IGNORE_INDEX, encode_messages, split_conversation
from train.templates import BUILTIN_TEMPLATES

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "",
     "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
    {"role": "tool", "content": '{"temp": 21}'},
    {"role": "assistant", "content": "It is 21 degrees."},
    {"role": "user", "content": "Thanks!"},
    {"role": "assistant", "content": "You are welcome."},
]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]


@pytest.mark.parametrize("name", sorted(BUILTIN_TEMPLATES))
def test_assistant_mask_covers_what_encode_trains(name):
    from train.tiny import build_tokenizer

    tiny_tokenizer = build_tokenizer()
    template, markers = BUILTIN_TEMPLATES[name]
    tiny_tokenizer.add_tokens(list(markers), special_tokens=True)  # as in the model family's own vocabulary
    tiny_tokenizer.chat_template = template
    assert "{% generation %}" in tiny_tokenizer.chat_template.replace("{%- generation %}", "{% generation %}")
    out = tiny_tokenizer.apply_chat_template(CONVERSATION, tools=TOOLS, tokenize=True, return_dict=True,
                                             return_assistant_tokens_mask=True)
    masked = tiny_tokenizer.decode([t for t, m in zip(out["input_ids"], out["assistant_masks"]) if m])
    trained = "".join(text for text, learn in split_conversation(tiny_tokenizer, CONVERSATION, TOOLS) if learn)
    assert masked == trained
    assert "It is 21 degrees." in masked and "get_weather" in masked and "Paris" in masked
    assert "temp" not in masked and "Weather in Paris" not in masked


def test_chatml_mask_matches_encode_labels_token_for_token(qwen_tokenizer):
    out = qwen_tokenizer.apply_chat_template(CONVERSATION, tools=TOOLS, tokenize=True, return_dict=True,
                                             return_assistant_tokens_mask=True)
    encoded = encode_messages(qwen_tokenizer, CONVERSATION, TOOLS)
    assert encoded.input_ids == list(out["input_ids"])
    assert [label != IGNORE_INDEX for label in encoded.labels] == [bool(m) for m in out["assistant_masks"]]


def test_conversations_without_tools_render_as_before(qwen_tokenizer):
    """ChatML without tools: the same text Qwen2.5 renders (the markers add nothing to the output)."""
    text = qwen_tokenizer.apply_chat_template(CONVERSATION[:2] + [{"role": "assistant", "content": "Hi."}],
                                              tokenize=False)
    assert text == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWeather in Paris?<|im_end|>\n"
                    "<|im_start|>assistant\nHi.<|im_end|>\n")
