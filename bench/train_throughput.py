"""Assistant tokens trained per second: packing vs padding every batch to max_length.

Same data (identity + general chat of varied length), same tiny random Qwen2 model and LoRA setup,
one epoch each, best of --repeats. Last line: packed_tokens_per_s=... padded_tokens_per_s=... packing_speedup=...

    python bench/train_throughput.py [--records 96] [--max_length 512] [--batch_size 4]
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from schemas.record import Record  # noqa: E402
from train.config import TrainConfig  # noqa: E402
from train.data import collate, count_targets, make_examples  # noqa: E402
from train.encode import encode_records  # noqa: E402
from train.loop import build_optimizer, token_loss_sum  # noqa: E402
from train.model import load_model, load_tokenizer, prepare_for_training  # noqa: E402
from train.tiny import build_tiny_model  # noqa: E402

QUESTIONS = ["Who are you?", "你是谁？", "What is the capital of France?", "Write a short poem about the sea.",
             "Explain what a tokenizer does.", "请介绍一下你自己。", "Summarise this paragraph for me."]
WORDS = ("the model learns to answer clearly and briefly while keeping its general ability "
         "我是一个人工智能助手可以回答问题写作和翻译").split()


def synthetic_records(n: int, seed: int = 0) -> list[Record]:
    """Chat records whose answers range from a few words to a few hundred tokens."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        answer = " ".join(rng.choice(WORDS) for _ in range(rng.choice([4, 8, 16, 32, 64, 128])))
        records.append(Record.model_validate({
            "messages": [{"role": "user", "content": rng.choice(QUESTIONS)}, {"role": "assistant", "content": answer}],
            "meta": {"id": f"bench:{i + 1}", "source": "bench", "line": i + 1, "kind": "general"}}))
    return records


def measure(model_dir: Path, records: list[Record], packing: bool, max_length: int, batch_size: int) -> float:
    """One epoch; returns assistant (target) tokens per second."""
    cfg = TrainConfig(model=str(model_dir), learning_rate=1e-3, max_length=max_length, packing=packing,
                      per_device_train_batch_size=batch_size, lora_dropout=0.0)
    torch.manual_seed(0)
    tokenizer = load_tokenizer(cfg.model)
    model = prepare_for_training(load_model(cfg.model), cfg)
    encoded = encode_records(tokenizer, records, max_length)
    examples = make_examples(encoded, packing, max_length, seed=0)
    batches = [examples[i:i + batch_size] for i in range(0, len(examples), batch_size)]
    optimizer, scheduler = build_optimizer(model, cfg, len(batches))
    model.train()
    # Warm up kernels once so neither mode pays first-call costs.
    token_loss_sum(model, collate(batches[0], tokenizer.pad_token_id, packing, pad_to=None if packing else max_length)).backward()
    optimizer.zero_grad(set_to_none=True)
    targets, started = 0, time.perf_counter()
    for batch in batches:
        inputs = collate(batch, tokenizer.pad_token_id, packing, pad_to=None if packing else max_length)
        n = count_targets(inputs["labels"])
        (token_loss_sum(model, inputs) / max(n, 1)).backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        targets += n
    return targets / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=96)
    parser.add_argument("--max_length", "--max-length", type=int, default=512)
    parser.add_argument("--batch_size", "--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    records = synthetic_records(args.records)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_model(Path(tmp) / "tiny", extra_text=[r.conversation_text() for r in records])
        # Alternate the modes and keep each one's best epoch: the first epoch in a process runs slow
        # (thread pools, allocator) whichever mode it is, which would otherwise decide the result.
        packed = padded = 0.0
        for _ in range(args.repeats):
            padded = max(padded, measure(model_dir, records, False, args.max_length, args.batch_size))
            packed = max(packed, measure(model_dir, records, True, args.max_length, args.batch_size))
    print(f"packed_tokens_per_s={packed:.0f} padded_tokens_per_s={padded:.0f} packing_speedup={packed / padded:.2f}")


if __name__ == "__main__":
    main()
