"""A bundle, model folder or adapter from someone else: `train` runs no code from it, reads nothing
outside it and writes nothing outside the folders the user chose.

Each test is one attack. Each asserts the exit status (2: bad input), that stderr is exactly one
`train: ...` line without a traceback, that no remote code or pickle ran (marker files), and that
nothing was written outside the test's folders. Nearly every attack is refused before a model is
loaded; the adapters are built directly with peft on the tiny model, without training.
"""
from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from schemas.bundle import manifest_id, sha256_file
from tests.conftest import IDENTITY, IDENTITY_TARGET, identity_records, make_record, write_bundle
from train.cli import main

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- helpers


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def one_line(result, code: int = 2) -> str:
    """The run exited `code` with exactly one `train: ...` line on stderr and no traceback; returns it."""
    assert result.exit_code == code, (result.exit_code, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("train: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


def reseal(version: Path) -> Path:
    """Give a hand-written bundle the id the build computes (as an attacker who edits a manifest would)."""
    file = version / "manifest.json"
    data = json.loads(file.read_text(encoding="utf-8"))
    data["id"] = manifest_id(data["files"], data["recipe"])
    file.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return version


def bundle(root: Path, recipe_train=None, name: str = "grace", identity=None) -> Path:
    val = [make_record([IDENTITY[0]], "identity", "val:1")]
    return reseal(write_bundle(root, identity_records(), val, recipe_train=recipe_train, name=name,
                               identity=identity))


def edit_manifest(version: Path, change) -> Path:
    file = version / "manifest.json"
    data = json.loads(file.read_text(encoding="utf-8"))
    change(data)
    file.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return version


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every path under `folder` with its bytes (None for folders and links)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        out[str(path.relative_to(folder))] = path.read_bytes() if path.is_file() and not path.is_symlink() else None
    return out


class Area:
    """cwd: an empty working folder (default output dirs land here); outside: a folder attacks aim at."""

    def __init__(self, tmp_path: Path):
        self.cwd = tmp_path / "work"
        self.outside = tmp_path / "outside"
        self.cwd.mkdir()
        self.outside.mkdir()
        (self.outside / "keep.txt").write_text("untouched\n", encoding="utf-8")
        self.before = tree(self.outside)
        self.root_output = (ROOT / "output").exists() and tree(ROOT / "output")

    def assert_untouched(self) -> None:
        assert tree(self.outside) == self.before, "something was written outside"
        assert list(self.cwd.iterdir()) == [], "a refused run wrote into the working folder"
        assert ((ROOT / "output").exists() and tree(ROOT / "output")) == self.root_output


@pytest.fixture
def area(tmp_path, monkeypatch):
    area = Area(tmp_path)
    monkeypatch.chdir(area.cwd)
    yield area
    area.assert_untouched()


def _remote_code(marker: Path) -> str:
    return (f"from pathlib import Path\nPath({str(marker)!r}).write_text('remote code ran')\n"
            "from transformers import Qwen2Config as EvilConfig, Qwen2ForCausalLM as EvilForCausalLM\n"
            "from transformers import PreTrainedTokenizerFast as EvilTokenizer\n")


@pytest.fixture(scope="module")
def evil_model(tiny_model, tmp_path_factory):
    """The tiny model with a model type only its own code defines: config.json and tokenizer_config.json
    auto_map to local modules that write a marker file when imported. Returns (folder, marker)."""
    root = tmp_path_factory.mktemp("evil")
    folder, marker = root / "model", root / "REMOTE_CODE_RAN"
    shutil.copytree(tiny_model, folder)
    for module in ("modeling_evil.py", "configuration_evil.py", "tokenization_evil.py"):
        (folder / module).write_text(_remote_code(marker), encoding="utf-8")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config.update(model_type="evil", architectures=["EvilForCausalLM"],
                  auto_map={"AutoConfig": "configuration_evil.EvilConfig",
                            "AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"})
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    tok = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    tok["auto_map"] = {"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]}
    (folder / "tokenizer_config.json").write_text(json.dumps(tok), encoding="utf-8")
    return folder, marker


class _Boom:
    """Unpickling this runs code: what a hostile pytorch_model.bin can do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('pickle ran')",)


def _pickle_bomb(file: Path, marker: Path) -> None:
    file.write_bytes(pickle.dumps(_Boom(marker)))


@pytest.fixture(scope="module")
def pickle_marker(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pickle") / "PICKLE_RAN"


@pytest.fixture(scope="module")
def adapter(tiny_model, tmp_path_factory):
    """A real LoRA adapter on the tiny model (no training), saved as `train run` saves one."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    folder = tmp_path_factory.mktemp("adapter") / "adapter"
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model))
    with warnings.catch_warnings():  # peft still calls transformers' deprecated is_gradient_checkpointing
        warnings.simplefilter("ignore", FutureWarning)
        lm = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"],
                                             task_type="CAUSAL_LM"))
    lm.save_pretrained(folder, safe_serialization=True)
    for file in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (tiny_model / file).is_file():
            shutil.copy(tiny_model / file, folder / file)
    info = {"config": {"trust_remote_code": False, "max_length": 256}, "train_type": "lora",
            "base_model": str(tiny_model), "base_model_path": str(tiny_model), "bundle": None}
    (folder / "curatune_train.json").write_text(json.dumps(info), encoding="utf-8")
    return folder


