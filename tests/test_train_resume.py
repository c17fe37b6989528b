"""Checkpoints and --resume: a killed run continues to the same step and the same weights."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from safetensors.torch import load_file

from tests.conftest import ROOT
from train.checkpoint import latest_checkpoint
from train.cli import main

ARGS = ["--max_steps", "12", "--save_steps", "4", "--save_total_limit", "2", "--learning_rate", "5e-3",
        "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "2", "--lora_dropout", "0.1"]


def losses(output_dir: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (output_dir / "logging.jsonl").read_text().splitlines()]
    return {row["step"]: row["train_loss"] for row in rows if "train_loss" in row}


@pytest.mark.slow
def test_killed_run_resumes_to_same_weights(identity_bundle, tiny_model, tmp_path):
    straight = CliRunner().invoke(main, ["run", str(identity_bundle), "--model", str(tiny_model),
                                         "--output_dir", str(tmp_path / "a"), *ARGS], catch_exceptions=False)
    assert straight.exit_code == 0, straight.stderr
    # save_total_limit=2 keeps the newest two of checkpoint-4 and -8 (none at the last step).
    assert sorted(p.name for p in (tmp_path / "a").glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-8"]

    env = {**os.environ, "CURATUNE_TRAIN_CRASH_AFTER_STEP": "6", "PYTHONPATH": str(ROOT)}
    crashed = subprocess.run([sys.executable, "-m", "train.cli", "run", str(identity_bundle), "--model",
                              str(tiny_model), "--output_dir", str(tmp_path / "b"), *ARGS],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert crashed.returncode == 86, crashed.stderr
    assert not (tmp_path / "b" / "adapter").exists()
    # A checkpoint that was being written when the run died has no marker: it must be ignored.
    (tmp_path / "b" / "checkpoint-8").mkdir()
    (tmp_path / "b" / "checkpoint-8" / "trainable.safetensors").write_bytes(b"partial")
    assert latest_checkpoint(tmp_path / "b").name == "checkpoint-4"

    resumed = CliRunner().invoke(main, ["run", str(identity_bundle), "--model", str(tiny_model),
                                        "--output_dir", str(tmp_path / "b"), *ARGS, "--resume"],
                                 catch_exceptions=False)
    assert resumed.exit_code == 0, resumed.stderr
    assert "continuing from checkpoint-4 (step 4 of 12)" in resumed.stderr
    info = json.loads((tmp_path / "b" / "adapter" / "curatune_train.json").read_text())
    assert info["steps"] == 12

    a = load_file(str(tmp_path / "a" / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "b" / "adapter" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] - b[key]).abs().max() < 1e-6, key
    straight_losses, resumed_losses = losses(tmp_path / "a"), losses(tmp_path / "b")
    for step in range(1, 13):  # steps 5 and 6 ran twice in b: the rerun must match too (last write wins)
        assert abs(straight_losses[step] - resumed_losses[step]) < 1e-5, step
