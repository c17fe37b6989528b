"""The build recipe: one YAML file that says exactly what a bundle is made of.

Unknown keys are errors, paths resolve relative to the recipe file, and the mix ratio must sit
inside the band that keeps general ability (1:2 to 1:10) unless the recipe says otherwise.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from schemas.shapes import ShapeName

RATIO_BAND = (2.0, 10.0)  # general records per domain record
SAMPLING = re.compile(r"^(?P<path>.+?)#(?P<n>[^#]*)$")


class RecipeError(ValueError):
    """A recipe problem, worded as one line naming the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LangText(_Strict):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class IdentityConfig(_Strict):
    name: LangText
    author: LangText
    templates: list[str] = Field(min_length=1, description="template files, relative to the recipe")
    system: str | None = Field(default=None, description="system prompt put before identity records")
    languages: list[Literal["zh", "en"]] = ["zh", "en"]


class SourceConfig(_Strict):
    path: str = Field(description="file or glob, relative to the recipe; 'path#N' samples N records")
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
    tokenizer: str | None = Field(default=None, description="tokenizer path for token limits")


class LanguageConfig(_Strict):
    backend: Literal["fasttext", "langdetect"] = "fasttext"
    min_chars: int = Field(default=10, ge=0, description="texts shorter than this are not judged")


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
    output: str = Field(default="bundle", description="output root, relative to the recipe")
    train: dict[str, Any] | None = Field(default=None, description="defaults for `train run`")

    _base_dir: Path = PrivateAttr(default=Path("."))
    _file: str = PrivateAttr(default="<recipe>")

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

    def resolve(self, relative: str) -> Path:
        """A recipe path, taken relative to the recipe's folder."""
        return (self._base_dir / relative).resolve()

    def output_root(self, override: str | Path | None = None) -> Path:
        return Path(override).resolve() if override else self.resolve(self.output)


def _key_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe; every problem becomes one RecipeError line: file: key: what."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{path}: cannot read recipe: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise RecipeError(f"{path}:{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a YAML mapping of keys, got {type(data).__name__}")
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
    return recipe