def copy_adapter(adapter: Path, dest: Path, **info_changes) -> Path:
    shutil.copytree(adapter, dest)
    file = dest / "curatune_train.json"
    info = json.loads(file.read_text(encoding="utf-8"))
    info.update(info_changes)
    file.write_text(json.dumps(info), encoding="utf-8")
    return dest


def adapter_command(command: str, folder: Path, area: Area) -> list:
    if command == "chat":
        return ["chat", folder, "--prompt", "Who are you?", "--max_new_tokens", 2]
    if command == "merge":
        return ["merge", folder, "--output_dir", area.cwd / "merged"]
    return ["eval", folder, "--output", area.cwd / "eval.json", "--max_new_tokens", 2]


# ---------------------------------------------------------------- remote code


def test_manifest_recipe_cannot_turn_on_remote_code(tmp_path, area, evil_model):
    """1. The bundle's recipe says `train: {trust_remote_code: true}` (id recomputed, so the manifest is
    self-consistent): refused naming the manifest and the key, before any model is touched."""
    folder, marker = evil_model
    version = bundle(tmp_path / "b", recipe_train={"trust_remote_code": True})
    line = one_line(invoke("run", version, "--model", folder, "--output_dir", area.cwd / "out"))
    assert line.startswith(f"train: {version / 'manifest.json'}: recipe.train.trust_remote_code: ")
    assert "--trust_remote_code" in line
    assert not marker.exists()


def test_manifest_recipe_refused_even_with_the_flag(tmp_path, area, evil_model):
    """2. Passing --trust_remote_code does not make a bundle that asks for it acceptable (dashed key too)."""
    folder, marker = evil_model
    version = bundle(tmp_path / "b", recipe_train={"trust-remote-code": True})
    line = one_line(invoke("run", version, "--model", folder, "--trust_remote_code", "--output_dir", area.cwd / "o"))
    assert f"{version / 'manifest.json'}: recipe.train.trust-remote-code: " in line
    assert not marker.exists()


def test_model_with_its_own_code_is_refused_without_the_flag(tmp_path, area, evil_model):
    """3. --model names a folder whose config auto_maps to its own modeling code: nothing is imported."""
    folder, marker = evil_model
    version = bundle(tmp_path / "b")
    line = one_line(invoke("run", version, "--model", folder, "--output_dir", area.cwd / "out"))
    assert line.startswith(f"train: {folder / 'config.json'}: auto_map: ") and "--trust_remote_code" in line
    assert not marker.exists()


def test_bundle_cannot_pick_a_model_with_code(tmp_path, area, evil_model):
    """4. The recipe's train.model points at the code-carrying folder (no --model given)."""
    folder, marker = evil_model
    version = bundle(tmp_path / "b", recipe_train={"model": str(folder)})
    line = one_line(invoke("run", version, "--output_dir", area.cwd / "out"))
    assert f"{folder / 'config.json'}: auto_map: " in line
    assert not marker.exists()


