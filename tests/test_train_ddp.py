"""Two CPU processes under torchrun (gloo): one run, one adapter, one path printed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_torchrun_two_processes(identity_bundle, tiny_model, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "train.cli", "run", str(identity_bundle), "--model", str(tiny_model),
           "--output_dir", str(tmp_path / "ddp"), "--max_steps", "12", "--learning_rate", "5e-3",
           "--per_device_train_batch_size", "2", "--save_steps", "6"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = [line for line in done.stdout.splitlines() if line.strip()]
    assert printed == [str((tmp_path / "ddp" / "adapter").resolve())]
    assert done.stderr.count("parameters:") == 1  # only rank 0 reports
    info = json.loads((Path(printed[0]) / "curatune_train.json").read_text())
    assert info["steps"] == 12
    rows = [json.loads(line) for line in (tmp_path / "ddp" / "logging.jsonl").read_text().splitlines()]
    train_losses = [row["train_loss"] for row in rows if "train_loss" in row]
    # Per-step losses are single batches (noisy); the first and last thirds of the run compare robustly.
    assert len(train_losses) == 12 and sum(train_losses[-4:]) < sum(train_losses[:4])
    assert (tmp_path / "ddp" / "checkpoint-6" / "COMPLETE").is_file()
