"""The build recipe: one YAML file that says exactly what a bundle is made of.

Unknown keys are errors, paths resolve relative to the recipe file, and the mix ratio must sit
inside the band that keeps general ability (1:2 to 1:10) unless the recipe says otherwise.

A recipe may come from someone else, so it is data, never code, and it is bounded:

- YAML is read within size, nesting, alias and duplicate-key bounds (schemas.recipe_yaml).
- `train:` may not enable remote code: `trust_remote_code` is a command-line flag only.
- Every path a recipe names for reading (sources, globs and their matches, identity templates,
  the length filter's tokenizer) must resolve, symlinks followed, inside the recipe's folder or a
  folder the user allowed (`curate build --data-root DIR`, `load_recipe(..., data_roots=[...])`).
  The build checks them before it writes anything (curate.pipeline).
- `output:` must resolve inside the recipe's folder or the current working directory (the user
  chose where to run the command; the shipped recipes write `../bundle`, next to `recipes/`).
  `--output DIR` on the command line is trusted as given. An existing file is never an output root.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator,
                      model_validator)

from schemas.recipe_yaml import RecipeError, read_recipe_yaml
from schemas.shapes import ShapeName

RATIO_BAND = (2.0, 10.0)  # general records per domain record
SAMPLING = re.compile(r"^(?P<path>.+?)#(?P<n>[^#]*)$")
REMOTE_CODE_KEYS = frozenset({"trust_remote_code"})  # train: keys that would run a model's own code


def _path_text(value: str) -> str:
    if not value or "\x00" in value:
        raise ValueError("a path may not be empty or hold a NUL character")
    return value


PathText = Annotated[str, AfterValidator(_path_text)]  # a path a recipe names


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LangText(_Strict):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class IdentityConfig(_Strict):
    name: LangText
    author: LangText
    templates: list[PathText] = Field(min_length=1, description="template files, relative to the recipe")
    system: str | None = Field(default=None, description="system prompt put before identity records")
    languages: list[Literal["zh", "en"]] = ["zh", "en"]


class SourceConfig(_Strict):
    path: PathText = Field(description="file or glob, relative to the recipe; 'path#N' samples N records")
    kind: Literal["domain", "general"]
    shape: ShapeName | None = Field(default=None, description="declare the shape instead of detecting it")
    columns: dict[str, str] | None = Field(default=None, description="shape field -> column in the file")
    languages: list[str] | None = Field(default=None, description="allowed languages; None keeps all")
    system: str | None = None

    def split_sampling(self) -> tuple[str, int | None]:
        """('data.jsonl', 200) for 'data.jsonl#200'; raises ValueError on a bad count."""
        match = SAMPLING.match(self.path)
        if not match:
            return self.path, None
        raw = match.group("n")
        if not raw.isdigit() or int(raw) <= 0:
            raise ValueError(f"'#{raw}' is not a positive record count (write 'path#N')")
        return match.group("path"), int(raw)


class MixConfig(_Strict):
    ratio: str | float = Field(default="1:4", description="domain:general, e.g. '1:4'; identity counts as domain")
    allow_out_of_band: bool = Field(default=False, description="allow a ratio outside 1:2..1:10")

    def general_per_domain(self) -> float:
        return parse_ratio(self.ratio)

    @field_validator("ratio", mode="before")
    @classmethod
    def _a_ratio(cls, ratio: Any) -> Any:
        if isinstance(ratio, bool):
            raise ValueError(f"{ratio} is not a ratio; write 'domain:general', e.g. '1:4'")
        if isinstance(ratio, (int, float, str)):
            parse_ratio(ratio)  # format, finite, positive; the band is checked below
        return ratio

    @model_validator(mode="after")
    def _in_band(self) -> "MixConfig":
        value = self.general_per_domain()
        low, high = RATIO_BAND
        if not self.allow_out_of_band and not (low <= value <= high):
            raise ValueError(
                f"ratio {self.ratio} is outside 1:{low:g}..1:{high:g} (domain:general); "
                "set mix.allow_out_of_band: true to build it anyway")
        return self


def parse_ratio(ratio: str | float) -> float:
    """'1:4' -> 4.0 general records per domain record."""
    if isinstance(ratio, (int, float)):
        value = float(ratio)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)\s*", ratio)
        if not match or float(match.group(1)) == 0:
            raise ValueError(f"ratio '{ratio}' is not of the form 'domain:general', e.g. '1:4'")
        value = float(match.group(2)) / float(match.group(1))
    if not math.isfinite(value):
        raise ValueError(f"ratio {ratio} is not a finite number; write 'domain:general', e.g. '1:4'")
    if value <= 0:
        raise ValueError(f"ratio {ratio} must be positive")
    return value


class LengthConfig(_Strict):
    min_chars: int = Field(default=1, ge=0, description="per record, all turns together")
    max_chars: int = Field(default=16000, ge=1)
    min_turn_chars: int = Field(default=0, ge=0, description="per turn (system turns aside)")
    max_turn_chars: int | None = Field(default=None, ge=1, description="per turn")
    min_tokens: int | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=1)
    tokenizer: PathText | None = Field(default=None, description="tokenizer path for token limits")


class LanguageConfig(_Strict):
    backend: Literal["fasttext", "langdetect"] = "fasttext"
    min_chars: int = Field(default=10, ge=0, description="Latin-script texts shorter than this are not judged")
    unsure: Literal["model", "reject"] = Field(
        default="model", description="text the backend is unsure of: settle it with the word-frequency model "
        "(rejecting what that cannot settle), or reject it at once; rejects say 'language_unsure'")


class FilterConfig(_Strict):
    length: LengthConfig = LengthConfig()
    language: LanguageConfig = LanguageConfig()


class NearDedupConfig(_Strict):
    enabled: bool = True
    threshold: float = Field(default=0.8, gt=0, le=1, description="Jaccard similarity of character shingles")
    num_perm: int = Field(default=128, ge=16, le=1024)
    shingle: int = Field(default=5, ge=1, le=32, description="characters per shingle")


class DedupConfig(_Strict):
    exact: bool = True
    near: NearDedupConfig = NearDedupConfig()


class SplitConfig(_Strict):
    val_ratio: float = Field(default=0.1, ge=0, lt=1)
    seed: int = 42


class Recipe(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    identity: IdentityConfig | None = None
    sources: list[SourceConfig] = []
    mix: MixConfig = MixConfig()
    filters: FilterConfig = FilterConfig()
    dedup: DedupConfig = DedupConfig()
    split: SplitConfig = SplitConfig()
    output: PathText = Field(default="bundle", description="output root, relative to the recipe; must resolve "
                             "inside the recipe's folder or the current directory (else use --output)")
    train: dict[str, Any] | None = Field(default=None, description="defaults for `train run`")

    _base_dir: Path = PrivateAttr(default=Path("."))
    _file: str = PrivateAttr(default="<recipe>")
    _data_roots: tuple[Path, ...] = PrivateAttr(default=())

    @field_validator("sources")
    @classmethod
    def _sampling_ok(cls, sources: list[SourceConfig]) -> list[SourceConfig]:
        for source in sources:
            source.split_sampling()
        return sources

    @model_validator(mode="after")
    def _has_data(self) -> "Recipe":
        if self.identity is None and not any(s.kind == "domain" for s in self.sources):
            raise ValueError("a recipe needs identity templates or at least one domain source")
        return self

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    @property
    def file(self) -> str:
        return self._file

    @property
    def data_roots(self) -> tuple[Path, ...]:
        """Folders besides the recipe's own that its inputs may come from (`--data-root`)."""
        return self._data_roots

    def allow_data_roots(self, roots: Iterable[str | Path]) -> None:
        """Let inputs come from these folders too; each must be an existing folder."""
        added = []
        for root in roots:
            resolved = _resolve(Path(root))
            if resolved is None or not resolved.is_dir():
                raise RecipeError(f"--data-root: {root}: no such folder")
            added.append(resolved)
        self._data_roots = tuple(dict.fromkeys((*self._data_roots, *added)))

    @property
    def input_roots(self) -> tuple[Path, ...]:
        """Where everything a recipe reads must resolve: its folder, then any --data-root."""
        return (self._base_dir, *self._data_roots)

    def resolve(self, relative: str) -> Path:
        """A recipe path, taken relative to the recipe's folder."""
        return (self._base_dir / relative).resolve()

    def output_root(self, override: str | Path | None = None) -> Path:
        """Where versions go, checked before anything is written.

        `override` (`--output` on the command line) is trusted as given. The recipe's own `output:`
        must resolve (symlinks followed) inside the recipe's folder or inside the current working
        directory: the user chose where to run the command, and the shipped recipes write
        `../bundle` next to `recipes/`. Either way an existing file (or a path through one) is refused.
        """
        if override:
            root, where = _resolve(Path(override)), f"--output: {override}"
        else:
            root, where = _resolve(self._base_dir / self.output), f"{self._file}: output: {self.output}"
            try:
                cwd = _resolve(Path.cwd())
            except OSError:  # the current directory was removed
                cwd = None
            if root is None or not any(root.is_relative_to(folder) for folder in (self._base_dir, cwd) if folder):
                shown = root or self._base_dir / self.output
                raise RecipeError(f"{where} resolves to {shown}, outside the recipe's folder and the current "
                                  "directory; pass --output DIR to build there")
        if root is None:
            raise RecipeError(f"{where}: cannot resolve (a symlink loop?)")
        for folder in (root, *root.parents):
            if folder.exists():
                if not folder.is_dir():
                    through = "" if folder == root else f": {folder}"
                    raise RecipeError(f"{where}{through} is an existing file, not a folder")
                break
        return root


