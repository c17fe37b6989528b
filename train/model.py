"""Loading the base model and tokenizer, and wrapping the model for LoRA (or full) training.

Loading goes through `from_pretrained` on a local folder or a hub id, with remote code off unless
asked for. Any failure becomes one TrainError line that says what to do next.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from train.config import TrainConfig
from train.errors import TrainError, short_reason


def _load_error(name: str, exc: BaseException) -> TrainError:
    path = Path(name).expanduser()
    if name.startswith(("/", "./", "../", "~")) and not path.exists():
        reason = "no such folder"
    else:
        reason = short_reason(exc)
    return TrainError(f"cannot load model '{name}': {reason}; pass a local model folder with --model PATH")


def _prefer_safetensors(name: str) -> bool | None:
    """True for a local folder holding safetensors weights; otherwise let transformers choose (it prefers them)."""
    path = Path(name).expanduser()
    return True if path.is_dir() and any(path.glob("*.safetensors")) else None


def pick_device() -> torch.device:
    if torch.cuda.is_available():
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def pick_dtype(device: torch.device, bf16: bool | None) -> torch.dtype:
    """bf16 only where the device really supports it; fp32 on CPU."""
    supported = device.type == "cuda" and torch.cuda.is_bf16_supported()
    if bf16 and not supported:
        raise TrainError("--bf16 needs a GPU with bf16 support; this device trains in fp32")
    return torch.bfloat16 if supported and bf16 is not False else torch.float32


def load_tokenizer(name: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)
    except Exception as exc:  # noqa: BLE001 - any loading failure is reported as one line
        raise _load_error(name, exc) from None
    if tokenizer.chat_template is None:
        raise TrainError(f"tokenizer of '{name}' has no chat template; use an instruct/chat model")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _quant_config(quant: str | None, dtype: torch.dtype):
    if quant is None:
        return None
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise TrainError("--quant 4bit needs the bitsandbytes package (pip install bitsandbytes) and a CUDA GPU") from None
    if not torch.cuda.is_available():
        raise TrainError("--quant 4bit needs a CUDA GPU (bitsandbytes nf4); none is available here")
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=dtype)


def load_model(name: str, dtype: torch.dtype = torch.float32, trust_remote_code: bool = False,
               quant: str | None = None, device: torch.device | None = None):
    """The base causal LM, in `dtype`, on `device`."""
    from transformers import AutoModelForCausalLM

    quant_config = _quant_config(quant, dtype)
    kwargs = {"dtype": dtype, "trust_remote_code": trust_remote_code}
    if quant_config is not None:
        kwargs["quantization_config"] = quant_config
        kwargs["device_map"] = {"": device.index or 0} if device is not None else {"": 0}
    safetensors = _prefer_safetensors(name)
    if safetensors is not None:
        kwargs["use_safetensors"] = safetensors
    try:
        model = AutoModelForCausalLM.from_pretrained(name, **kwargs)
    except Exception as exc:  # noqa: BLE001
        raise _load_error(name, exc) from None
    if device is not None and quant_config is None:
        model.to(device)
    return model


def target_modules(spec: str) -> str | list[str]:
    return "all-linear" if spec == "all-linear" else [m.strip() for m in spec.split(",") if m.strip()]


def prepare_for_training(model, cfg: TrainConfig):
    """LoRA adapters (peft) on the chosen modules, or every weight trainable for full fine-tuning."""
    if cfg.gradient_checkpointing:
        # transformers 5 renamed gradient_checkpointing_enable (deprecated alias kept until v6).
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if cfg.train_type == "full":
        if cfg.quant:
            raise TrainError("--quant 4bit works with --train_type lora only")
        for param in model.parameters():
            param.requires_grad_(True)
        return model
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if cfg.quant:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    elif cfg.gradient_checkpointing:
        model.enable_input_require_grads()
    lora = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=target_modules(cfg.target_modules), task_type="CAUSAL_LM")
    with warnings.catch_warnings():  # peft still calls transformers' deprecated is_gradient_checkpointing
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, lora)


def parameter_counts(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
