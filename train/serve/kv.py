"""One KV cache per running batch: made, shrunk when rows leave, grown when new rows join.

Rows are left-padded, so every row's next token sits in the same last column and one forward step
serves the whole batch. A row that finishes (or whose client left) is cut out of the cache at once.
New rows are prefilled in their own cache and then joined to a running batch by left-padding the
shorter of the two caches with masked zeros, which is what continuous batching needs without paged
attention. Joining is done only for cache layers whose layout is known here (transformers'
DynamicLayer, and DynamicSlidingWindowLayer while it still holds every token it has seen); any other
cache keeps its rows in a batch of their own until they finish.
"""
from __future__ import annotations

import inspect

import torch


def new_cache(model):
    """An empty DynamicCache laid out for `model` (sliding-window layers where its config has them)."""
    from transformers import DynamicCache

    try:
        return DynamicCache(config=model.config)
    except TypeError:  # older transformers: no config argument
        return DynamicCache()


def cache_keyword(model) -> str:
    """The forward() keyword that takes the cache: `cache` (transformers >= 5.x) or `past_key_values`."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    inner = getattr(base, "model", base)
    params = inspect.signature(inner.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _layers(cache) -> list:
    return list(getattr(cache, "layers", []))


def _plain(layer) -> bool:
    from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

    if type(layer) is DynamicLayer:
        return True
    if type(layer) is DynamicSlidingWindowLayer:  # joinable until it starts dropping its oldest tokens
        return layer.keys is not None and layer.keys.shape[-2] == layer.cumulative_length
    return False


def can_join(a, b) -> bool:
    """Whether two caches of the same model can be stacked into one batch (see the module docstring)."""
    layers_a, layers_b = _layers(a), _layers(b)
    if not layers_a or len(layers_a) != len(layers_b):
        return False
    return all(la.is_initialized and lb.is_initialized and _plain(la) and _plain(lb)
               for la, lb in zip(layers_a, layers_b))


def _left_pad(tensor: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    if width == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = width
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


def join(a, mask_a: torch.Tensor, b, mask_b: torch.Tensor) -> tuple[object, torch.Tensor]:
    """Rows of `b` appended after the rows of `a` (in place in `a`); returns (cache, joined 2-D mask).

    Call only when `can_join(a, b)`. The shorter side is left-padded with zeros its mask hides.
    """
    length = max(mask_a.shape[1], mask_b.shape[1])
    pad_a, pad_b = length - mask_a.shape[1], length - mask_b.shape[1]
    for la, lb in zip(_layers(a), _layers(b)):
        la.keys = torch.cat([_left_pad(la.keys, pad_a, -2), _left_pad(lb.keys, pad_b, -2)], dim=0)
        la.values = torch.cat([_left_pad(la.values, pad_a, -2), _left_pad(lb.values, pad_b, -2)], dim=0)
        if hasattr(la, "cumulative_length"):
            la.cumulative_length = length
    mask = torch.cat([_left_pad(mask_a, pad_a, 1), _left_pad(mask_b, pad_b, 1)], dim=0)
    return a, mask


def keep_rows(cache, mask: torch.Tensor, rows: list[int]) -> torch.Tensor:
    """Cut the cache (in place) and the mask down to `rows`; returns the new mask.

    Columns that only the departed rows used (padding for everyone left) stay: trimming them would
    need each layer's bookkeeping rewritten, and they are masked anyway.
    """
    index = torch.tensor(rows, dtype=torch.long, device=mask.device)
    cache.batch_select_indices(index)
    return mask.index_select(0, index)
