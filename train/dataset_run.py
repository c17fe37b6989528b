"""`train run --dataset ...` with no bundle: the ms-swift tutorials' way in, through the same curation.

The sources (files, globs, dataset folders, hub names, each with an optional `#N`), the identity
(`--model_name ZH EN`, `--model_author ZH EN`, with curatune's shipped identity templates) and the
default mix become a recipe written beside the run (OUTPUT_DIR/recipe.yaml); `curate build` runs
on it as a subprocess (train never imports curate) and the bundle stays beside the run
(OUTPUT_DIR/bundle/vNNNN), so the run can be repeated, inspected and diffed like any other.
`swift/self-cognition` names ms-swift's identity data: here it means the shipped templates.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Callable, Sequence

from train.errors import TrainError
from train.hub_probe import probe_hub_model

RECIPE_NAME = "dataset-run"
SELF_COGNITION = re.compile(r"^(?:hf:)?(?:[\w.-]+/)?self[-_]cognition(?:[:@#].*)?$")
TEMPLATES = Path(__file__).resolve().parents[1] / "recipes" / "identity"


def _pair(values: Sequence[str], flag: str) -> dict[str, str] | None:
    """`--model_name 小格 Grace` -> {zh, en}; one value names both languages."""
    values = [v for v in values if v.strip()]
    if not values:
        return None
    if len(values) > 2:
        raise TrainError(f"{flag}: give one name, or two (Chinese, then English), not {len(values)}")
    return {"zh": values[0], "en": values[-1]}


def _source_path(spec: str) -> tuple[str, Path | None]:
    """A --dataset entry as the recipe names it: an existing local path made absolute (with the
    folder it lets curate read), anything else (a hub name) as given."""
    path, hash_, count = spec.partition("#")
    local = Path(path).expanduser()
    head, at, split = path.rpartition("@")
    if not local.exists() and at and Path(head).expanduser().is_dir():
        local, path = Path(head).expanduser(), head
        split = at + split
    else:
        split = ""
    if not local.exists():
        return spec, None
    resolved = local.resolve()
    root = resolved if resolved.is_dir() else resolved.parent
    return f"{resolved.as_posix()}{split}{hash_}{count}", root


def generated_recipe(datasets: Sequence[str], model_name: Sequence[str], model_author: Sequence[str],
                     split_ratio: float | None) -> tuple[dict, list[Path]]:
    """The recipe for these command-line sources, and the folders it reads besides its own."""
    name, author = _pair(model_name, "--model_name"), _pair(model_author, "--model_author")
    identity_asked = any(SELF_COGNITION.match(spec) for spec in datasets)
    if (name is None) != (author is None) or (identity_asked and name is None):
        raise TrainError("an identity needs both --model_name and --model_author (e.g. --model_name 小格 Grace "
                         "--model_author 唐寅 'Tang Yin')")
    roots: list[Path] = []
    recipe: dict = {"name": RECIPE_NAME, "sources": []}
    if name is not None:
        templates = [TEMPLATES / "templates_zh.jsonl", TEMPLATES / "templates_en.jsonl"]
        missing = [str(t) for t in templates if not t.is_file()]
        if missing:
            raise TrainError(f"{missing[0]}: the shipped identity templates are missing; reinstall curatune")
        recipe["identity"] = {"name": name, "author": author, "templates": [t.as_posix() for t in templates]}
        roots.append(TEMPLATES)
    kind = "general" if name is not None else "domain"
    for spec in datasets:
        if SELF_COGNITION.match(spec):
            continue  # the identity templates stand for it
        path, root = _source_path(spec)
        recipe["sources"].append({"path": path, "kind": kind})
        if root is not None:
            roots.append(root)
    if not recipe["sources"] and name is None:
        raise TrainError("--dataset: no data to train on; name files, folders or hub datasets")
    # Band checks protect hand-written recipes; here the user chose the data, so the build only reports it.
    recipe["mix"] = {"ratio": "1:4", "allow_out_of_band": True}
    if split_ratio is not None:
        recipe["split"] = {"val_ratio": split_ratio, "seed": 42}
    return recipe, list(dict.fromkeys([Path.cwd().resolve(), *roots]))


def build_dataset_bundle(datasets: Sequence[str], model_name: Sequence[str], model_author: Sequence[str],
                         split_ratio: float | None, run_dir: Path, log: Callable[[str], None],
                         model: str | None = None) -> Path:
    """Write OUTPUT_DIR/recipe.yaml, run `curate build` on it, return the new bundle version folder.
    `model` (a hub id) is probed after the arguments are checked and before the build, so a model
    that cannot be fetched fails in seconds rather than after the curation."""
    import yaml

    if split_ratio is not None and not 0 <= split_ratio < 1:
        raise TrainError(f"--split_dataset_ratio: {split_ratio} is not in [0, 1)")
    recipe, roots = generated_recipe(datasets, model_name, model_author, split_ratio)
    if model is not None:
        probe_hub_model(model)
    run_dir.mkdir(parents=True, exist_ok=True)
    recipe_file = run_dir / "recipe.yaml"
    command = [sys.executable, "-m", "curate", "build", str(recipe_file), "--output", str(run_dir / "bundle")]
    for root in roots:
        command += ["--data-root", str(root)]
    shown = " ".join(shlex.quote(part) for part in ["curate", *command[3:]])
    recipe_file.write_text(f"# written by train run --dataset, built with:\n# {shown}\n"
                           + yaml.safe_dump(recipe, allow_unicode=True, sort_keys=False), encoding="utf-8")
    log(f"bundle: curate build {recipe_file}")
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    for line in errors if done.returncode == 0 else []:
        log(f"curate: {line}")
    if done.returncode != 0:
        last = errors[-1].removeprefix("Error: ") if errors else f"exit status {done.returncode}"
        raise TrainError(f"building the bundle from --dataset failed: {last}")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if not lines or not Path(lines[-1]).is_dir():
        raise TrainError("building the bundle from --dataset printed no bundle folder")
    return Path(lines[-1])
