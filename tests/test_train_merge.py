"""merge (adapter folded into the base), full fine-tuning and the 4-bit guard."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import GENERAL, IDENTITY
from train.chat import generate_answer, load_for_chat
from train.cli import main


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.slow
def test_merged_model_answers_like_adapter(identity_bundle, tiny_model, tmp_path):
    run = invoke("run", identity_bundle, "--model", tiny_model, "--output_dir", tmp_path / "run",
                 "--learning_rate", "5e-3", "--max_steps", 40, "--per_device_train_batch_size", 4)
    assert run.exit_code == 0, run.stderr
    adapter = run.stdout.strip().splitlines()[-1]
    merged = invoke("merge", adapter, "--output_dir", tmp_path / "merged")
    assert merged.exit_code == 0, merged.stderr
    merged_dir = Path(merged.stdout.strip().splitlines()[-1])
    assert (merged_dir / "model.safetensors").is_file() and not (merged_dir / "adapter_config.json").exists()
    with_adapter, tok_a = load_for_chat(adapter)
    plain, tok_m = load_for_chat(merged_dir)
    for question, _ in IDENTITY + GENERAL:
        messages = [{"role": "user", "content": question}]
        assert generate_answer(plain, tok_m, messages, max_new_tokens=24) == \
            generate_answer(with_adapter, tok_a, messages, max_new_tokens=24)
    chat = invoke("chat", merged_dir, "--prompt", IDENTITY[0][0], "--max_new_tokens", 24)
    assert chat.exit_code == 0, chat.stderr


def test_full_fine_tuning_saves_a_model(identity_bundle, tiny_model, tmp_path):
    run = invoke("run", identity_bundle, "--model", tiny_model, "--output_dir", tmp_path / "full",
                 "--train_type", "full", "--max_steps", 2, "--learning_rate", "1e-3")
    assert run.exit_code == 0, run.stderr
    out = Path(run.stdout.strip().splitlines()[-1])
    assert out.name == "model" and (out / "model.safetensors").is_file() and (out / "curatune_train.json").is_file()
    counts = re.search(r"parameters: ([\d,]+) trainable of ([\d,]+)", run.stderr)
    assert counts and counts.group(1) == counts.group(2)
    chat = invoke("chat", out, "--prompt", "hi", "--max_new_tokens", 4)
    assert chat.exit_code == 0, chat.stderr


def test_quant_4bit_without_cuda_is_one_line(identity_bundle, tiny_model, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    run = invoke("run", identity_bundle, "--model", tiny_model, "--output_dir", tmp_path / "q", "--quant", "4bit")
    assert run.exit_code == 1
    assert run.stderr.strip().splitlines()[-1].startswith("train: --quant 4bit needs")
