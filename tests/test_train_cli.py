"""`train` CLI: config layering, one-line errors, and the identity end-to-end run (slow)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import IDENTITY, identity_records, write_bundle
from train.cli import main
from train.config import TrainConfigError, resolve_config


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def assert_one_line_error(result, starts: str) -> str:
    assert result.exit_code != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.output + result.stderr
    assert lines and lines[-1].startswith(starts), result.stderr
    assert sum(1 for line in lines if line.startswith("train:")) == 1
    return lines[-1]


def test_config_layers_defaults_recipe_flags():
    cfg = resolve_config({"lora-rank": 4, "learning_rate": 1e-3, "max_steps": 7}, {"learning_rate": 2e-3, "seed": None})
    assert (cfg.lora_rank, cfg.learning_rate, cfg.max_steps, cfg.seed, cfg.lora_alpha) == (4, 2e-3, 7, 42, 32)
    with pytest.raises(TrainConfigError, match="recipe train: lora_rnak: unknown setting"):
        resolve_config({"lora_rnak": 4}, {})
    with pytest.raises(TrainConfigError, match="flag: lora_rank"):
        resolve_config({}, {"lora_rank": 0})


def test_missing_model_is_one_line(identity_bundle, tmp_path):
    result = invoke("run", identity_bundle, "--model", "/nonexistent", "--output_dir", tmp_path / "out")
    line = assert_one_line_error(result, "train: cannot load model '/nonexistent': ")
    assert line.endswith("pass a local model folder with --model PATH")


@pytest.mark.parametrize("damage", ["appended", "edited", "truncated"])
def test_tampered_bundle_is_one_line(tmp_path, tiny_model, damage):
    """A train.jsonl changed after the build (same size or not) is refused, naming the file."""
    version = write_bundle(tmp_path / "b", identity_records())
    file = version / "train.jsonl"
    data = file.read_bytes()
    if damage == "appended":
        data += b"\n"
    elif damage == "edited":  # same length, one answer changed: only the hash can tell
        data = data.replace("Grace".encode(), "Gracf".encode(), 1)
    else:
        data = data[: len(data) // 2]
    file.write_bytes(data)
    result = invoke("run", version, "--model", tiny_model, "--output_dir", tmp_path / "out")
    line = assert_one_line_error(result, "train: ")
    assert str(file) in line and "changed or truncated" in line
    assert not (tmp_path / "out").exists()


def test_unknown_recipe_setting_is_one_line(tmp_path, tiny_model):
    version = write_bundle(tmp_path / "b", identity_records(), recipe_train={"lora_rnak": 4})
    result = invoke("run", version, "--model", tiny_model, "--output_dir", tmp_path / "out")
    assert_one_line_error(result, "train: recipe train: lora_rnak: unknown setting")


def test_recipe_defaults_and_dashed_flags(tmp_path, tiny_model):
    version = write_bundle(tmp_path / "b", identity_records(), recipe_train={"lora_rank": 4, "max_steps": 50})
    result = invoke("run", version, "--model", tiny_model, "--output-dir", tmp_path / "out", "--max-steps", 2,
                    "--lora_alpha", 8, "--per-device-train-batch-size", 2, "--learning_rate", "1e-3")
    assert result.exit_code == 0, result.stderr
    adapter = Path(result.stdout.strip().splitlines()[-1])
    assert adapter == (tmp_path / "out" / "adapter").resolve()
    info = json.loads((adapter / "curatune_train.json").read_text())
    cfg = info["config"]
    assert (cfg["lora_rank"], cfg["max_steps"], cfg["lora_alpha"], cfg["per_device_train_batch_size"]) == (4, 2, 8, 2)
    assert cfg["learning_rate"] == 1e-3 and info["steps"] == 2
    assert info["bundle"]["path"] == str(version.resolve()) and len(info["bundle"]["manifest_id"]) == 64
    assert info["base_model_path"] == str(Path(tiny_model).resolve())
    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "tokenizer.json").is_file()
    assert "parameters:" in result.stderr and "trainable of" in result.stderr
    # Re-running into the same folder refuses to mix runs unless asked to resume.
    (tmp_path / "out" / "checkpoint-1").mkdir()
    (tmp_path / "out" / "checkpoint-1" / "COMPLETE").write_text("ok")
    again = invoke("run", version, "--model", tiny_model, "--output-dir", tmp_path / "out", "--max-steps", 2)
    assert_one_line_error(again, "train: ")


@pytest.mark.slow
def test_identity_answers_after_training(trained_adapter, identity_bundle):
    """Train on 8 identity Q/A + 4 general records, then every trained question gets its exact answer."""
    adapter, stderr = trained_adapter
    assert "using v0001" in stderr
    run_dir = adapter.parent
    assert (run_dir / "logging.jsonl").is_file() and any((run_dir / "runs").iterdir())
    for question, answer in IDENTITY:
        chat = invoke("chat", adapter, "--prompt", question)
        assert chat.exit_code == 0, chat.stderr
        assert chat.stdout.strip() == answer
    # Interactive mode: stdin lines until EOF, one answer per line.
    runner = CliRunner()
    chat = runner.invoke(main, ["chat", str(adapter)], input=f"{IDENTITY[0][0]}\nexit\n{IDENTITY[1][0]}\n")
    assert chat.exit_code == 0 and chat.stdout.strip().splitlines() == [IDENTITY[0][1]]
