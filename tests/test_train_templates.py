"""Built-in chat templates for base models: one BOS, the end-of-turn token trained, markers checked."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from train.cli import main
from train.encode import IGNORE_INDEX, encode_messages, end_of_turn_token
from train.errors import TrainError
from train.model import apply_template, load_tokenizer, template_token_ids
from train.templates import BUILTIN_TEMPLATES, template_for_model_type

MARKERS = ["<bos>", "<start_of_turn>", "<end_of_turn>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
           "<|begin_of_text|>"]


@pytest.fixture(scope="module")
def base_tokenizer_dir(tmp_path_factory) -> Path:
    """A tokenizer that adds BOS itself (as Gemma's and Llama's do) and ships no chat template, in a folder
    whose config.json says gemma3_text: what a converted base checkpoint looks like."""
    from tokenizers.processors import TemplateProcessing

    from train.tiny import build_tokenizer

    tokenizer = build_tokenizer(["Who are you? I am Grace.", "你是谁？我是小格。"])
    tokenizer.add_special_tokens({"additional_special_tokens": MARKERS})
    tokenizer.bos_token = "<bos>"
    bos = tokenizer.convert_tokens_to_ids("<bos>")
    tokenizer.backend_tokenizer.post_processor = TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", bos)])
    tokenizer.chat_template = None
    out = tmp_path_factory.mktemp("base-tok")
    tokenizer.save_pretrained(out)
    (out / "config.json").write_text(json.dumps({"model_type": "gemma3_text"}), encoding="utf-8")
    return out


def test_family_guess():
    assert template_for_model_type("gemma3_text") == "gemma"
    assert template_for_model_type("llama") == "llama3"
    assert template_for_model_type("qwen2") == "chatml"
    assert template_for_model_type("bert") is None


def test_base_model_gets_its_family_template(base_tokenizer_dir):
    logs = []
    tokenizer = load_tokenizer(str(base_tokenizer_dir), log=logs.append)
    assert tokenizer.curatune_template == "gemma" and "built-in 'gemma'" in logs[0]
    assert tokenizer.chat_template == BUILTIN_TEMPLATES["gemma"][0]
    assert template_token_ids(tokenizer) == tokenizer.convert_tokens_to_ids(["<start_of_turn>", "<end_of_turn>"])
    assert tokenizer("hi")["input_ids"][0] == tokenizer.bos_token_id  # the tokenizer adds BOS by itself


@pytest.mark.parametrize("template,eot", [("gemma", "<end_of_turn>"), ("llama3", "<|eot_id|>")])
def test_one_bos_and_end_of_turn_trained(base_tokenizer_dir, template, eot):
    tokenizer = load_tokenizer(str(base_tokenizer_dir), template=template)
    if template == "llama3":
        tokenizer.bos_token = "<|begin_of_text|>"
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Who are you?"},
                {"role": "assistant", "content": "I am Grace."}, {"role": "user", "content": "你是谁？"},
                {"role": "assistant", "content": "我是小格。"}]
    assert end_of_turn_token(tokenizer) == eot
    encoded = encode_messages(tokenizer, messages)
    bos = tokenizer.bos_token_id
    assert encoded.input_ids[0] == bos and encoded.input_ids.count(bos) == 1  # never twice
    eot_id = tokenizer.convert_tokens_to_ids(eot)
    trained = [t for t, label in zip(encoded.input_ids, encoded.labels) if label != IGNORE_INDEX]
    assert trained.count(eot_id) == 2  # each assistant turn's own end-of-turn token, and no other
    assert tokenizer.decode(trained) == f"I am Grace.{eot}我是小格。{eot}"
    rendered = tokenizer.apply_chat_template(messages[:3], tokenize=False)
    if template == "gemma":  # Gemma has no system role: the system text leads the first user turn
        assert rendered == ("<bos><start_of_turn>user\nBe brief.\n\nWho are you?<end_of_turn>\n"
                            "<start_of_turn>model\nI am Grace.<end_of_turn>\n")


def test_template_needs_its_markers(tiny_model):
    tokenizer = load_tokenizer(str(tiny_model))
    assert tokenizer.curatune_template is None and template_token_ids(tokenizer) == []  # its own template
    with pytest.raises(TrainError, match="--template gemma needs <start_of_turn> as one token"):
        apply_template(tokenizer, "gemma", str(tiny_model))


def test_missing_gguf_is_one_line(identity_bundle, tmp_path):
    result = CliRunner().invoke(main, ["run", str(identity_bundle), "--model", str(tmp_path / "nope.gguf"),
                                       "--output_dir", str(tmp_path / "out")], catch_exceptions=False)
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("train: cannot load model")
    assert "no such GGUF file" in result.stderr


@pytest.mark.slow
def test_trainable_template_tokens_saved_and_loaded(base_tokenizer_dir, tiny_model, identity_bundle, tmp_path):
    """--template on a model makes the marker rows trainable; the adapter carries them and chat loads it."""
    # The tiny model's own tokenizer lacks Gemma markers; use chatml explicitly: its markers exist.
    result = CliRunner().invoke(main, ["run", str(identity_bundle), "--model", str(tiny_model), "--template", "chatml",
                                       "--output_dir", str(tmp_path / "o"), "--max_steps", "2"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert "training the embedding rows of its markers" in result.stderr
    adapter = Path(result.stdout.strip().splitlines()[-1])
    from safetensors.torch import load_file

    weights = load_file(str(adapter / "adapter_model.safetensors"))
    assert any("trainable_tokens" in key for key in weights)
    chat = CliRunner().invoke(main, ["chat", str(adapter), "--prompt", "Who are you?", "--max_new_tokens", "4"],
                              catch_exceptions=False)
    assert chat.exit_code == 0, chat.stderr
