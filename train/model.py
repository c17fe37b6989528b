"""Loading the base model and tokenizer, and wrapping the model for LoRA (or full) training.

Loading goes through `from_pretrained` on a local folder or a hub id. A model folder may come from
someone else, so it is checked first (train.model_checks): its own Python code loads only with the
user's --trust_remote_code, pickle weights only with --allow_pickle; both come from the command line
(arguments here, or train.model_checks.load_policy), never from a recipe, a bundle or a saved run.

A `.gguf` file is converted once (dequantised) to a safetensors model folder in a cache
(CURATUNE_CACHE, default ~/.cache/curatune/gguf) and loaded from there afterwards: GGUF parsing takes
about a minute for the model and another for its tokenizer, the converted folder seconds. Any
failure becomes one TrainError line that says what to do next.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import torch

from train.config import TrainConfig
from schemas.bundle import sha256_file
from train.errors import TrainError, short_reason
from train.hub_probe import probe_hub_model
from train.model_checks import (REMOTE_CODE_HINT, check_model_folder, check_tokenizer_files, pickle_allowed,
                                remote_code_allowed)


def _load_error(name: str, exc: BaseException) -> TrainError:
    path = Path(name).expanduser()
    reason = short_reason(exc)
    if "trust_remote_code" in str(exc):
        return TrainError(f"cannot load model '{name}': it needs its own Python code (auto_map); {REMOTE_CODE_HINT}")
    if name.startswith(("/", "./", "../", "~")) and not path.exists():
        reason = "no such folder"
    return TrainError(f"cannot load model '{name}': {reason}; pass a local model folder with --model PATH")


def is_gguf(name: str) -> bool:
    return name.lower().endswith(".gguf")


def gguf_cache_root() -> Path:
    return Path(os.environ.get("CURATUNE_CACHE") or Path.home() / ".cache" / "curatune") / "gguf"


def convert_gguf(gguf: str | Path, log=None) -> Path:
    """The safetensors model folder made from a GGUF file (converted on first use, then cached).

    transformers dequantises GGUF weights on load but keeps a `quantization_config` that makes
    `save_pretrained` refuse; the model is rebuilt from its config without it and given the weights.
    The folder is written under a temp name and renamed into place, so a killed conversion is redone.
    """
    say = log or (lambda _m: None)
    source = Path(gguf).expanduser().resolve()
    if not source.is_file():
        raise TrainError(f"cannot load model '{gguf}': no such GGUF file; pass a local model folder or .gguf with --model")
    try:
        import gguf as _gguf  # noqa: F401
    except ImportError:
        raise TrainError("loading a .gguf model needs the gguf package (pip install gguf, or curatune[demo])") from None
    key = sha256_file(source)[:16]
    target = gguf_cache_root() / f"{source.stem}-{key}"
    if (target / "config.json").is_file() and (target / "curatune_gguf.json").is_file():
        say(f"gguf: using the converted model in {target}")
        return target
    say(f"gguf: converting {source.name} to safetensors in {target} (once; takes a minute or two)")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(source.parent), source.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except Exception as exc:  # noqa: BLE001
        raise _load_error(str(gguf), exc) from None
    config = copy.deepcopy(loaded.config)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    config.dtype = torch.float32
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    state = loaded.state_dict()
    del loaded
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if not (config.tie_word_embeddings and m.endswith("lm_head.weight"))]
    if missing or unexpected:
        raise TrainError(f"cannot convert '{gguf}': weights do not match its config "
                         f"({len(missing)} missing, {len(unexpected)} unexpected)")
    if config.tie_word_embeddings:
        model.tie_weights()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    model.generation_config.eos_token_id = config.eos_token_id
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / "curatune_gguf.json").write_text(json.dumps({"source": str(source), "sha256_prefix": key}, indent=2) + "\n",
                                            encoding="utf-8")
    if target.exists():
        shutil.rmtree(target)
    os.rename(tmp, target)
    say(f"gguf: converted model saved in {target}")
    return target


def resolve_model_name(name: str, log=None) -> str:
    """A `.gguf` file becomes its converted cache folder; anything else is passed through."""
    return str(convert_gguf(name, log)) if is_gguf(name) else name


def pick_device() -> torch.device:
    if torch.cuda.is_available():
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def pick_dtype(device: torch.device, bf16: bool | None, torch_dtype: str | None = None) -> torch.dtype:
    """bf16 only where the device really supports it; fp32 on CPU. `torch_dtype` (ms-swift's flag)
    names the same choice: bfloat16 is bf16, float32 is fp32, float16 loads half weights on a GPU."""
    if torch_dtype is not None:
        wanted_bf16 = torch_dtype == "bfloat16"
        if bf16 is not None and bf16 != wanted_bf16:
            raise TrainError(f"--torch_dtype {torch_dtype} and --bf16 {str(bf16).lower()} disagree; give one of them")
        if torch_dtype == "float16":
            if device.type != "cuda":
                raise TrainError("--torch_dtype float16 needs a GPU; this device trains in float32")
            return torch.float16
        bf16 = wanted_bf16
    supported = device.type == "cuda" and torch.cuda.is_bf16_supported()
    if bf16 and not supported:
        flag = "--torch_dtype bfloat16" if torch_dtype else "--bf16"
        raise TrainError(f"{flag} needs a GPU with bf16 support; this device trains in fp32")
    return torch.bfloat16 if supported and bf16 is not False else torch.float32


def _model_type(name: str) -> str | None:
    config = Path(name).expanduser() / "config.json"
    if config.is_file():
        try:
            return json.loads(config.read_text(encoding="utf-8")).get("model_type")
        except (OSError, ValueError):
            return None
    return None


def apply_template(tokenizer, template: str, name: str) -> None:
    """Install built-in chat template `template`, after checking its markers are single tokens."""
    from train.templates import BUILTIN_TEMPLATES

    text, markers = BUILTIN_TEMPLATES[template]
    for marker in markers:
        ids = tokenizer(marker, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise TrainError(f"--template {template} needs {marker} as one token, which the tokenizer of '{name}' "
                             "does not have; choose the template of the model's family")
    tokenizer.chat_template = text


def load_tokenizer(name: str, trust_remote_code: bool | None = None, template: str | None = None, log=None):
    """The tokenizer, with the model's own chat template, or `template`, or its family's built-in one.

    When a built-in template was installed, `tokenizer.curatune_template` names it (else None).
    `trust_remote_code` None: as the current `load_policy` says (off by default).
    """
    from transformers import AutoTokenizer

    from train.templates import template_for_model_type

    trust = remote_code_allowed(trust_remote_code)
    if not is_gguf(name):
        check_model_folder(name, trust, weights=False)
        check_tokenizer_files(name)
    probe_hub_model(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=trust)
    except Exception as exc:  # noqa: BLE001 - any loading failure is reported as one line
        raise _load_error(name, exc) from None
    tokenizer.curatune_template = None
    had_template = tokenizer.chat_template is not None
    if template is not None:
        apply_template(tokenizer, template, name)
        tokenizer.curatune_template = template
        if log is not None:
            log(f"template: using the built-in '{template}' one"
                + (" instead of the model's own" if had_template else ""))
    elif tokenizer.chat_template is None:
        guessed = template_for_model_type(_model_type(name))
        if guessed is None:
            raise TrainError(f"tokenizer of '{name}' has no chat template; pass --template chatml|gemma|llama3")
        apply_template(tokenizer, guessed, name)
        tokenizer.curatune_template = guessed
        if log is not None:
            log(f"template: the model has no chat template; using the built-in '{guessed}' one")
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


def load_model(name: str, dtype: torch.dtype = torch.float32, trust_remote_code: bool | None = None,
               quant: str | None = None, device: torch.device | None = None, allow_pickle: bool | None = None):
    """The base causal LM, in `dtype`, on `device` (a `.gguf` file: its converted cache folder).

    `trust_remote_code`, `allow_pickle` None: as the current `load_policy` says (both off by default).
    """
    from transformers import AutoModelForCausalLM

    trust, pickle_ok = remote_code_allowed(trust_remote_code), pickle_allowed(allow_pickle)
    name = resolve_model_name(name)
    check_model_folder(name, trust, pickle_ok)
    quant_config = _quant_config(quant, dtype)
    kwargs = {"dtype": dtype, "trust_remote_code": trust}
    if quant_config is not None:
        kwargs["quantization_config"] = quant_config
        kwargs["device_map"] = {"": device.index or 0} if device is not None else {"": 0}
    folder = Path(name).expanduser()
    if not pickle_ok or (folder.is_dir() and any(folder.glob("*.safetensors"))):
        kwargs["use_safetensors"] = True  # a hub repo without safetensors is refused by transformers
    probe_hub_model(name)
    try:
        model = AutoModelForCausalLM.from_pretrained(name, **kwargs)
    except Exception as exc:  # noqa: BLE001
        hub_id = not folder.exists() and not name.startswith(("/", ".", "~"))  # local folders: checked above
        if not pickle_ok and hub_id and "safetensors" in str(exc).lower() and "trust_remote_code" not in str(exc):
            raise TrainError(f"cannot load model '{name}': no safetensors weights ({short_reason(exc, 160)}); "
                             "pickle weights load only with --allow_pickle") from None
        raise _load_error(name, exc) from None
    if device is not None and quant_config is None:
        model.to(device)
    return model


def target_modules(spec: str) -> str | list[str]:
    return "all-linear" if spec == "all-linear" else [m.strip() for m in spec.split(",") if m.strip()]


def template_token_ids(tokenizer) -> list[int]:
    """Ids of the markers of a built-in template this run installed (none for a model's own template).

    A base model never saw them in use: their embedding rows sit in a tight cluster with other unused
    tokens (cosine ~0.995 for Gemma 3 270M's <end_of_turn>), so LoRA alone teaches the model to point
    at the cluster and greedy decoding picks a neighbour instead of the stop token. Training these
    few rows (peft trainable tokens) makes the end-of-turn token itself learnable.
    """
    from train.templates import BUILTIN_TEMPLATES

    name = getattr(tokenizer, "curatune_template", None)
    if not name:
        return []
    return [tokenizer.convert_tokens_to_ids(marker) for marker in BUILTIN_TEMPLATES[name][1]]


def prepare_for_training(model, cfg: TrainConfig, trainable_tokens: list[int] | None = None):
    """LoRA adapters (peft) on the chosen modules (plus trainable embedding rows for `trainable_tokens`),
    or every weight trainable for full fine-tuning."""
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
                      target_modules=target_modules(cfg.target_modules), task_type="CAUSAL_LM",
                      trainable_token_indices=list(trainable_tokens) if trainable_tokens else None)
    with warnings.catch_warnings():  # peft still calls transformers' deprecated is_gradient_checkpointing
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, lora)


def parameter_counts(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
