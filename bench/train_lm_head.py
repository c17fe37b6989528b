"""Time and peak memory of a LoRA training step with the output projection on answer positions only
(`logits_to_keep` mask) against logits for every position.

Each mode runs in its own child process, so peak RSS (ru_maxrss) is that mode's alone. Data: the
train split of a bundle (default: the shipped recipe's newest build, bundle/), 8 records a step.
Models: the tiny offline Qwen2 (always) and, with --gguf PATH or --model DIR, a real one.
Prints key=value lines; the last line sums up.

    python bench/train_lm_head.py [--bundle bundle] [--gguf ~/.cache/.../gemma-3-270m-q4_k_m.gguf] [--steps 6]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child(model: str, bundle: str, answer_only: bool, steps: int, batch_size: int, template: str | None) -> None:
    import torch

    from train.bundle import open_bundle
    from train.config import TrainConfig
    from train.data import collate, make_examples
    from train.encode import encode_records
    from train.loop import build_optimizer, token_loss_sum
    from train.model import load_model, load_tokenizer, prepare_for_training, resolve_model_name

    torch.manual_seed(0)
    path = resolve_model_name(model)
    cfg = TrainConfig(model=path, learning_rate=1e-4, lora_dropout=0.0, max_length=512)
    tokenizer = load_tokenizer(path, template=template)
    lm = prepare_for_training(load_model(path), cfg)
    records = open_bundle(bundle).train
    encoded = encode_records(tokenizer, records, cfg.max_length)
    examples = make_examples(encoded, False, cfg.max_length, seed=0)
    batches = [collate(examples[i:i + batch_size], tokenizer.pad_token_id, False)
               for i in range(0, batch_size * (steps + 1), batch_size)]
    optimizer, _ = build_optimizer(lm, cfg, steps + 1)
    lm.train()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for batch in batches:
        started = time.perf_counter()
        loss = token_loss_sum(lm, batch, answer_logits_only=answer_only)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - started)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tokens = sum(int(b["attention_mask"].sum()) for b in batches[1:])
    print(json.dumps({"s_per_step": sum(times[1:]) / steps, "peak_rss_mib": peak / 1024,
                      "step_rss_growth_mib": (peak - rss_before) / 1024, "tokens_per_step": tokens / steps,
                      "vocab": len(tokenizer)}))


def run_mode(model: str, bundle: str, answer_only: bool, steps: int, batch_size: int, template: str | None) -> dict:
    cmd = [sys.executable, __file__, "--child", "--model", model, "--bundle", bundle, "--steps", str(steps),
           "--batch_size", str(batch_size)] + (["--answer_only"] if answer_only else []) + \
          (["--template", template] if template else [])
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bundle", default=str(ROOT / "bundle"))
    parser.add_argument("--model", default=None, help="a real model folder")
    parser.add_argument("--gguf", default=None, help="a .gguf file (converted once to the cache)")
    parser.add_argument("--template", default=None)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--answer_only", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args.model, args.bundle, args.answer_only, args.steps, args.batch_size, args.template)
        return
    from train.tiny import build_tiny_model

    models = []
    with tempfile.TemporaryDirectory() as tmp:
        models.append(("tiny", str(build_tiny_model(Path(tmp) / "tiny", project_root=ROOT)), None))
        if args.model or args.gguf:
            models.append(("real", args.model or args.gguf, args.template))
        summary = []
        for label, model, template in models:
            full = run_mode(model, args.bundle, False, args.steps, args.batch_size, template)
            kept = run_mode(model, args.bundle, True, args.steps, args.batch_size, template)
            for mode, r in (("full_logits", full), ("answer_logits", kept)):
                print(f"model={label} vocab={r['vocab']} mode={mode} s_per_step={r['s_per_step']:.3f} "
                      f"peak_rss_mib={r['peak_rss_mib']:.0f} step_rss_growth_mib={r['step_rss_growth_mib']:.0f} "
                      f"tokens_per_step={r['tokens_per_step']:.0f}")
            summary.append(f"{label}_speedup={full['s_per_step'] / kept['s_per_step']:.2f} "
                           f"{label}_peak_rss_saved_mib={full['peak_rss_mib'] - kept['peak_rss_mib']:.0f}")
        print(" ".join(summary))


if __name__ == "__main__":
    main()
