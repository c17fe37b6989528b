"""One base model in memory, every served adapter loaded onto it once (PEFT `load_adapter`).

What a served name means: the base model (its folder or hub name, e.g. `gemma-3-270m-q4_k_m`) or one
adapter (its run's name: `runs/grace/adapter` is `grace`; `name=PATH` chooses). Memory is one base
plus N small adapters; a request picks its adapter per row of a batch (train.serve.batcher).

Adapters served together must agree on what they were trained on and how, or answers would come out
of the wrong prompt: the same base model (refused otherwise, one line) and the same chat template.
Prompts are built as training built them: the tokenizer saved in the adapter folder (with the template
training used) renders the messages, and an adapter trained with `--system` gets that system prompt
when a request brings none. Adapter folders may come from someone else: each is checked the way
`train chat` checks it (train.chat.preflight) before anything loads, and only the command line's
--trust_remote_code / --allow_pickle open what those checks refuse.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from schemas.json_file import JsonFileError, read_json_object
from train.chat import RUN_INFO, base_model_of, load_base_model, preflight, read_run_info, stop_token_ids
from train.encode import render
from train.errors import TrainError, short_reason
from train.model import load_tokenizer, resolve_model_name
from train.serve.jobs import BASE
from train.serve.mixed import mixed_batches_work
from train.serve.tokens import install as install_fast_tokens

_NAME = re.compile(r"^[^\s\x00-\x1f\x7f]{1,128}$")


@dataclass(frozen=True)
class AdapterSpec:
    name: str
    path: Path


@dataclass
class Served:
    """The loaded model and what each served name maps to."""

    model: object
    tokenizer: object
    base_name: str
    adapters: dict[str, str] = field(default_factory=dict)  # served name -> peft adapter name
    systems: dict[str, str] = field(default_factory=dict)  # served name -> system prompt it trained with
    stop_ids: list[int] = field(default_factory=list)
    context: int = 4096
    mixed: bool = True
    mixed_reason: str = ""

    def names(self) -> list[str]:
        return [self.base_name, *self.adapters]

    def peft_name(self, name: str) -> str | None:
        """The batcher's adapter name for a served name (BASE for the base model), None if unknown."""
        return BASE if name == self.base_name else self.adapters.get(name)

    def prompt_ids(self, name: str, messages: list[dict[str, str]]) -> list[int]:
        """Token ids of the conversation with the generation prompt, as training rendered it."""
        system = self.systems.get(name)
        if system and not (messages and messages[0]["role"] == "system"):
            messages = [{"role": "system", "content": system}, *messages]
        prompt = render(self.tokenizer, messages, add_generation_prompt=True)
        return self.tokenizer(prompt, add_special_tokens=False)["input_ids"]


RUN_FOLDERS = ("adapter", "adapter_plain")  # what `train run` writes inside OUTPUT_DIR


def default_name(path: Path) -> str:
    """`runs/grace/adapter` (or its plain-LoRA copy `adapter_plain`) -> `grace`, the run's folder; any other
    folder keeps its own name."""
    folder = Path(path).expanduser()
    name = folder.name if folder.name not in ("", ".", "..") else folder.resolve().name
    return folder.resolve().parent.name if name in RUN_FOLDERS else name


def parse_specs(items: Sequence[str]) -> list[AdapterSpec]:
    """`PATH` or `NAME=PATH` per item (an existing path containing '=' stays a path); names must be unique."""
    specs: list[AdapterSpec] = []
    for item in items:
        name, sep, path = item.partition("=")
        if sep and name and path and not Path(item).expanduser().exists():
            spec = AdapterSpec(name, Path(path).expanduser())
        else:
            spec = AdapterSpec(default_name(Path(item)), Path(item).expanduser())
        if not _NAME.match(spec.name):
            raise TrainError(f"{item}: adapter name {spec.name!r} must be 1-128 characters without spaces; "
                             "choose one with NAME=PATH")
        twin = next((s for s in specs if s.name == spec.name), None)
        if twin is not None:
            raise TrainError(f"{twin.path} and {spec.path} would both be served as {spec.name!r}; "
                             "name them: train serve grace=PATH bluebird=PATH")
        specs.append(spec)
    return specs


def display_name(base: str) -> str:
    """How the base model is named in /v1/models: a hub id as is, a local folder or .gguf by its file name."""
    path = Path(base).expanduser()
    if base.startswith(("/", ".", "~")) or path.exists():
        return path.name[:-5] if path.name.lower().endswith(".gguf") else path.name
    return base


def _same(values: list, what: str, specs: list[AdapterSpec], shown: list[str] | None = None) -> None:
    """One line naming the first adapter that differs from the first one in `values`."""
    shown = shown or [str(v) for v in values]
    for spec, value, text in zip(specs, values, shown):
        if value != values[0]:
            raise TrainError(f"adapters {specs[0].name!r} and {spec.name!r} have different {what} ({shown[0]} and "
                             f"{text}); serve them from separate `train serve` processes")