def _resolve(path: Path) -> Path | None:
    """`path` made absolute with symlinks followed; None for a symlink loop or an unreadable path."""
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):  # ValueError: a NUL byte
        return None


def _key_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")



def _check_train(path: Path, data: dict) -> None:
    """`train:` keys pass through to `train run`; only the command line may enable remote code."""
    train = data.get("train")
    if not isinstance(train, dict):
        return  # a wrong type is reported by validation
    for key in train:
        if str(key).replace("-", "_").lower() in REMOTE_CODE_KEYS:
            raise RecipeError(f"{path}: train.{key}: remote code can only be enabled on the command line "
                              "(train run --trust_remote_code)")


def load_recipe(path: str | Path, data_roots: Iterable[str | Path] = ()) -> Recipe:
    """Read and validate a recipe; every problem becomes one RecipeError line: file: key: what.

    `data_roots` are folders besides the recipe's own that its inputs may come from (the CLI's
    `--data-root`); see the module docstring for every bound a recipe is held to.
    """
    path = Path(path)
    try:
        return _load(path, data_roots)
    except RecipeError as exc:
        raise RecipeError(_one_line(str(exc))) from None


def _load(path: Path, data_roots: Iterable[str | Path]) -> Recipe:
    data = read_recipe_yaml(path)
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a YAML mapping of keys, got {type(data).__name__}")
    _check_train(path, data)
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = _key_path(err["loc"])
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        else:
            message = err["msg"].removeprefix("Value error, ")
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise RecipeError(f"{path}: {key}: {message}{more}") from None
    recipe._base_dir = path.resolve().parent
    recipe._file = str(path)
    recipe.allow_data_roots(data_roots)
    return recipe