@pytest.mark.parametrize("command", ["chat", "eval", "merge"])
def test_saved_config_cannot_turn_on_remote_code(tmp_path, area, evil_model, adapter, command):
    """5. An adapter's curatune_train.json says trust_remote_code (and allow_pickle) and names the
    code-carrying base model: the saved values are ignored, so the base is refused."""
    folder, marker = evil_model
    version = bundle(tmp_path / "b", identity=IDENTITY_TARGET)
    hostile = copy_adapter(adapter, tmp_path / "hostile", base_model=str(folder), base_model_path=str(folder),
                           config={"trust_remote_code": True, "allow_pickle": True, "max_length": 256},
                           bundle={"path": str(version), "manifest_id": "x", "name": "grace"})
    line = one_line(invoke(*adapter_command(command, hostile, area)))
    assert f"{folder / 'config.json'}: auto_map: " in line
    assert not marker.exists()


def test_chat_with_a_code_carrying_model_folder(area, evil_model):
    """6. `train chat` on a full model folder that carries its own code."""
    folder, marker = evil_model
    line = one_line(invoke("chat", folder, "--prompt", "hi"))
    assert "auto_map" in line and "--trust_remote_code" in line
    assert not marker.exists()


def test_attention_kernel_from_the_hub_is_refused(tmp_path, area, tiny_model):
    """7. config.json asks for an attention implementation fetched (and run) from the hub."""
    folder = tmp_path / "kernel-model"
    shutil.copytree(tiny_model, folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["attn_implementation"] = "evil-org/flash-attn-backdoor"
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    line = one_line(invoke("run", bundle(tmp_path / "b"), "--model", folder, "--output_dir", area.cwd / "out"))
    assert f"{folder / 'config.json'}: attn_implementation: " in line


def test_subprocess_stderr_is_one_line_and_no_module_is_cached(tmp_path, evil_model):
    """8. The real command line, isolated HOME/HF caches: a hostile bundle + code-carrying model prints one
    line, exits 2, runs nothing and copies no module into the transformers modules cache."""
    folder, marker = evil_model
    version = bundle(tmp_path / "b", recipe_train={"model": str(folder)})
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {**os.environ, "HOME": str(home), "HF_HOME": str(home / "hf"), "HF_HUB_OFFLINE": "1",
           "HF_MODULES_CACHE": str(home / "hf" / "modules"), "CURATUNE_CACHE": str(home / "cache"),
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "train.cli", "run", str(version)], cwd=work, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("train: ") and "Traceback" not in proc.stderr, proc.stderr
    assert not marker.exists()
    assert not list(home.rglob("*evil*"))  # no module copied into the transformers modules cache
    assert list(work.iterdir()) == []


# ---------------------------------------------------------------- the bundle as a whole


def test_manifest_listing_no_files(tmp_path, area, tiny_model):
    """9. A manifest with `files: {}` would let any train.jsonl through unchecked."""
    version = edit_manifest(bundle(tmp_path / "b"), lambda m: m.update(files={}))
    line = one_line(invoke("run", version, "--model", tiny_model, "--output_dir", area.cwd / "out"))
    assert line.startswith(f"train: {version / 'manifest.json'}: files: lists no data files")


@pytest.mark.parametrize("dropped,where,message", [
    ("train.jsonl", "manifest.json", "files.train.jsonl: missing"),  # 10. train.jsonl goes unhashed
    ("val.jsonl", "val.jsonl", "not listed in manifest.json"),  # 11. val.jsonl sits there, nothing vouches for it
])
def test_data_file_missing_from_manifest(tmp_path, area, tiny_model, dropped, where, message):
    """A data file the manifest does not list (its id recomputed, so only the listing is wrong)."""
    version = bundle(tmp_path / "b")

    def drop(m):
        del m["files"][dropped]
        m["id"] = manifest_id(m["files"], m["recipe"])
    edit_manifest(version, drop)
    line = one_line(invoke("run", version, "--model", tiny_model, "--output_dir", area.cwd / "out"))
    assert line.startswith(f"train: {version / where}: {message}")


def test_manifest_id_must_match_its_contents(tmp_path, area, tiny_model):
    """12. The recipe in the manifest was edited after the build (its id was not recomputed)."""
    version = edit_manifest(bundle(tmp_path / "b"), lambda m: m["recipe"].update(train={"learning_rate": 1.0}))
    line = one_line(invoke("run", version, "--model", tiny_model, "--output_dir", area.cwd / "out"))
    assert line.startswith(f"train: {version / 'manifest.json'}: id: does not match")


@pytest.mark.parametrize("name", ["modeling_evil.py", "extra.jsonl", "train.jsonl.bak", ".hidden"])
def test_unexpected_file_in_version_folder(tmp_path, area, tiny_model, name):
    """13. A version folder holds a file no build writes."""
    version = bundle(tmp_path / "b")
    (version / name).write_text("import os\n", encoding="utf-8")
    line = one_line(invoke("run", version, "--model", tiny_model, "--output_dir", area.cwd / "out"))
    assert line.startswith(f"train: {version / name}: unexpected file in a bundle version")


def test_symlinked_data_file_pointing_outside(tmp_path, area, tiny_model):
    """14. train.jsonl is a symlink to a file elsewhere (hash and id made to match): never read."""
    version = bundle(tmp_path / "b")
    secret = area.outside / "secret.jsonl"
    shutil.copy(version / "train.jsonl", secret)
    (version / "train.jsonl").unlink()
    (version / "train.jsonl").symlink_to(secret)
    area.before = tree(area.outside)
    line = one_line(invoke("run", version, "--model", tiny_model, "--output_dir", area.cwd / "out"))
    assert line.startswith(f"train: {version / 'train.jsonl'}: is a symlink")


def test_manifest_naming_a_file_outside_the_folder(tmp_path, area, tiny_model):
    """15. manifest files name `../../outside/keep.txt` (with its real hash): refused, not hashed."""
    version = bundle(tmp_path / "b")
    target = area.outside / "keep.txt"
    rel = os.path.relpath(target, version)

    def add(m):
        m["files"][rel] = {"sha256": sha256_file(target), "records": 1, "bytes": target.stat().st_size}
        m["id"] = manifest_id(m["files"], m["recipe"])
    edit_manifest(version, add)
    line = one_line(invoke("run", version, "--model", tiny_model, "--output_dir", area.cwd / "out"))
    assert line.startswith(f"train: {version / 'manifest.json'}: files.{rel}: not a bundle data file")


def test_manifest_not_json(tmp_path, area, tiny_model):
    """16. manifest.json is not JSON."""
    version = bundle(tmp_path / "b")
    (version / "manifest.json").write_text("{'id': 1,", encoding="utf-8")
    line = one_line(invoke("run", version, "--model", tiny_model, "--output_dir", area.cwd / "out"))
    assert line.startswith(f"train: {version / 'manifest.json'}: not valid JSON: ")


@pytest.mark.parametrize("key", ["files", "recipe", "id"])
def test_manifest_missing_a_field(tmp_path, area, tiny_model, key):
    """17. A required manifest field is missing: the line names it."""
    version = edit_manifest(bundle(tmp_path / "b"), lambda m: m.pop(key))
    line = one_line(invoke("run", version, "--model", tiny_model, "--output_dir", area.cwd / "out"))
    assert line == f"train: {version / 'manifest.json'}: {key}: Field required"


def test_manifest_name_escaping_the_output_folder(tmp_path, area, tiny_model):
    """18. The manifest's name (used for the default output folder) climbs out of the working folder."""
    version = bundle(tmp_path / "b", name="../../outside/pwned")
    line = one_line(invoke("run", version, "--model", tiny_model))
    assert line.startswith(f"train: {version / 'manifest.json'}: name: '../../outside/pwned' is not a plain name")


@pytest.mark.parametrize("where", ["absolute", "relative"])
def test_recipe_output_dir_outside_the_working_folder(tmp_path, area, tiny_model, where):
    """19. The recipe's train.output_dir writes elsewhere (absolute, or ../ out of the working folder)."""
    target = str(area.outside / "run") if where == "absolute" else "../outside/run"
    version = bundle(tmp_path / "b", recipe_train={"output_dir": target})
    line = one_line(invoke("run", version, "--model", tiny_model))
    assert line.startswith(f"train: {version / 'manifest.json'}: recipe.train.output_dir: ")
    assert "outside the current directory" in line


@pytest.mark.parametrize("key", ["resume", "allow_pickle"])
def test_recipe_cannot_resume_or_allow_pickles(tmp_path, area, tiny_model, key):
    """20. `resume` (loads the pickled optimizer state found in output_dir) and `allow_pickle` are the user's."""
    version = bundle(tmp_path / "b", recipe_train={key: True})
    line = one_line(invoke("run", version, "--model", tiny_model, "--output_dir", area.cwd / "out"))
    assert line.startswith(f"train: {version / 'manifest.json'}: recipe.train.{key}: ")


def test_recipe_train_not_a_mapping(tmp_path, area, tiny_model):
    """21. recipe.train is a list, not settings."""
    version = bundle(tmp_path / "b", recipe_train=["--trust_remote_code"])
    line = one_line(invoke("run", version, "--model", tiny_model, "--output_dir", area.cwd / "out"))
    assert line.startswith(f"train: {version / 'manifest.json'}: recipe.train: a mapping")


def test_deeply_nested_record(tmp_path, area, tiny_model):
    """22. A train.jsonl line nested 100,000 deep (listed with its real hash): one line, no RecursionError."""
    version = bundle(tmp_path / "b")
    (version / "train.jsonl").write_text("[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")

    def rehash(m):
        file = version / "train.jsonl"
        m["files"]["train.jsonl"].update(sha256=sha256_file(file), bytes=file.stat().st_size)
        m["id"] = manifest_id(m["files"], m["recipe"])
    edit_manifest(version, rehash)
    line = one_line(invoke("run", version, "--model", tiny_model, "--output_dir", area.cwd / "out"))
    assert line.startswith(f"train: {version / 'train.jsonl'}: record 1 is not a valid record")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_instead_of_a_data_file(tmp_path, area, tiny_model):
    """23. val.jsonl is a FIFO: reading it would hang forever; refused without opening it."""
    version = bundle(tmp_path / "b")
    (version / "val.jsonl").unlink()
    os.mkfifo(version / "val.jsonl")
    line = one_line(invoke("run", version, "--model", tiny_model, "--output_dir", area.cwd / "out"))
    assert line.startswith(f"train: {version / 'val.jsonl'}: is not a regular file")


# ---------------------------------------------------------------- weights


@pytest.mark.parametrize("weights", ["pytorch_model.bin", "model.pt", "last.ckpt"])
def test_pickle_only_model_is_refused(tmp_path, area, tiny_model, pickle_marker, weights):
    """24. The model folder holds a pickle checkpoint only (here one that runs code when unpickled)."""
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model, folder)
    (folder / "model.safetensors").unlink()
    _pickle_bomb(folder / weights, pickle_marker)
    line = one_line(invoke("run", bundle(tmp_path / "b"), "--model", folder, "--output_dir", area.cwd / "out"))
    assert line.startswith(f"train: {folder}: holds pickle weights only ({weights})")
    assert "safe_serialization=True" in line and line.endswith("or pass --allow_pickle")
    assert not pickle_marker.exists()