def _base_key(base: str) -> str:
    path = Path(base).expanduser()
    return str(path.resolve()) if path.exists() else base


def _trainable_tokens(folder: Path) -> bool:
    try:
        config = read_json_object(folder / "adapter_config.json")
    except JsonFileError as exc:
        raise TrainError(str(exc)) from None
    return bool(config.get("trainable_token_indices"))


def load_served(specs: list[AdapterSpec], model: str | None = None, trust_remote_code: bool = False,
                allow_pickle: bool = False, log: Callable[[str], None] | None = None) -> Served:
    """The base model with every adapter in `specs` loaded onto it (or the base alone: `model`, no specs)."""
    say = log or (lambda _m: None)
    if not specs:
        if not model:
            raise TrainError("nothing to serve: pass one or more adapter folders (or a base model with --model)")
        name = resolve_model_name(model, say)
        tokenizer = load_tokenizer(name, trust_remote_code)
        lm = load_base_model({}, name, trust_remote_code, allow_pickle)
        return _finish(Served(lm, tokenizer, display_name(model)), say)
    infos = []
    for spec in specs:
        if not spec.path.is_dir():
            raise TrainError(f"{spec.path}: no such adapter folder")
        if not (spec.path / "adapter_config.json").is_file():
            raise TrainError(f"{spec.path}: not a LoRA adapter folder (no adapter_config.json); a merged or "
                             "fully trained model is served alone with --model PATH")
        preflight(spec.path, model, trust_remote_code, allow_pickle)
        infos.append(read_run_info(spec.path))
    bases = [base_model_of(info, model, spec.path / RUN_INFO) for info, spec in zip(infos, specs)]
    _same([_base_key(b) for b in bases], "base models", specs, bases)
    tokenizers = [load_tokenizer(str(spec.path), trust_remote_code) for spec in specs]
    _same([(info.get("config") or {}).get("template") for info in infos], "chat templates (--template)", specs)
    _same([t.chat_template for t in tokenizers], "chat templates (tokenizer)", specs,
          [f"{len(t.chat_template or '')} characters" for t in tokenizers])
    _same([len(t) for t in tokenizers], "vocabularies", specs)
    _same([_trainable_tokens(spec.path) for spec in specs], "trainable tokens (peft 0.21 cannot hold adapters "
          "with and without them on one model)", specs)
    say(f"serve: loading the base model {bases[0]}")
    base = load_base_model(infos[0], model, trust_remote_code, allow_pickle, where=specs[0].path / RUN_INFO)
    from peft import PeftModel

    lm = None
    for i, spec in enumerate(specs):
        try:
            with warnings.catch_warnings():  # peft still calls transformers' deprecated is_gradient_checkpointing
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
                if lm is None:
                    lm = PeftModel.from_pretrained(base, str(spec.path), adapter_name=f"a{i}")
                else:
                    lm.load_adapter(str(spec.path), adapter_name=f"a{i}")
        except Exception as exc:  # noqa: BLE001 - any adapter loading failure is one line
            raise TrainError(f"{spec.path}: cannot load the adapter onto {bases[0]}: {short_reason(exc)}") from None
    lm.eval()
    served = Served(lm, tokenizers[0], display_name(model or infos[0].get("base_model") or bases[0]),
                    {spec.name: f"a{i}" for i, spec in enumerate(specs)},
                    {spec.name: (info.get("config") or {}).get("system") for spec, info in zip(specs, infos)
                     if (info.get("config") or {}).get("system")})
    if served.base_name in served.adapters:
        raise TrainError(f"adapter name {served.base_name!r} is the base model's name; choose another with NAME=PATH")
    return _finish(served, say)


def _finish(served: Served, say: Callable[[str], None]) -> Served:
    served.model.eval()
    served.stop_ids = stop_token_ids(served.tokenizer)
    config = served.model.config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    served.context = int(getattr(text, "max_position_embeddings", 0) or 4096)
    probe = served.prompt_ids("", [{"role": "user", "content": "你好, hello"}])
    fast, why = install_fast_tokens(served.model, probe, list(served.adapters.values()))
    if fast:
        say("serve: trainable tokens applied row by row (PEFT would copy the whole vocabulary every step)")
    elif why != "no trainable tokens":
        say(f"serve: trainable tokens through PEFT's own forward ({why})")
    served.mixed, served.mixed_reason = mixed_batches_work(served.model, probe, list(served.adapters.values()))
    if served.adapters:
        say("serve: mixed-adapter batches " + ("work for these adapters" if served.mixed else
            f"do not work for these adapters ({served.mixed_reason}); batching per adapter instead"))
    return served
