"""Does the identity take? The whole user path on a tiny model, measured by `train eval`.

    curate build recipes/identity.yaml  ->  train run (tiny random Qwen2)  ->  train eval

Each stage runs through its command line, as a user types it. The model is a random Qwen2 (hidden
128, 2 layers, 0.7M parameters, its byte-level BPE trained on the shipped recipe text): it knows
nothing, so every identity answer it gives was learnt from the bundle. Full fine-tuning by default:
a random model's frozen embeddings leave LoRA too little to learn ~30k assistant tokens with
(`--train_type lora` shows it). What it can learn is the trained questions; paraphrases it never
saw (val, held-out) need a pretrained model (tests/test_train_gemma.py).

Last line: `trained_hit_rate=… trained_both_rate=… val_hit_rate=… held_out_hit_rate=… …`.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run(args: list[str]) -> str:
    """Run a CLI stage; its last stdout line (the path it printed) or the stage's stderr on failure."""
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args[:2])} failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default=str(ROOT / "recipes" / "identity.yaml"))
    parser.add_argument("--train_type", choices=["full", "lora"], default="full")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--learning_rate", type=float, default=4e-3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--max_length", type=int, default=512, help="packed row length (no shipped record is longer)")
    parser.add_argument("--workdir", default=None, help="keep the bundle, model and run here")
    args = parser.parse_args()

    from train.evaluate import Identity
    from train.tiny import build_tiny_model

    work = Path(args.workdir or tempfile.mkdtemp(prefix="curatune-identity-"))
    started = time.monotonic()
    bundle = run(["curate", "build", args.recipe, "--output", str(work / "bundle")])
    built = time.monotonic()
    model = build_tiny_model(work / "tiny", project_root=ROOT, hidden_size=args.hidden)
    trained_dir = run(["train.cli", "run", bundle, "--model", str(model), "--train_type", args.train_type,
                       "--learning_rate", str(args.learning_rate), "--max_steps", str(args.steps),
                       "--per_device_train_batch_size", str(args.batch), "--max_length", str(args.max_length),
                       "--packing", "--lora_dropout", "0",
                       "--output_dir", str(work / "run")])
    trained = time.monotonic()
    out = work / "eval.json"
    run(["train.cli", "eval", trained_dir, "--output", str(out), "--train_questions", "-1"])
    evaluated = time.monotonic()

    result = json.loads(out.read_text(encoding="utf-8"))
    info = json.loads((Path(trained_dir) / "curatune_train.json").read_text(encoding="utf-8"))
    identity = result["identity"]
    trained_answers = [a for a in result["answers"] if a["source"] == "train"]
    target = Identity(result["identity_target"]["name"], result["identity_target"]["author"])
    misses = [a["question"] for a in trained_answers if not any(target.hits(a["after"], a["lang"]))]
    verbatim = sum(a["after"] == a["reference"] for a in trained_answers) / max(len(trained_answers), 1)
    print(f"bundle: {bundle}\nmodel: {trained_dir}\neval: {out}")
    for key in ("train", "val", "held_out"):
        block = identity[key]
        print(f"{key:>8}: {block['questions']:3d} questions, correct {block['before']['correct_rate'] or 0:.2f} -> "
              f"{block['after']['correct_rate'] or 0:.2f} (lenient name or author {block['after']['hit_rate']:.2f}, "
              f"swaps {block['after']['swap_rate']:.2f})")
    if misses:
        print("trained questions missed: " + "; ".join(misses))
    figures = {
        "train_type": args.train_type, "hidden": args.hidden, "steps": info["steps"],
        "train_loss": f"{info['train_loss']:.4f}",
        "trained_questions": identity["train"]["questions"],
        "trained_correct_rate": f"{identity['train']['after']['correct_rate']:.4f}",
        "trained_hit_rate": f"{identity['train']['after']['hit_rate']:.4f}",
        "trained_hit_rate_before": f"{identity['train']['before']['hit_rate']:.4f}",
        "trained_swap_rate": f"{identity['train']['after']['swap_rate']:.4f}",
        "trained_both_rate": f"{identity['train']['after']['both_rate']:.4f}",
        "trained_verbatim_rate": f"{verbatim:.4f}",
        "val_correct_rate": f"{identity['val']['after']['correct_rate']:.4f}",
        "held_out_correct_rate": f"{identity['held_out']['after']['correct_rate']:.4f}",
        "eos_rate": f"{result['eos_rate']['after']:.4f}",
        "build_s": f"{built - started:.1f}", "train_s": f"{trained - built:.1f}",
        "eval_s": f"{evaluated - trained:.1f}",
    }
    print(" ".join(f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