def test_chat_on_a_pickle_only_model_folder(tmp_path, area, tiny_model, pickle_marker):
    """25. `train chat` on a full model folder with only pytorch_model.bin."""
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model, folder)
    (folder / "model.safetensors").unlink()
    _pickle_bomb(folder / "pytorch_model.bin", pickle_marker)
    line = one_line(invoke("chat", folder, "--prompt", "hi"))
    assert "holds pickle weights only (pytorch_model.bin)" in line and "--allow_pickle" in line
    assert not pickle_marker.exists()


@pytest.mark.parametrize("command", ["chat", "eval", "merge"])
def test_pickle_only_adapter_is_refused(tmp_path, area, adapter, pickle_marker, command):
    """26. The adapter folder holds adapter_model.bin (a pickle that runs code) instead of safetensors."""
    version = bundle(tmp_path / "b", identity=IDENTITY_TARGET)
    hostile = copy_adapter(adapter, tmp_path / "hostile", bundle={"path": str(version)})
    (hostile / "adapter_model.safetensors").unlink()
    _pickle_bomb(hostile / "adapter_model.bin", pickle_marker)
    line = one_line(invoke(*adapter_command(command, hostile, area)))
    assert line.startswith(f"train: {hostile}: holds its adapter as pickle only (adapter_model.bin)")
    assert line.endswith("or pass --allow_pickle")
    assert not pickle_marker.exists()


