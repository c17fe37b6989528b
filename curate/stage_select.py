"""The build's global stages, over the compact records the per-record stages kept: priority order,
exact dedup, near dedup, mix, split. Each removal goes to the rejects file with its reason.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from curate import stage_read
from curate.build_state import BuildState
from curate.dedup.exact import find_exact_duplicates
from curate.dedup.minhash import choose, verify
from curate.dedup_pool import near_pairs
from curate.kept_store import KIND_NAMES, KIND_RANK
from curate.mix import check_band, choose_general
from curate.process_pool import worker_count
from curate.signature_spill import SignatureSpill
from curate.split import split_indices

VERIFY_PAIRS = 50_000  # candidate pairs verified at a time: their two signature rows, 51 MB at 128 perms


def order(state: BuildState) -> None:
    """Priority order for dedup's keep rule: identity, then domain, then general; within a kind,
    source, then position in the source. The store stops taking records here."""
    store = state.store
    store.close_writing()
    ranks = store.kinds.astype(np.int64) * 1_000_000 + store.sources
    state.kept = np.argsort(ranks, kind="stable")
    if state.near_spill is not None:
        state.near_spill.close_writing()


def exact_dedup(state: BuildState, find: Callable[[np.ndarray], dict[int, int]] = find_exact_duplicates) -> None:
    """Records whose normalised text is the same as an earlier one's. `find` maps the keys in
    priority order to duplicate -> first index (another engine passes its own, same answer)."""
    if not state.recipe.dedup.exact:
        return
    with state.progress.stage("exact dedup", len(state.kept)) as progress:
        removed = find(state.store.keys[state.kept])
        state.store.release("keys")
        state.drop(removed, "exact_dedup", "exact_duplicate")
        state.keep_only(removed)
        progress.advance(len(state.kept) + len(removed))


def near_dedup(state: BuildState, find_pairs: Callable[..., np.ndarray] | None = None) -> None:
    """Records whose estimated Jaccard similarity to an earlier kept one reaches the threshold.
    `find_pairs(band_columns, valid)` gives the candidate pairs (another engine passes its own);
    otherwise each band's candidates are verified as they are found, the bands shared out over
    worker processes when there are enough records (curate.dedup_pool: same pairs, same scores)."""
    spill = state.near_spill
    if spill is None:  # near dedup is off
        return
    if len(state.kept):
        _drop_near_duplicates(state, spill, find_pairs)
    state.chores.run(spill.discard)  # signatures and band keys are not read again


def _drop_near_duplicates(state: BuildState, spill: SignatureSpill,
                          find_pairs: Callable[..., np.ndarray] | None) -> None:
    near, kept = state.recipe.dedup.near, state.kept
    processes = worker_count(state.workers, len(kept), stage_read.PARALLEL_FROM)
    with state.progress.stage("near dedup", len(kept)) as progress:
        # = near_duplicates(signatures in priority order), one band column in memory at a time
        columns, valid, rows = spill.band_columns(kept), spill.valid[kept], spill.signature_rows(kept)
        if find_pairs is not None:
            pairs, scores = verify(rows, find_pairs(columns, valid), near.threshold, chunk=VERIFY_PAIRS)
        else:
            pairs, scores = near_pairs(columns, valid, rows, near.threshold, processes, VERIFY_PAIRS)
        removed = choose(pairs, scores)
        state.drop(removed, "near_dedup", "near_duplicate")
        state.keep_only(removed)
        progress.advance(len(state.kept) + len(removed))


def mix(state: BuildState) -> None:
    """Identity counts as domain; general records are sampled down to the recipe's ratio."""
    state.store.release("id_offsets", "id_sizes")  # dedup named its twins: ids are not read again
    recipe, kept = state.recipe, state.kept
    is_general = state.store.kinds[kept] == KIND_RANK["general"]
    domain, general = kept[~is_general], kept[is_general]
    chosen = np.zeros(len(general), dtype=bool)
    chosen[choose_general(len(general), len(domain), recipe.mix.general_per_domain(), state.seed)] = True
    message = f"left out to keep domain:general at {recipe.mix.ratio}"
    for record in state.store.get_many(general[~chosen]):
        state.sink.add_kept(record, "mix", "over_ratio", message)
    state.sink.close()  # nothing is rejected after the mix
    state.chores.sync(state.sink.path)
    state.domain, state.general = domain, general[chosen]
    state.kept = np.zeros(0, dtype=np.int64)  # from here on the survivors are domain and general
    state.achieved = check_band(len(domain), len(state.general), recipe.mix.allow_out_of_band, recipe.file)


def split(state: BuildState) -> None:
    """Train and validation indices into the final records, stratified by kind."""
    by_name = np.argsort(np.argsort(KIND_NAMES)).astype(np.int8)  # kind rank -> its name's place in sorted names
    codes = by_name[state.store.kinds[state.final]]
    state.train_idx, state.val_idx = split_indices(codes, state.recipe.split.val_ratio, state.seed)
