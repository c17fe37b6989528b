"""The resolved training configuration: defaults < the recipe's `train:` section < explicit flags.

One pydantic model so the CLI, the Python API, the saved `curatune_train.json` and resumed runs all
agree on what a run was. Field names follow ms-swift's flag names.

A recipe (and so a bundle's manifest) may come from someone else. Its `train:` section may not set
what only the user may decide: running the model's own code (`trust_remote_code`), loading pickle
weights (`allow_pickle`), or resuming from whatever checkpoints sit in a folder (`resume`); and its
`output_dir` must stay inside the current directory. The saved `curatune_train.json` records these
values but nothing reads them back as permission (train.chat ignores them).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class TrainConfigError(ValueError):
    """A training setting that is unknown or has a bad value, worded as one line."""


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = Field("Qwen/Qwen2.5-0.5B-Instruct", description="base model: local folder or hub id")
    train_type: Literal["lora", "full"] = Field("lora", description="also spelled --tuner_type (ms-swift 4)")
    lora_rank: int = Field(8, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: str = Field("all-linear", description="'all-linear' or comma-separated module names")
    learning_rate: float = Field(1e-4, gt=0)
    num_train_epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, description="-1: derived from num_train_epochs")
    per_device_train_batch_size: int = Field(1, ge=1)
    per_device_eval_batch_size: int | None = Field(None, ge=1, description="default: the train batch size")
    max_grad_norm: float = Field(1.0, gt=0, description="gradients are clipped to this norm")
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_length: int = Field(2048, ge=8)
    output_dir: str | None = Field(None, description="default: output/<recipe name>-<bundle version>")
    seed: int = 42
    system: str | None = Field(None, description="replace (or add) every record's system prompt")
    template: Literal["chatml", "gemma", "llama3"] | None = Field(
        None, description="chat template for a model without one (base models); default: the model's own, "
        "else the built-in one for its family")
    warmup_ratio: float = Field(0.05, ge=0, le=1)
    weight_decay: float = Field(0.0, ge=0)
    trust_remote_code: bool = Field(False, description="run the model folder's own Python code (auto_map); "
                                    "command line only, never from a recipe")
    allow_pickle: bool = Field(False, description="load pickle weights (pytorch_model.bin, *.pt, *.ckpt), which can "
                               "run code; command line only, never from a recipe")
    packing: bool = False
    eval_steps: int = Field(0, ge=0, description="0: evaluate only at the end (if val.jsonl has records)")
    save_steps: int = Field(0, ge=0, description="0: no intermediate checkpoints")
    save_total_limit: int | None = Field(None, ge=1)
    early_stopping_patience: int | None = Field(None, ge=1, description="evaluations without val improvement")
    gradient_checkpointing: bool = False
    bf16: bool | None = Field(None, description="None: bf16 where the device supports it, fp32 on CPU")
    torch_dtype: Literal["bfloat16", "float16", "float32"] | None = Field(
        None, description="weights' dtype (ms-swift's spelling); bfloat16 is --bf16, float16 needs a GPU")
    dataloader_num_workers: int = Field(0, ge=0, description="accepted for ms-swift command lines; records are "
                                        "encoded once before training, so no loader workers run")
    quant: Literal["4bit"] | None = None
    logging_steps: int = Field(1, ge=1)
    resume: bool = Field(False, description="continue from the last complete checkpoint in output_dir; "
                         "command line only, never from a recipe")


# Settings only the user's own command line may turn on: each runs code or loads pickles.
COMMAND_LINE_ONLY = {
    "trust_remote_code": "it runs the model folder's own Python code",
    "allow_pickle": "it loads pickle weights, which can run code",
    "resume": "it loads the checkpoints found in output_dir, which hold pickles",
}


def normalise_keys(values: dict[str, Any]) -> dict[str, Any]:
    """Accept 'lora-rank' as well as 'lora_rank' in recipes."""
    return {str(k).replace("-", "_"): v for k, v in values.items()}


def _recipe_output_dir(value: Any, label: str) -> None:
    """A recipe's output_dir must be a relative path that stays (symlinks followed) inside the current directory."""
    if not isinstance(value, str):
        return  # the model's own validation names the type problem
    path = Path(value).expanduser()
    cwd = Path.cwd().resolve()
    if not path.is_absolute() and (cwd / path).resolve().is_relative_to(cwd):
        return
    raise TrainConfigError(f"{label}: {value!r} is outside the current directory; a recipe may only "
                           "name a folder inside it (pass --output_dir to write elsewhere)")


def resolve_config(recipe_train: dict[str, Any] | None, explicit: dict[str, Any], where: str = "recipe train",
                   manifest: str | Path | None = None) -> TrainConfig:
    """Layer defaults, the recipe's train section and explicit settings; bad keys become one line.

    `manifest`: the manifest.json the recipe section came from, named in the error lines.
    """
    recipe = normalise_keys(recipe_train or {})
    given = {k: v for k, v in explicit.items() if v is not None}

    def label(key: str) -> str:
        return f"{manifest}: recipe.train.{key}" if manifest is not None else f"{where}: {key}"

    for key in recipe_train or {}:  # named as the manifest spells it
        flag = str(key).replace("-", "_").lower()
        if flag in COMMAND_LINE_ONLY:
            raise TrainConfigError(f"{label(key)}: a recipe or bundle may not set this ({COMMAND_LINE_ONLY[flag]}); "
                                   f"only your own --{flag} flag can")
    if "output_dir" in recipe and "output_dir" not in given:
        _recipe_output_dir(recipe["output_dir"], label("output_dir"))
    layered = {**recipe, **given}
    try:
        return TrainConfig.model_validate(layered)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        from_recipe = key in recipe and key not in given
        source = where if from_recipe else "flag"
        message = "unknown setting" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        suffix = f" (in {manifest})" if from_recipe and manifest is not None else ""
        raise TrainConfigError(f"{source}: {key}: {message}{suffix}") from None