def test_weight_index_naming_a_file_outside(tmp_path, area, tiny_model):
    """27. model.safetensors.index.json maps tensors to a shard outside the model folder."""
    folder = tmp_path / "sharded"
    shutil.copytree(tiny_model, folder)
    index = folder / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {"lm_head.weight": "../outside/keep.txt"}}), encoding="utf-8")
    line = one_line(invoke("run", bundle(tmp_path / "b"), "--model", folder, "--output_dir", area.cwd / "out"))
    assert line.startswith(f"train: {index}: weight_map: names '../outside/keep.txt'")


# ---------------------------------------------------------------- other bad input


def test_model_folder_without_tokenizer_files(tmp_path, area, tiny_model):
    """28. No tokenizer.json (transformers would quietly build an empty tokenizer)."""
    folder = tmp_path / "no-tokenizer"
    shutil.copytree(tiny_model, folder)
    for file in folder.glob("tokenizer*"):
        file.unlink()
    line = one_line(invoke("run", bundle(tmp_path / "b"), "--model", folder, "--output_dir", area.cwd / "out"))
    assert line.startswith(f"train: {folder / 'tokenizer.json'}: missing")


def test_run_output_dir_is_an_existing_file(tmp_path, area, tiny_model):
    """29. --output_dir names an existing file (or a path through one)."""
    file = area.outside / "keep.txt"
    for target in (file, file / "run"):
        line = one_line(invoke("run", bundle(tmp_path / f"b-{target.name}"), "--model", tiny_model,
                               "--output_dir", target))
        assert line.startswith(f"train: {target}: output_dir ") and "an existing file, not a folder" in line


