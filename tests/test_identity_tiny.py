"""Issue target: on a tiny model, `train eval` after `train run` on the shipped recipe gives every trained
identity question its trained answer back, so each is correct. Runs bench/train_identity_tiny.py (build, train, eval through
the command lines, about 5 minutes here) and checks the figures of its last line."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_shipped_recipe_identity_takes_on_a_tiny_model(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "train_identity_tiny.py"), "--workdir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = dict(pair.split("=", 1) for pair in done.stdout.strip().splitlines()[-1].split())
    print(done.stdout)
    assert int(figures["trained_questions"]) >= 100  # every identity question of the train split
    # Trained until memorised (train loss ~0.04), the answers are the trained ones; the untrained
    # random model's figures are not asserted: what a random model says is chance, not code.
    assert float(figures["trained_hit_rate"]) == 1.0, done.stdout
    assert float(figures["trained_correct_rate"]) == 1.0, done.stdout
    assert float(figures["trained_swap_rate"]) == 0.0, done.stdout
    assert float(figures["eos_rate"]) >= 0.9
    result = json.loads((tmp_path / "eval.json").read_text(encoding="utf-8"))
    after = result["identity"]["train"]["after"]
    assert result["kind"] == "model" and after["correct_by_lang"] == {"zh": 1.0, "en": 1.0}
