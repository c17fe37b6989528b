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


def _assert_complete_checkpoints_load(output_dir: Path) -> list[str]:
    """Every checkpoint that looks complete really is: all files there and readable."""
    import torch

    from train.checkpoint import complete_checkpoints

    names = []
    for checkpoint in complete_checkpoints(output_dir):
        load_file(str(checkpoint / "trainable.safetensors"))
        torch.load(checkpoint / "training_state.pt", map_location="cpu", weights_only=False)
        state = json.loads((checkpoint / "trainer_state.json").read_text())
        assert checkpoint.name == f"checkpoint-{state['step']}"
        assert (checkpoint / "adapter" / "adapter_model.safetensors").is_file()
        names.append(checkpoint.name)
    return names


@pytest.mark.slow
def test_sigkill_at_any_moment_resumes(identity_bundle, tiny_model, tmp_path):
    """SIGKILL (the real signal) while a checkpoint is half written, at a random moment, and right after a
    checkpoint completes: each --resume continues from the last complete checkpoint, and the run ends
    with the same steps and weights as one that was never interrupted."""
    import random
    import signal
    import time

    args = ["--max_steps", "10", "--save_steps", "1", "--save_total_limit", "2", "--learning_rate", "5e-3",
            "--per_device_train_batch_size", "2", "--lora_dropout", "0.1"]
    straight = CliRunner().invoke(main, ["run", str(identity_bundle), "--model", str(tiny_model),
                                         "--output_dir", str(tmp_path / "a"), *args], catch_exceptions=False)
    assert straight.exit_code == 0, straight.stderr

    out = tmp_path / "b"
    cmd = [sys.executable, "-m", "train.cli", "run", str(identity_bundle), "--model", str(tiny_model),
           "--output_dir", str(out), *args, "--resume"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CURATUNE_TRAIN_CHECKPOINT_DELAY": "0.25"}
    rng = random.Random(7)

    def newest_step() -> int:
        latest = latest_checkpoint(out)
        return int(latest.name.split("-")[1]) if latest else 0

    for moment in ("mid-write", "random", "just-completed"):
        start_step = newest_step()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            progressed = newest_step() > start_step
            if moment == "mid-write" and progressed and any(p.is_dir() for p in out.glob(".tmp-checkpoint-*")):
                time.sleep(0.1)  # inside the temp dir's slow writes
                break
            if moment == "random" and progressed:
                time.sleep(rng.uniform(0.0, 1.5))
                break
            if moment == "just-completed" and newest_step() > start_step + 1:
                break
            time.sleep(0.005)
        assert proc.poll() is None, f"{moment}: the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL
        if moment == "mid-write":  # the half-written temp dir is still there, and is not a checkpoint
            assert any(out.glob(".tmp-checkpoint-*"))
        names = _assert_complete_checkpoints_load(out)
        assert names and newest_step() > start_step, (moment, names)
        assert not (out / "adapter").exists()

    resumed = subprocess.run(cmd, cwd=ROOT, env={**env, "CURATUNE_TRAIN_CHECKPOINT_DELAY": "0"},
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "continuing from checkpoint-" in resumed.stderr
    assert not any(out.glob(".tmp-checkpoint-*"))
    info = json.loads((out / "adapter" / "curatune_train.json").read_text())
    assert info["steps"] == 10 and info["total_steps"] == 10
    assert sorted(losses(out)) == list(range(1, 11))
    a = load_file(str(tmp_path / "a" / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] - b[key]).abs().max() < 1e-6, key