def test_merge_output_dir_is_an_existing_file(area, adapter):
    """30. `train merge --output_dir` names an existing file."""
    file = area.outside / "keep.txt"
    line = one_line(invoke("merge", adapter, "--output_dir", file))
    assert line.startswith(f"train: {file}: output_dir is an existing file")


@pytest.mark.parametrize("text, expected", [
    ("{not json", "not valid JSON: "),
    ('{"config": ["--trust_remote_code"], "base_model": "x"}', "config: expected dict, got list"),
    ('{"config": {"max_length": "long"}, "base_model": "x"}', "config.max_length: expected int, got str"),
    ('["a list"]', "expected a JSON object, got list"),
])
def test_adapter_run_info_is_checked(tmp_path, area, adapter, text, expected):
    """31. curatune_train.json is not JSON, or its keys have the wrong types."""
    hostile = copy_adapter(adapter, tmp_path / "hostile")
    (hostile / "curatune_train.json").write_text(text, encoding="utf-8")
    line = one_line(invoke("chat", hostile, "--prompt", "hi"))
    assert line.startswith(f"train: {hostile / 'curatune_train.json'}: {expected}")


def test_adapter_without_weights(tmp_path, area, adapter):
    """32. adapter_config.json but no adapter weights: one line, no attempt to fetch it from the hub."""
    hostile = copy_adapter(adapter, tmp_path / "hostile")
    (hostile / "adapter_model.safetensors").unlink()
    line = one_line(invoke("chat", hostile, "--prompt", "hi"))
    assert line == f"train: {hostile}: no adapter_model.safetensors here; pass the adapter folder `train run` printed"
