"""A hub model id that can be neither found in the local cache nor reached fails in one line, at once.

Left to itself, `from_pretrained` on an unreachable hub retries for most of a minute and prints a
screen of warnings before its error. So before loading a hub id, look in the local cache; if it
is not there, ask the hub once with a short timeout (unless offline mode is on); if that fails,
say in one line what to do. Local folders and files are never probed.
"""
from __future__ import annotations

import re
from pathlib import Path

from schemas.hub import PROBE_TIMEOUT_S, REPO_PATTERN
from train.errors import TrainError, short_reason

HUB_ID = re.compile(rf"^{REPO_PATTERN}$")


def _is_hub_id(name: str) -> bool:
    if name.startswith(("/", ".", "~")) or name.lower().endswith(".gguf") or Path(name).expanduser().exists():
        return False
    return bool(HUB_ID.match(name))


def _cached(name: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(name, "config.json")
    except Exception:  # noqa: BLE001 - a malformed id or cache: let the loader say what is wrong
        return True
    return isinstance(found, str)


def _advice(name: str, why: str) -> TrainError:
    return TrainError(f"cannot load model '{name}': not in the local cache and the hub cannot be reached ({why}); "
                      f"where there is network, run hf download {name} --local-dir DIR (a ModelScope id: "
                      f"modelscope download --model {name} --local_dir DIR) and pass --model DIR")


def probe_hub_model(name: str) -> None:
    """Return if `name` is a local path, a cached hub model or a hub model the hub answers for; else TrainError."""
    if not _is_hub_id(name) or _cached(name):
        return
    from huggingface_hub import HfApi, constants

    if constants.HF_HUB_OFFLINE:
        raise _advice(name, "HF_HUB_OFFLINE is set")
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    try:
        HfApi().model_info(name, timeout=PROBE_TIMEOUT_S)
    except RepositoryNotFoundError:
        raise TrainError(f"cannot load model '{name}': no such model on the hub (or it is private); check the id, "
                         "or pass a local model folder with --model PATH") from None
    except HfHubHTTPError:
        return  # the hub answered (gated, rate limited...): the loader reports it in its own words
    except Exception as exc:  # noqa: BLE001 - httpx, DNS and OS errors alike: the model cannot be fetched now
        raise _advice(name, short_reason(exc, 160)) from None
