"""Talking to a trained adapter: base model (from curatune_train.json) + adapter + saved tokenizer.

Greedy (pure argmax, no repetition penalty) at temperature 0 so a memorised answer comes back
verbatim; sampling with the model's own top-p/top-k otherwise. Generation stops at the template's
end-of-turn token. The prompt is built exactly as training built it (same template, same pieces).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, TextIO

import torch

from train.encode import end_of_turn_token, render
from train.errors import TrainError
from train.model import load_model, load_tokenizer, pick_device, pick_dtype

RUN_INFO = "curatune_train.json"


def read_run_info(folder: str | Path) -> dict:
    path = Path(folder) / RUN_INFO
    if not path.is_file():
        raise TrainError(f"{folder}: no {RUN_INFO} here; pass the adapter folder `train run` printed")
    return json.loads(path.read_text(encoding="utf-8"))


def base_model_of(info: dict, override: str | None = None) -> str:
    if override:
        return override
    local = info.get("base_model_path")
    return local if local and Path(local).is_dir() else info["base_model"]


def load_for_chat(folder: str | Path, model: str | None = None):
    """(model, tokenizer) ready for generation, from an adapter folder or a merged/full model folder."""
    return load_trained_model(folder, model), load_tokenizer(str(folder))


def load_trained_model(folder: str | Path, model: str | None = None):
    """An adapter on its base model (`model` overrides the recorded one), or a merged/full model folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise TrainError(f"{folder}: no such adapter folder")
    if (folder / "adapter_config.json").is_file():
        from peft import PeftModel

        lm = PeftModel.from_pretrained(load_base_model(read_run_info(folder), model), str(folder))
    else:
        device = pick_device()
        lm = load_model(str(folder), pick_dtype(device, None), device=device)
    lm.eval()
    return lm


def load_base_model(info: dict, model: str | None = None):
    """The base model a run started from (as recorded in its curatune_train.json), ready for inference."""
    device = pick_device()
    trust = bool(info.get("config", {}).get("trust_remote_code", False))
    base = load_model(base_model_of(info, model), pick_dtype(device, None), trust, device=device)
    base.eval()
    return base


def stop_token_ids(tokenizer) -> list[int]:
    ids = []
    for token in (end_of_turn_token(tokenizer), tokenizer.eos_token):
        if token:
            token_id = tokenizer.convert_tokens_to_ids(token)
            if isinstance(token_id, int) and token_id not in ids:
                ids.append(token_id)
    return ids


@torch.no_grad()
def generate_answer(model, tokenizer, messages: list[dict], temperature: float = 0.0,
                    max_new_tokens: int = 256) -> str:
    """One assistant reply to `messages`."""
    from transformers import GenerationConfig

    prompt = render(tokenizer, messages, add_generation_prompt=True)
    input_ids = torch.tensor([tokenizer(prompt, add_special_tokens=False)["input_ids"]])
    device = next(model.parameters()).device
    base_config = getattr(model, "generation_config", None) or GenerationConfig()
    config = GenerationConfig(**{**base_config.to_diff_dict(), "max_new_tokens": max_new_tokens,
                                 "eos_token_id": stop_token_ids(tokenizer),
                                 "pad_token_id": tokenizer.pad_token_id})
    if temperature > 0:
        config.do_sample, config.temperature = True, temperature
    else:
        config.do_sample, config.temperature, config.top_p, config.top_k = False, None, None, None
        config.repetition_penalty = 1.0
    output = model.generate(input_ids=input_ids.to(device), attention_mask=torch.ones_like(input_ids).to(device),
                            generation_config=config)
    return tokenizer.decode(output[0, input_ids.shape[1]:], skip_special_tokens=True).strip()


def chat_loop(model, tokenizer, lines: Iterable[str], out: TextIO, system: str | None = None,
              temperature: float = 0.0, max_new_tokens: int = 256) -> None:
    """Multi-turn chat over input lines until EOF or 'exit'; each answer is printed on `out`."""
    messages = [{"role": "system", "content": system}] if system else []
    for line in lines:
        text = line.strip()
        if text in ("exit", "quit"):
            break
        if not text:
            continue
        messages.append({"role": "user", "content": text})
        answer = generate_answer(model, tokenizer, messages, temperature, max_new_tokens)
        messages.append({"role": "assistant", "content": answer})
        print(answer, file=out, flush=True)
