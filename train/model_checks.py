"""Safety checks on a model folder before transformers reads it, and the load policy they follow.

A model folder may come from someone else, so nothing in it decides what runs: its own Python code
(config `auto_map`, a hub attention kernel) loads only with the user's --trust_remote_code, and
weights load as safetensors only unless the user passes --allow_pickle. Both come from the command
line, as arguments or through `load_policy` (for callers that load several models); never from a
recipe, a bundle or a saved run's `curatune_train.json`.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from train.errors import TrainError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
REMOTE_CODE_HINT = "only your own --trust_remote_code flag runs it; pass it only if you trust that folder"
ATTENTION_KEYS = ("attn_implementation", "_attn_implementation", "_attn_implementation_internal")
# Files that hold a tokenizer's vocabulary (any one is enough).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model", "*.tiktoken",
                   "sentencepiece.bpe.model")


@dataclass(frozen=True)
class LoadPolicy:
    """What the user allowed on the command line; the defaults run no code from a model folder."""

    trust_remote_code: bool = False
    allow_pickle: bool = False


_POLICY: ContextVar[LoadPolicy] = ContextVar("curatune_load_policy", default=LoadPolicy())


@contextmanager
def load_policy(trust_remote_code: bool = False, allow_pickle: bool = False) -> Iterator[LoadPolicy]:
    """Within the block, loads that are not told otherwise follow these command-line choices."""
    token = _POLICY.set(LoadPolicy(bool(trust_remote_code), bool(allow_pickle)))
    try:
        yield _POLICY.get()
    finally:
        _POLICY.reset(token)


def remote_code_allowed(trust_remote_code: bool | None) -> bool:
    return _POLICY.get().trust_remote_code if trust_remote_code is None else bool(trust_remote_code)


def pickle_allowed(allow_pickle: bool | None) -> bool:
    return _POLICY.get().allow_pickle if allow_pickle is None else bool(allow_pickle)


def pickle_files(folder: Path, suffixes: tuple[str, ...] = PICKLE_SUFFIXES) -> list[str]:
    """Names of the pickle checkpoints (torch.save files) directly in `folder`."""
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in suffixes and p.is_file())


def _read_config(config: Path) -> dict | None:
    try:
        values = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None  # transformers reports an unreadable config in its own words
    return values if isinstance(values, dict) else None


def check_model_folder(name: str, trust_remote_code: bool = False, allow_pickle: bool = False,
                       weights: bool = True) -> None:
    """Refuse, before transformers reads it, a local model folder that would run code or read elsewhere:
    a model type only its own code (auto_map) defines, or an attention implementation fetched from the
    hub (without --trust_remote_code); with `weights`, pickle weights alone (without --allow_pickle)
    and shards named outside the folder."""
    folder = Path(name).expanduser()
    if not folder.is_dir():
        return
    config = folder / "config.json"
    values = _read_config(config) if config.is_file() else None
    if values is not None and not trust_remote_code:
        model_type = values.get("model_type")
        if values.get("auto_map") and not _known_model_type(model_type):
            raise TrainError(f"{config}: auto_map: model type {model_type!r} is defined by the folder's own Python "
                             f"code; {REMOTE_CODE_HINT}")
        for key in ATTENTION_KEYS:
            value = values.get(key)
            for item in (value.values() if isinstance(value, dict) else [value]):
                if isinstance(item, str) and "/" in item:
                    raise TrainError(f"{config}: {key}: {item!r} loads attention code from the hub; "
                                     f"{REMOTE_CODE_HINT}")
    if not weights:
        return
    if not allow_pickle and not any(folder.glob("*.safetensors")):
        pickles = pickle_files(folder)
        if pickles:
            raise TrainError(f"{folder}: holds pickle weights only ({', '.join(pickles[:3])}), which can run code "
                             "when loaded; convert them once where you trust them (AutoModelForCausalLM."
                             "from_pretrained(PATH).save_pretrained(PATH, safe_serialization=True)), or pass "
                             "--allow_pickle")
    for index in sorted(folder.glob("*.index.json")):
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map") or {}
            shards = {str(shard) for shard in weight_map.values()}
        except (OSError, ValueError, AttributeError, TypeError, RecursionError):
            raise TrainError(f"{index}: weight_map: not a valid weight index (JSON mapping tensors to file names)") \
                from None
        for shard in sorted(shards):
            if Path(shard).name != shard or shard in (".", ".."):
                raise TrainError(f"{index}: weight_map: names {shard!r}, a file outside the model folder")


def _known_model_type(model_type) -> bool:
    from transformers import CONFIG_MAPPING

    return isinstance(model_type, str) and model_type in CONFIG_MAPPING


def check_tokenizer_files(name: str) -> None:
    """A local folder must hold a tokenizer vocabulary: without one transformers quietly builds an empty one."""
    folder = Path(name).expanduser()
    if folder.is_dir() and not any(any(folder.glob(pattern)) for pattern in TOKENIZER_FILES):
        raise TrainError(f"{folder / 'tokenizer.json'}: missing (no tokenizer file: tokenizer.json, tokenizer.model, "
                         "vocab.json, ...); copy the tokenizer files from the base model")
