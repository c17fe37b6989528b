"""Talking to a trained adapter: base model (from curatune_train.json) + adapter + saved tokenizer.

Greedy (pure argmax, no repetition penalty) at temperature 0 so a memorised answer comes back
verbatim; sampling with the model's own top-p/top-k otherwise. Generation stops at the template's
end-of-turn token. The prompt is built exactly as training built it (same template, same pieces).

An adapter folder may come from someone else: its `curatune_train.json` says which base model to
load, but never what may run. `trust_remote_code` and `allow_pickle` come from the caller (the
command line's flags, directly or through train.model_checks.load_policy); the saved config's
values are ignored. An adapter stored only as a pickle (adapter_model.bin) is refused unless allowed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, TextIO

import torch

from schemas.json_file import JsonFileError, read_json_object
from train.encode import end_of_turn_token, render
from train.errors import TrainError, short_reason
from train.model import load_model, load_tokenizer, pick_device, pick_dtype
from train.model_checks import check_model_folder, pickle_allowed, pickle_files, remote_code_allowed

RUN_INFO = "curatune_train.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
# Keys of curatune_train.json that chat, merge and eval read, and the JSON types they must have.
RUN_INFO_TYPES = {"config": (dict,), "bundle": (dict,), "base_model": (str,), "base_model_path": (str,)}
CONFIG_TYPES = {"system": (str,), "max_length": (int,)}


def _check_types(values: dict, types: dict, path: Path, prefix: str = "") -> None:
    for key, allowed in types.items():
        value = values.get(key)
        if value is not None and (not isinstance(value, allowed) or isinstance(value, bool)):
            raise TrainError(f"{path}: {prefix}{key}: expected {' or '.join(t.__name__ for t in allowed)}, "
                             f"got {type(value).__name__}")


def read_run_info(folder: str | Path) -> dict:
    """The saved run description, checked for the keys and types its readers rely on (one line if not)."""
    path = Path(folder) / RUN_INFO
    if not path.is_file():
        raise TrainError(f"{folder}: no {RUN_INFO} here; pass the adapter folder `train run` printed")
    try:
        info = read_json_object(path)
    except JsonFileError as exc:
        raise TrainError(str(exc)) from None
    _check_types(info, RUN_INFO_TYPES, path)
    _check_types(info.get("config") or {}, CONFIG_TYPES, path, "config.")
    bundle_path = (info.get("bundle") or {}).get("path")
    if bundle_path is not None and not isinstance(bundle_path, str):
        raise TrainError(f"{path}: bundle.path: expected str, got {type(bundle_path).__name__}")
    return info


def base_model_of(info: dict, override: str | None = None, where: str | Path = RUN_INFO) -> str:
    if override:
        return override
    local = info.get("base_model_path")
    if local and Path(local).is_dir():
        return local
    if not info.get("base_model"):
        raise TrainError(f"{where}: base_model: missing; pass the base model with --model")
    return info["base_model"]


def check_adapter_folder(folder: Path, allow_pickle: bool | None = None) -> None:
    """An adapter folder holds adapter_model.safetensors; a pickle-only adapter needs --allow_pickle."""
    if (folder / ADAPTER_WEIGHTS).is_file():
        return
    pickles = pickle_files(folder)
    if not pickles:
        raise TrainError(f"{folder}: no {ADAPTER_WEIGHTS} here; pass the adapter folder `train run` printed")
    if not pickle_allowed(allow_pickle):
        raise TrainError(f"{folder}: holds its adapter as pickle only ({', '.join(pickles[:3])}), which can run code "
                         "when loaded; convert it once where you trust it (PeftModel.from_pretrained(base, PATH)"
                         ".save_pretrained(PATH, safe_serialization=True)), or pass --allow_pickle")


def preflight(folder: str | Path, model: str | None = None, trust_remote_code: bool | None = None,
              allow_pickle: bool | None = None) -> None:
    """Refuse a hostile adapter or model folder (and the base model its curatune_train.json names) before
    any other work: the checks loading would make, made up front. A folder that is neither is left to the
    caller's own error."""
    folder = Path(folder)
    trust, pickle_ok = remote_code_allowed(trust_remote_code), pickle_allowed(allow_pickle)
    if (folder / "adapter_config.json").is_file():
        check_adapter_folder(folder, pickle_ok)
    elif (folder / "config.json").is_file():
        check_model_folder(str(folder), trust, pickle_ok)
    else:
        return
    if (folder / RUN_INFO).is_file():
        info = read_run_info(folder)
        if model or info.get("base_model") or info.get("base_model_path"):
            check_model_folder(base_model_of(info, model, folder / RUN_INFO), trust, pickle_ok)


def load_for_chat(folder: str | Path, model: str | None = None, trust_remote_code: bool | None = None,
                  allow_pickle: bool | None = None):
    """(model, tokenizer) ready for generation, from an adapter folder or a merged/full model folder.

    `trust_remote_code`, `allow_pickle`: the user's command-line choices (None: train.model_checks.load_policy's).
    """
    lm = load_trained_model(folder, model, trust_remote_code, allow_pickle)
    return lm, load_tokenizer(str(folder), trust_remote_code)


def load_trained_model(folder: str | Path, model: str | None = None, trust_remote_code: bool | None = None,
                       allow_pickle: bool | None = None):
    """An adapter on its base model (`model` overrides the recorded one), or a merged/full model folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise TrainError(f"{folder}: no such adapter folder")
    if (folder / "adapter_config.json").is_file():
        from peft import PeftModel

        check_adapter_folder(folder, allow_pickle)
        base = load_base_model(read_run_info(folder), model, trust_remote_code, allow_pickle, where=folder / RUN_INFO)
        try:
            lm = PeftModel.from_pretrained(base, str(folder))
        except Exception as exc:  # noqa: BLE001 - any adapter loading failure is one line
            raise TrainError(f"{folder}: cannot load the adapter: {short_reason(exc)}") from None
    else:
        device = pick_device()
        lm = load_model(str(folder), pick_dtype(device, None), trust_remote_code, device=device,
                        allow_pickle=allow_pickle)
    lm.eval()
    return lm


def load_base_model(info: dict, model: str | None = None, trust_remote_code: bool | None = None,
                    allow_pickle: bool | None = None, where: str | Path = RUN_INFO):
    """The base model a run started from (as recorded in its curatune_train.json), ready for inference.

    The saved config's trust_remote_code / allow_pickle are never read: only the caller's choice counts.
    """
    device = pick_device()
    base = load_model(base_model_of(info, model, where), pick_dtype(device, None), trust_remote_code, device=device,
                      allow_pickle=allow_pickle)
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
