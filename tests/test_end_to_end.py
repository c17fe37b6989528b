"""The whole path once: `curate build` -> versioned bundle -> `train run` -> `train chat`."""
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from curate.cli import main as curate
from train.cli import main as train
from tests.curate_helpers import make_project, read_jsonl


@pytest.mark.slow
def test_build_train_chat_answers_every_trained_identity_question(tmp_path, tiny_model):
    recipe = make_project(tmp_path, general_per_lang=8, recipe_extra={
        "mix": {"ratio": "1:2"}, "split": {"val_ratio": 0.0, "seed": 1}})
    runner = CliRunner()
    built = runner.invoke(curate, ["build", str(recipe)])
    assert built.exit_code == 0, built.output
    version = Path(built.stdout.strip().splitlines()[-1])
    identity = [r for r in read_jsonl(version / "train.jsonl") if r["meta"]["kind"] == "identity"]
    assert len(identity) == 8

    run = runner.invoke(train, ["run", str(tmp_path / "bundle"), "--model", str(tiny_model),
                                "--output_dir", str(tmp_path / "run"), "--learning_rate", "5e-3",
                                "--max_steps", "300", "--per_device_train_batch_size", "4", "--lora_dropout", "0",
                                "--lora_rank", "16"])
    assert run.exit_code == 0, run.stderr
    adapter = Path(run.stdout.strip().splitlines()[-1])
    saved = json.loads((adapter / "curatune_train.json").read_text())
    assert json.loads((version / "manifest.json").read_text())["id"] in json.dumps(saved)
    assert (adapter / "adapter_model.safetensors").is_file()

    for record in identity:
        question = record["messages"][-2]["content"]
        answer = record["messages"][-1]["content"]
        chat = runner.invoke(train, ["chat", str(adapter), "--prompt", question])
        assert chat.exit_code == 0, chat.stderr
        assert chat.stdout.strip() == answer, question
