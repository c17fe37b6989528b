"""The resolved training configuration: defaults < the recipe's `train:` section < explicit flags.

One pydantic model so the CLI, the Python API, the saved `curatune_train.json` and resumed runs all
agree on what a run was. Field names follow ms-swift's flag names.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class TrainConfigError(ValueError):
    """A training setting that is unknown or has a bad value, worded as one line."""


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = Field("Qwen/Qwen2.5-0.5B-Instruct", description="base model: local folder or hub id")
    train_type: Literal["lora", "full"] = "lora"
    lora_rank: int = Field(8, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: str = Field("all-linear", description="'all-linear' or comma-separated module names")
    learning_rate: float = Field(1e-4, gt=0)
    num_train_epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, description="-1: derived from num_train_epochs")
    per_device_train_batch_size: int = Field(1, ge=1)
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
    trust_remote_code: bool = False
    packing: bool = False
    eval_steps: int = Field(0, ge=0, description="0: evaluate only at the end (if val.jsonl has records)")
    save_steps: int = Field(0, ge=0, description="0: no intermediate checkpoints")
    save_total_limit: int | None = Field(None, ge=1)
    early_stopping_patience: int | None = Field(None, ge=1, description="evaluations without val improvement")
    gradient_checkpointing: bool = False
    bf16: bool | None = Field(None, description="None: bf16 where the device supports it, fp32 on CPU")
    quant: Literal["4bit"] | None = None
    logging_steps: int = Field(1, ge=1)
    resume: bool = False


def normalise_keys(values: dict[str, Any]) -> dict[str, Any]:
    """Accept 'lora-rank' as well as 'lora_rank' in recipes."""
    return {str(k).replace("-", "_"): v for k, v in values.items()}


def resolve_config(recipe_train: dict[str, Any] | None, explicit: dict[str, Any], where: str = "recipe train") -> TrainConfig:
    """Layer defaults, the recipe's train section and explicit settings; bad keys become one line."""
    layered = {**normalise_keys(recipe_train or {}), **{k: v for k, v in explicit.items() if v is not None}}
    try:
        return TrainConfig.model_validate(layered)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        source = where if key in normalise_keys(recipe_train or {}) and key not in explicit else "flag"
        message = "unknown setting" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        raise TrainConfigError(f"{source}: {key}: {message}") from None
