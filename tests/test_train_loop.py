"""Eval on val.jsonl, early stopping, packing and gradient checkpointing through a real (tiny) run."""
from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import IDENTITY, identity_records, make_record, write_bundle
from train.run import run_training


def test_eval_early_stopping_packing_checkpointing(tiny_model, tmp_path):
    # Val contradicts what training teaches, so val loss soon stops improving.
    val = [make_record([(q, "Nope, I am just some random thing called Bob.")], "identity", f"val:{i}")
           for i, (q, _) in enumerate(IDENTITY)]
    version = write_bundle(tmp_path / "b", identity_records(), val)
    adapter = run_training(version, {
        "model": str(tiny_model), "output_dir": str(tmp_path / "out"), "learning_rate": 5e-3, "max_steps": 60,
        "per_device_train_batch_size": 4, "eval_steps": 5, "early_stopping_patience": 2, "packing": True,
        "gradient_checkpointing": True, "max_length": 128}, log=lambda _: None, show_progress=False)
    info = json.loads((Path(adapter) / "curatune_train.json").read_text())
    assert info["stopped_early"] and info["steps"] < 60
    assert info["val_loss"] == info["best_val_loss"]  # best weights were restored
    rows = [json.loads(line) for line in (tmp_path / "out" / "logging.jsonl").read_text().splitlines()]
    evals = [row for row in rows if "val_loss" in row]
    assert [row["step"] for row in evals] == list(range(5, info["steps"] + 1, 5))
    assert min(row["val_loss"] for row in evals) == info["best_val_loss"]
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "out" / "runs").iterdir())
