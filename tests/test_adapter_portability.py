"""Adapters others can load (an absolute base model path) and hub model ids that fail fast, in one line."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from train.cli import main


def _run(*args):
    return CliRunner().invoke(main, ["run", *map(str, args)], catch_exceptions=False)


def test_adapter_names_its_base_model_absolutely(identity_bundle, tiny_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tiny_model.parent)
    result = _run(identity_bundle, "--model", Path("..") / tiny_model.parent.name / tiny_model.name,
                  "--output_dir", tmp_path / "run", "--max_steps", 1)
    assert result.exit_code == 0, result.stderr
    adapter = Path(result.stdout.strip().splitlines()[-1])
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_model.resolve())

    monkeypatch.chdir(tmp_path)  # anywhere else: peft and transformers find the base from the adapter alone
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(PeftConfig.from_pretrained(str(adapter)).base_model_name_or_path)
    assert PeftModel.from_pretrained(base, str(adapter)) is not None


@pytest.fixture
def hub_offline(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def _one_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("train:")]
    assert result.exit_code == 2 and len(lines) == 1 and "Traceback" not in result.stderr
    return lines[0]


def test_an_uncached_hub_model_fails_in_one_line_offline(identity_bundle, tmp_path, hub_offline):
    started = time.monotonic()
    line = _one_line(_run(identity_bundle, "--model", "curatune-tests/no-such-model", "--output_dir", tmp_path / "o"))
    assert time.monotonic() - started < 15
    assert line.startswith("train: cannot load model 'curatune-tests/no-such-model': not in the local cache")
    assert "HF_HUB_OFFLINE" in line and "hf download curatune-tests/no-such-model --local-dir DIR" in line


def test_an_unreachable_hub_is_probed_once_with_a_timeout(identity_bundle, tmp_path, monkeypatch):
    from huggingface_hub import HfApi, constants

    calls = []

    def unreachable(self, repo_id, **kwargs):
        calls.append((repo_id, kwargs.get("timeout")))
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(HfApi, "model_info", unreachable)
    line = _one_line(_run(identity_bundle, "--model", "curatune-tests/no-such-model", "--output_dir", tmp_path / "o"))
    assert "Name or service not known" in line and calls == [("curatune-tests/no-such-model", 10.0)]


def test_dataset_runs_probe_the_model_before_building(tmp_path, monkeypatch, hub_offline):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.jsonl").write_text('{"query": "q?", "response": "a."}\n', encoding="utf-8")
    line = _one_line(_run("--dataset", "d.jsonl", "--model", "curatune-tests/no-such-model"))
    assert "not in the local cache" in line and not (tmp_path / "output").exists()


def test_local_paths_are_never_probed(identity_bundle, tmp_path, monkeypatch):
    from huggingface_hub import HfApi

    monkeypatch.setattr(HfApi, "model_info", lambda *a, **k: pytest.fail("probed a local path"))
    line = _one_line(_run(identity_bundle, "--model", tmp_path / "missing", "--output_dir", tmp_path / "o"))
    assert "no such folder" in line


def test_plain_adapter_computes_what_the_trainable_token_adapter_computes(tiny_model, tmp_path):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from train.plain_adapter import write_plain_adapter
    from train.tiny import build_random_adapter

    adapter = build_random_adapter(tiny_model, tmp_path / "adapter", template="chatml", scale=0.5)
    assert json.loads((adapter / "adapter_config.json").read_text())["trainable_token_indices"]
    plain = write_plain_adapter(adapter, tmp_path / "plain")
    keys = load_file(str(plain / "adapter_model.safetensors"))
    assert keys and all(k.endswith(("lora_A.weight", "lora_B.weight", "lora_embedding_A", "lora_embedding_B"))
                        for k in keys)
    config = json.loads((plain / "adapter_config.json").read_text())
    assert config["trainable_token_indices"] is None and not config["rank_pattern"] and not config["alpha_pattern"]
    pairs = [v.shape for k, v in keys.items() if "embed_tokens" in k or "lm_head" in k]
    assert len(pairs) == 4 and all(config["r"] in shape for shape in pairs)  # one alpha/r scale for every pair
    ids = torch.tensor([[1, 5, 7, 2, 9, 1, 2, 3]])  # 1 and 2 are <|im_start|> and <|im_end|>, the trained rows
    logits = []
    for folder in (adapter, plain):
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_model)), str(folder)).eval()
        with torch.no_grad():
            logits.append(model(ids).logits)
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model)).eval()
    with torch.no_grad():
        assert (logits[0] - base(ids).logits).abs().max() > 1e-2  # the rows did change the output
    assert torch.allclose(logits[0], logits[1], atol=1e-4)


def test_a_template_run_writes_the_plain_copy(identity_bundle, tiny_model, tmp_path):
    result = _run(identity_bundle, "--model", tiny_model, "--output_dir", tmp_path / "t", "--max_steps", 1,
                  "--template", "chatml")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "t" / "adapter_plain" / "adapter_model.safetensors").is_file()
    result = _run(identity_bundle, "--model", tiny_model, "--output_dir", tmp_path / "n", "--max_steps", 1)
    assert result.exit_code == 0 and not (tmp_path / "n" / "adapter_plain").exists()
