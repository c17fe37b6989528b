"""Sources that are datasets rather than files, read with `datasets` into the same tagged raw rows.

A recipe source may name a hub dataset (`hf:OWNER/NAME[:CONFIG][@SPLIT]`, or the bare `OWNER/NAME`
the ms-swift and LLaMA-Factory tutorials write, when no local path of that name exists), a folder
`datasets.load_dataset(folder)` reads (parquet, jsonl, csv files), or a `save_to_disk` folder
(`datasets.load_from_disk`); `folder@SPLIT` picks a split. A row's `line` is its 1-based row number.

The manifest hashes a folder's files like any source file; a hub dataset is recorded by its
`datasets` fingerprint. A hub dataset not in the local cache is looked up with the hub offline
first and then probed once with a short timeout, so a machine without network fails in one line,
in seconds, saying how to get the data, instead of retrying for a minute.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal

from curate.paths import label_for
from curate.raw_row import RawRow, SourceError, SourceRead, json_safe
from schemas.hub import PROBE_TIMEOUT_S, REPO_PATTERN

HUB_PREFIX = "hf:"
_HUB_ID = re.compile(rf"^(?P<repo>{REPO_PATTERN})(?::(?P<config>[\w.-]+))?(?:@(?P<split>[\w.-]+))?$")
_FILE_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".yaml", ".yml", ".txt")
_SPLIT = re.compile(r"^[\w.-]+$")


@dataclass(frozen=True)
class DatasetRef:
    """What a source path names when it is a dataset: where it is, and which config and split."""

    kind: Literal["hub", "folder", "disk"]
    name: str  # the hub id, or the folder as the recipe names it
    path: Path | None = None
    config: str | None = None
    split: str | None = None

    @property
    def label(self) -> str:
        """How rejects and the manifest name it, like a file label."""
        if self.kind == "hub":
            return f"{HUB_PREFIX}{self.name}" + (f":{self.config}" if self.config else "") + f"@{self.split or 'train'}"
        return self.name + (f"@{self.split}" if self.split else "")


def _hub(text: str, pattern: str) -> DatasetRef:
    match = _HUB_ID.match(text)
    if not match:
        raise SourceError(f"{pattern}: not a hub dataset name (write hf:OWNER/NAME[:CONFIG][@SPLIT])")
    return DatasetRef("hub", match.group("repo"), config=match.group("config"), split=match.group("split"))


def dataset_ref(pattern: str, base: Path) -> DatasetRef | None:
    """The dataset `pattern` names, or None when it names a file or a glob (curate.sources reads those)."""
    if pattern.startswith(HUB_PREFIX):
        return _hub(pattern[len(HUB_PREFIX):], pattern)
    if any(ch in pattern for ch in "*?["):
        return None
    folder, split = pattern, None
    if "@" in pattern and not (base / pattern).exists():
        head, _, tail = pattern.rpartition("@")
        if _SPLIT.match(tail) and (base / head).is_dir():
            folder, split = head, tail
    path = base / folder
    if path.is_dir():
        saved = (path / "state.json").is_file() or (path / "dataset_dict.json").is_file()
        return DatasetRef("disk" if saved else "folder", folder, path, split=split)
    if path.exists() or os.path.lexists(path):
        return None
    match = _HUB_ID.match(pattern)
    if match and not match.group("repo").lower().endswith(_FILE_SUFFIXES):
        return _hub(pattern, pattern)
    return None


@contextlib.contextmanager
def _hub_offline() -> Iterator[None]:
    """Both libraries' offline switches on for a while: only the local cache is looked at."""
    import datasets
    from huggingface_hub import constants

    saved = (datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE)
    datasets.config.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE = saved


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:200]


def _how_to_get(ref: DatasetRef, why: str) -> SourceError:
    where = f"'{ref.name}'" + (f", '{ref.config}'" if ref.config else "")
    return SourceError(
        f"{ref.label}: not in the local datasets cache and the hub cannot be reached ({why}); where there is "
        f"network, run python -c \"import datasets; datasets.load_dataset({where}).save_to_disk('DIR')\" "
        f"(a ModelScope id: modelscope download --dataset {ref.name} --local_dir DIR), then name DIR as the source")


def _load_hub(ref: DatasetRef) -> Any:
    import datasets

    offline = datasets.config.HF_HUB_OFFLINE
    try:
        with _hub_offline():
            return datasets.load_dataset(ref.name, ref.config, split=ref.split)
    except (ConnectionError, FileNotFoundError):
        pass  # not cached: see whether the hub answers
    if offline:
        raise _how_to_get(ref, "HF_HUB_OFFLINE / HF_DATASETS_OFFLINE is set")
    from huggingface_hub import HfApi

    try:
        HfApi().dataset_info(ref.name, timeout=PROBE_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - httpx, hub and OS errors alike mean "cannot get it now"
        raise _how_to_get(ref, _first_line(exc)) from None
    return datasets.load_dataset(ref.name, ref.config, split=ref.split)


def _load(ref: DatasetRef) -> Any:
    import datasets

    datasets.disable_progress_bars()
    if ref.kind == "hub":
        return _load_hub(ref)
    if ref.kind == "disk":
        return datasets.load_from_disk(str(ref.path), keep_in_memory=True)
    with tempfile.TemporaryDirectory(prefix="curatune-ds-") as cache:  # no trace left in the user's cache
        return datasets.load_dataset(str(ref.path), cache_dir=cache, keep_in_memory=True)


def open_dataset(ref: DatasetRef) -> Any:
    """The one split `ref` names (default: 'train', or the only split); SourceError on any failure."""
    import datasets

    try:
        loaded = _load(ref)
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - datasets raises many types; each is one line here
        raise SourceError(f"{ref.label}: cannot load it with datasets: {_first_line(exc)}") from None
    if isinstance(loaded, datasets.DatasetDict):
        splits = sorted(loaded)
        name = ref.split or ("train" if "train" in loaded else splits[0] if len(splits) == 1 else None)
        if name not in loaded:
            raise SourceError(f"{ref.label}: no split '{name or ref.split}' (it has {', '.join(splits)}); "
                              "write NAME@SPLIT")
        loaded = loaded[name]
    elif ref.split and ref.kind != "hub":
        raise SourceError(f"{ref.label}: a single dataset without splits; drop '@{ref.split}'")
    if not isinstance(loaded, datasets.Dataset):
        raise SourceError(f"{ref.label}: not a table of records ({type(loaded).__name__})")
    return loaded


def _hash_folder(folder: Path, base: Path) -> dict[str, str]:
    """sha256 of every file under the folder (hidden ones aside), by label, in name order."""
    out: dict[str, str] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        out[label_for(path, base)] = digest.hexdigest()
    return out


def read_dataset(ref: DatasetRef, pattern: str, sample: int | None, base: Path, seed: int):
    """Like curate.sources.read_source: (SourceRead, rows), `#N` sampled with the same seed rule."""
    dataset = open_dataset(ref)
    out = SourceRead(total=len(dataset))
    out.files = _hash_folder(ref.path, base) if ref.path else {ref.label: f"fingerprint:{dataset._fingerprint}"}
    chosen = out.sample(sample, seed, pattern)

    def rows() -> Iterator[RawRow]:
        picked = dataset if chosen is None else dataset.select(chosen)
        for position, row in zip(chosen if chosen is not None else range(out.total), picked):
            number = position + 1  # a dataset has no lines: the 1-based row number stands for one
            yield RawRow(ref.label, number, row={k: json_safe(v) for k, v in row.items() if v is not None},
                         index=number)

    return out, rows()
