"""Mix domain and general records at the recipe's ratio; identity counts as domain."""
from __future__ import annotations

import random

from curate.errors import BuildError
from schemas.recipe import RATIO_BAND


class MixError(BuildError):
    """The data cannot reach the ratio band the recipe must keep."""


def general_quota(domain: int, general_per_domain: float) -> int:
    return int(round(domain * general_per_domain))


def choose_general(general: int, domain: int, general_per_domain: float, seed: int) -> list[int]:
    """Indices (ascending) of the general records to keep: all of them, or a seeded sample."""
    quota = general_quota(domain, general_per_domain)
    if general <= quota:
        return list(range(general))
    return sorted(random.Random(f"{seed}:mix").sample(range(general), quota))


def check_band(domain: int, general: int, allow_out_of_band: bool, recipe_file: str) -> float | None:
    """The achieved general-per-domain ratio; an error when it left the band the recipe must keep."""
    if domain == 0:
        raise MixError(f"{recipe_file}: mix: no identity or domain record survived the filters")
    achieved = general / domain
    low, high = RATIO_BAND
    if not allow_out_of_band and not (low - 1e-9 <= achieved <= high + 1e-9):
        raise MixError(
            f"{recipe_file}: mix.ratio: achieved 1:{achieved:.2f} ({domain} domain, {general} general) is outside "
            f"1:{low:g}..1:{high:g}; add general data or set mix.allow_out_of_band: true")
    return achieved
