"""A plain-LoRA copy of an adapter that trained chat-marker rows as peft trainable tokens.

With `--template`, the embedding rows of the template's markers are trained as peft's
`trainable_tokens_delta` (despite its name, the rows' new values), a tensor only peft reads:
llama.cpp's convert_lora_to_gguf.py stops at it ("Not a lora_A or lora_B tensor") and vLLM loads
LoRA pairs only. The same change is a LoRA pair on the embedding (n marker rows, d = new - original
rows): A picks the rows (one-hot), B holds d; on a tied output layer, A holds d and B picks the rows.
The pairs get the adapter's own rank r (zero-padded; n <= r for every built-in template) and its
B is divided by the adapter's scale, because converters apply one alpha/r to every pair. So the
copy (OUTPUT_DIR/adapter_plain) computes what the adapter computes, with LoRA tensors only.
Known limit: llama.cpp's converter refuses an lm_head pair on a base whose output layer is tied
to the embedding (its issue 9065), which is where peft moved those rows too.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

DELTA = ".token_adapter.trainable_tokens_delta"
HEAD = "base_model.model.lm_head"


def _token_ids(config: dict[str, Any]) -> list[int]:
    indices = config.get("trainable_token_indices")
    if isinstance(indices, dict):  # {"embed_tokens": [...]}: one module is all a run trains
        if len(indices) != 1:
            raise ValueError(f"trainable tokens on {len(indices)} modules; only one is supported")
        indices = next(iter(indices.values()))
    return [int(i) for i in indices or []]


def _with_targets(targets: Any, names: list[str]) -> Any:
    if isinstance(targets, str):  # a regex peft full-matches
        return "(?:" + targets + ")|" + "|".join(rf"(?:.*\.)?{name}" for name in names)
    return sorted(set(targets or []) | set(names))


def _base_rows(name: str, tokens: list[int]):
    """The base model's original embedding rows for `tokens`, read from its safetensors files alone."""
    from safetensors import safe_open

    folder = Path(name)
    if not folder.is_dir():
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(name, local_files_only=True, allow_patterns=["*.safetensors", "*.json"]))
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():
                if key.endswith("embed_tokens.weight"):
                    return handle.get_slice(key)[:][tokens]
    raise ValueError(f"{name}: no embed_tokens weight in its safetensors files")


def write_plain_adapter(adapter: str | Path, target: str | Path, original=None) -> Path | None:
    """Write the plain-LoRA copy of `adapter` into `target`; None when it has no trainable tokens.
    `original`: the base embedding rows of the trained tokens (read from the base model when None)."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoConfig

    adapter, target = Path(adapter), Path(target)
    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    tokens = _token_ids(config)
    if not tokens:
        return None
    weights = load_file(str(adapter / "adapter_model.safetensors"))
    deltas = {key: weights.pop(key) for key in list(weights) if key.endswith(DELTA)}
    if len(deltas) != 1:
        raise ValueError(f"{adapter}: expected one trainable-token delta, found {len(deltas)}")
    (key, delta), = deltas.items()
    base = AutoConfig.from_pretrained(config["base_model_name_or_path"])
    vocab, count = base.vocab_size, len(tokens)
    if delta.shape[0] != count:
        raise ValueError(f"{adapter}: {delta.shape[0]} delta rows for {count} trainable tokens")
    if original is None:
        original = _base_rows(config["base_model_name_or_path"], tokens)
    rank = max(int(config["r"]), count)
    alpha = float(config["lora_alpha"])
    scale = alpha / rank ** 0.5 if config.get("use_rslora") else alpha / rank
    change = torch.zeros(rank, delta.shape[1], dtype=torch.float32)
    change[:count] = (delta.float() - original.float().cpu()) / scale
    picks = torch.zeros(rank, vocab, dtype=torch.float32)
    picks[torch.arange(count), torch.tensor(tokens)] = 1
    embedding = key[: -len(DELTA)]
    weights[f"{embedding}.lora_embedding_A"] = picks.to(delta.dtype).contiguous()
    weights[f"{embedding}.lora_embedding_B"] = change.T.to(delta.dtype).contiguous()
    names = [embedding.rsplit(".", 1)[-1]]
    if getattr(base, "tie_word_embeddings", False):  # peft moved the tied output rows by the same change
        weights[f"{HEAD}.lora_A.weight"] = change.to(delta.dtype).contiguous()
        weights[f"{HEAD}.lora_B.weight"] = picks.T.to(delta.dtype).contiguous()
        names.append("lm_head")
    config.update(trainable_token_indices=None, target_modules=_with_targets(config.get("target_modules"), names))
    if rank != int(config["r"]):  # more markers than the rank: these pairs need their own (peft reads it)
        config["rank_pattern"] = {**(config.get("rank_pattern") or {}), **{n: rank for n in names}}
    target.mkdir(parents=True, exist_ok=True)
    for item in adapter.iterdir():  # tokenizer and run info travel with it
        if item.is_file() and item.name not in ("adapter_config.json", "adapter_model.safetensors"):
            shutil.copy2(item, target / item.name)
    save_file(weights, str(target / "adapter_model.safetensors"), metadata={"format": "pt"})
    (target / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return target
