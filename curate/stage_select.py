"""The build's global stages, over the compact records the per-record stages kept: priority order,
exact dedup, near dedup, mix, split. Each removal goes to the rejects file with its reason.
"""
from __future__ import annotations

import numpy as np

from curate.build_state import BuildState
from curate.dedup.exact import find_exact_duplicates
from curate.dedup.minhash import near_duplicates
from curate.mix import check_band, choose_general
from curate.split import split_indices

KIND_RANK = {"identity": 0, "domain": 1, "general": 2}


def order(state: BuildState) -> None:
    """Priority order for dedup's keep rule: identity, then domain, then general; within a kind,
    source, then position in the source."""
    kept = state.kept
    ranks = np.fromiter((KIND_RANK[p.kind] * 1_000_000 + p.source for p in kept), dtype=np.int64, count=len(kept))
    by_rank = np.argsort(ranks, kind="stable")
    state.kept = [kept[i] for i in by_rank.tolist()]
    signatures, state.signatures = state.signatures, []
    state.sig = np.concatenate(signatures)[by_rank] if signatures and len(kept) else None


def exact_dedup(state: BuildState) -> None:
    """Records whose normalised text is the same as an earlier one's."""
    if not state.recipe.dedup.exact:
        return
    with state.progress.stage("exact dedup", len(state.kept)) as progress:
        removed = find_exact_duplicates([p.key for p in state.kept])
        state.drop(removed, "exact_dedup", "exact_duplicate")
        state.keep_only(removed)
        progress.advance(len(state.kept) + len(removed))


def near_dedup(state: BuildState) -> None:
    """Records whose estimated Jaccard similarity to an earlier kept one reaches the threshold."""
    near = state.recipe.dedup.near
    sig, state.sig = state.sig, None  # the largest array here; nothing needs it after this stage
    if not near.enabled or sig is None or not len(state.kept):
        return
    with state.progress.stage("near dedup", len(state.kept)) as progress:
        removed = near_duplicates(sig, near.threshold)
        state.drop(removed, "near_dedup", "near_duplicate")
        state.near_kept_ids = [state.kept[twin].id for twin, _ in removed.values()]
        state.keep_only(removed)
        progress.advance(len(state.kept) + len(removed))


def mix(state: BuildState) -> None:
    """Identity counts as domain; general records are sampled down to the recipe's ratio."""
    recipe = state.recipe
    domain = [p for p in state.kept if p.kind != "general"]
    general = [p for p in state.kept if p.kind == "general"]
    state.kept = []
    chosen = set(choose_general(len(general), len(domain), recipe.mix.general_per_domain(), state.seed))
    for index, item in enumerate(general):
        if index not in chosen:
            state.sink.add_kept(item, "mix", "over_ratio", f"left out to keep domain:general at {recipe.mix.ratio}")
    state.sink.close()  # nothing is rejected after the mix
    state.domain = domain
    state.general = [g for i, g in enumerate(general) if i in chosen]
    state.achieved = check_band(len(domain), len(state.general), recipe.mix.allow_out_of_band, recipe.file)


def split(state: BuildState) -> None:
    """Train and validation indices into the final records, stratified by kind."""
    state.train_idx, state.val_idx = split_indices([p.kind for p in state.final], state.recipe.split.val_ratio,
                                                   state.seed)
