"""Folding a LoRA adapter into its base weights, for serving without peft."""
from __future__ import annotations

import json
from pathlib import Path

from train.chat import RUN_INFO, load_for_chat, read_run_info
from train.errors import TrainError
from train.run import check_output_dir


def merge_adapter(adapter: str | Path, output_dir: str | Path, model: str | None = None,
                  trust_remote_code: bool | None = None, allow_pickle: bool | None = None) -> Path:
    """merge_and_unload, then save safetensors + tokenizer (+ the run info, marked as merged).

    `trust_remote_code`, `allow_pickle`: the user's command-line choices (None: train.model_checks.load_policy's).
    """
    adapter, output_dir = Path(adapter), Path(output_dir)
    if not (adapter / "adapter_config.json").is_file():
        raise TrainError(f"{adapter}: not a LoRA adapter folder (no adapter_config.json)")
    check_output_dir(output_dir)
    info = read_run_info(adapter)
    lm, tokenizer = load_for_chat(adapter, model, trust_remote_code, allow_pickle)
    merged = lm.merge_and_unload()
    output_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(output_dir, safe_serialization=True)
    tokenizer.save_pretrained(output_dir)
    info["merged_from"] = str(adapter.resolve())
    (output_dir / RUN_INFO).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return output_dir.resolve()
