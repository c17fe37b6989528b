"""merge (adapter folded into the base), full fine-tuning and the 4-bit guard."""
from __future__ import annotations

import json
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
    # `train eval` on the merged folder: its base model answers "before", the merged model "after",
    # and the answers equal those of the adapter evaluated with the adapter switched off and on.
    results = {}
    for name, folder in (("adapter", adapter), ("merged", merged_dir)):
        out = tmp_path / f"{name}.json"
        evaluated = invoke("eval", folder, "--output", out, "--max_new_tokens", 16, "--train_questions", 4)
        assert evaluated.exit_code == 0, evaluated.stderr
        results[name] = json.loads(out.read_text(encoding="utf-8"))
    assert results["merged"]["kind"] == "model" and results["adapter"]["kind"] == "adapter"
    pairs = [[(a["before"], a["after"]) for a in results[name]["answers"]] for name in ("adapter", "merged")]
    assert pairs[0] == pairs[1]
    assert results["merged"]["identity"]["train"]["questions"] == 4


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
    evaluated = invoke("eval", out, "--max_new_tokens", 4)
    assert evaluated.exit_code == 0, evaluated.stderr
    result = json.loads((out.parent / "eval.json").read_text(encoding="utf-8"))
    assert result["kind"] == "model" and result["base_model"] == str(tiny_model)
    loss = result["general_loss"]["chat"]
    assert loss["before"] != loss["after"]  # the base model answered "before", the trained one "after"


def test_eval_refuses_a_folder_that_is_no_model(tmp_path):
    run_info = tmp_path / "curatune_train.json"
    run_info.write_text("{}", encoding="utf-8")
    evaluated = invoke("eval", tmp_path)
    assert evaluated.exit_code == 2  # bad input
    assert evaluated.stderr.strip() == f"train: {tmp_path}: not a model folder; pass the folder `train run` " \
        "printed (OUTPUT_DIR/adapter or OUTPUT_DIR/model) or one `train merge` wrote"


def test_quant_4bit_without_cuda_is_one_line(identity_bundle, tiny_model, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    run = invoke("run", identity_bundle, "--model", tiny_model, "--output_dir", tmp_path / "q", "--quant", "4bit")
    assert run.exit_code == 2  # bad input (a flag this machine cannot honour)
    assert run.stderr.strip().splitlines()[-1].startswith("train: --quant 4bit needs")
