"""ms-swift's `swift sft` command lines work with `train run` as typed (train.swift_args, train.dataset_run)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from train.cli import BOOLEAN_FLAGS, main
from train.swift_args import SwiftArgsError, normalise_args

BOOLS = {"packing", "bf16", "resume"}


@pytest.mark.parametrize("args, expected", [
    (["--packing", "true", "--bf16", "false"], ["--packing", "--no-bf16"]),
    (["--packing=True", "--bf16=0", "--resume"], ["--packing", "--no-bf16", "--resume"]),
    (["--packing", "--max_steps", "3"], ["--packing", "--max_steps", "3"]),
    (["--target_modules", "q_proj", "v_proj", "--lora_rank", "8"],
     ["--target_modules", "q_proj,v_proj", "--lora_rank", "8"]),
    (["--target-modules=all-linear"], ["--target-modules", "all-linear"]),
    (["--dataset", "a.json#500", "b.jsonl", "--model_name", "小格", "Grace", "--model_author", "唐寅", "Tang Yin"],
     ["--dataset", "a.json#500", "--dataset", "b.jsonl", "--model_name", "小格", "--model_name", "Grace",
      "--model_author", "唐寅", "--model_author", "Tang Yin"]),
    (["bundle/", "--system", "true", "--", "--packing", "true"],
     ["bundle/", "--system", "true", "--", "--packing", "true"]),
])
def test_swift_forms_become_click_forms(args, expected):
    got = normalise_args(args, BOOLS, joined={"target_modules"}, repeated={"dataset", "model_name", "model_author"})
    assert got == expected


def test_a_boolean_with_another_value_is_an_error():
    with pytest.raises(SwiftArgsError, match="--packing: 'maybe' is not true or false"):
        normalise_args(["--packing=maybe"], BOOLS)


def test_every_boolean_setting_is_known_to_the_pre_parser():
    assert {"packing", "bf16", "gradient_checkpointing", "trust_remote_code", "allow_pickle", "resume"} <= BOOLEAN_FLAGS


@pytest.mark.parametrize("cli", [["-h"], ["run", "-h"], ["chat", "-h"], ["eval", "-h"], ["merge", "-h"]])
def test_dash_h_is_help(cli):
    result = CliRunner().invoke(main, cli)
    assert result.exit_code == 0 and "Usage:" in result.output


def test_curate_dash_h_is_help():
    from curate.cli import main as curate_main

    for cli in (["-h"], ["build", "-h"], ["validate", "-h"]):
        result = CliRunner().invoke(curate_main, cli)
        assert result.exit_code == 0 and "Usage:" in result.output


def _run(*args) -> object:
    return CliRunner().invoke(main, ["run", *map(str, args)], catch_exceptions=False)


def test_swift_flags_reach_the_saved_config(identity_bundle, tiny_model, tmp_path):
    out = tmp_path / "run"
    result = _run(identity_bundle, "--model", tiny_model, "--output_dir", out, "--max_steps", 1,
                  "--tuner_type", "lora", "--packing", "true", "--bf16", "false", "--gradient_checkpointing", "false",
                  "--target_modules", "q_proj", "v_proj", "--torch_dtype", "float32", "--max_grad_norm", 0.5,
                  "--dataloader_num_workers", 4, "--per_device_eval_batch_size", 2)
    assert result.exit_code == 0, result.stderr
    config = json.loads((Path(result.stdout.strip().splitlines()[-1]) / "curatune_train.json").read_text())["config"]
    assert (config["packing"], config["bf16"], config["gradient_checkpointing"]) == (True, False, False)
    assert (config["target_modules"], config["torch_dtype"]) == ("q_proj,v_proj", "float32")
    assert config["max_grad_norm"] == 0.5
    assert (config["dataloader_num_workers"], config["per_device_eval_batch_size"]) == (4, 2)


@pytest.mark.parametrize("args, message", [
    (["--torch_dtype", "bfloat16"], "train: --torch_dtype bfloat16 needs a GPU with bf16 support"),
    (["--torch_dtype", "float16"], "train: --torch_dtype float16 needs a GPU"),
    (["--torch_dtype", "float32", "--bf16", "true"], "train: --torch_dtype float32 and --bf16 true disagree"),
])
def test_dtype_choices_that_cannot_hold_here_are_one_line(identity_bundle, tiny_model, tmp_path, args, message):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU supports these")
    result = _run(identity_bundle, "--model", tiny_model, "--output_dir", tmp_path / "o", "--max_steps", 1, *args)
    assert result.exit_code == 2 and result.stderr.strip().splitlines()[-1].startswith(message)


def test_bundle_or_dataset_but_one_of_them(identity_bundle):
    assert "give a BUNDLE folder, or --dataset" in _run("--model", "m").stderr
    assert "not both" in _run(identity_bundle, "--dataset", "x.jsonl").stderr
    assert "--model_name and --model_author" in _run("--dataset", "swift/self-cognition#500").stderr


def test_the_tutorial_command_builds_a_bundle_beside_the_run(tiny_model, tmp_path, monkeypatch):
    shared = Path("/work/shared/data")
    if not (shared / "alpaca_zh_demo.json").exists():
        pytest.skip("shared data not present")
    monkeypatch.chdir(tmp_path)
    for name in ("alpaca_zh_demo.json", "alpaca_en_demo.json", "glaive_toolcall_en_demo.json"):
        (tmp_path / name).write_bytes((shared / name).read_bytes())
    result = _run("--model", tiny_model, "--dataset", "alpaca_zh_demo.json#200", "alpaca_en_demo.json#200",
                  "glaive_toolcall_en_demo.json#50", "swift/self-cognition#500",
                  "--model_name", "小格", "Grace", "--model_author", "唐寅", "Tang Yin",
                  "--split_dataset_ratio", "0.05", "--max_steps", 1, "--max_length", 256)
    assert result.exit_code == 0, result.stderr
    run = tmp_path / "output" / "dataset-run"
    assert Path(result.stdout.strip().splitlines()[-1]) == (run / "adapter").resolve()
    manifest = json.loads((run / "bundle" / "v0001" / "manifest.json").read_text())
    assert manifest["identity"]["name"] == {"zh": "小格", "en": "Grace"}
    assert [s["sample"] for s in manifest["sources"][1:]] == [200, 200, 50]
    assert manifest["recipe"]["split"]["val_ratio"] == 0.05
    assert "curate build" in (run / "recipe.yaml").read_text(encoding="utf-8")
    info = json.loads((run / "adapter" / "curatune_train.json").read_text())
    assert info["bundle"]["path"] == str((run / "bundle" / "v0001").resolve())
