"""Trainable tokens at serving speed: the adapter's few rows, not a copy of the whole vocabulary per step.

Adapters trained with a built-in `--template` carry peft "trainable tokens": their own embedding rows
for the template's markers. PEFT 0.21 applies them by building a new vocabulary-sized matrix on every
forward pass (index_copy of vocab x hidden), for the embedding and again for a tied output layer, per
adapter in a mixed batch. For Gemma 3 270M (262,144 x 640) that is two 670 MB copies per adapter per
decoded token, about 0.3 s each on a 2-core CPU, more than the model's own step. Here those layers'
forward is replaced by one that computes the same numbers from the base layer plus the few rows: the
adapter's tokens get its rows as embeddings (times the layer's embedding scale, as PEFT does), and only
the adapter's columns of the logits are recomputed. `install` checks the result against PEFT's own
forward on a probe prompt, each adapter alone and mixed, and puts PEFT's back if they differ.
"""
from __future__ import annotations

import types

import torch
import torch.nn.functional as F

from train.serve.jobs import BASE


def _wrappers(model) -> list:
    from peft.utils.other import TrainableTokensWrapper

    return [m for m in model.modules() if isinstance(m, TrainableTokensWrapper)]


def _rows_for(wrapper, x: torch.Tensor, adapter_names: list[str] | None) -> list[tuple[str, torch.Tensor | None]]:
    """(adapter, batch rows or None for all) pairs whose trainable tokens apply, as PEFT's forward decides."""
    if adapter_names is None:
        if wrapper.disable_adapters or any(a not in wrapper._adapters for a in wrapper.active_adapters):
            return []
        return [(a, None) for a in wrapper.active_adapters]
    out = []
    for name in dict.fromkeys(adapter_names):
        if name != BASE:
            rows = [i for i, n in enumerate(adapter_names) if n == name]
            out.append((name, torch.tensor(rows, dtype=torch.long, device=x.device)))
    return out


def _fast_forward(self, x: torch.Tensor, *args, adapter_names: list[str] | None = None, **kwargs) -> torch.Tensor:
    layer = self.token_adapter
    out = layer.base_layer(x, *args, **kwargs)
    for name, rows in _rows_for(self, x, adapter_names):
        index = torch.tensor(layer.token_indices[name], dtype=torch.long, device=x.device)
        delta = layer.trainable_tokens_delta[name]
        rows = rows if rows is not None else torch.arange(x.shape[0], device=x.device)
        if isinstance(layer.base_layer, torch.nn.Embedding):
            hit = x[rows].unsqueeze(-1) == index  # rows x tokens x trainable
            which, at, k = hit.nonzero(as_tuple=True)
            scale = layer._get_embed_scale()
            values = delta[k] if scale is None else delta[k] * scale.to(delta.dtype)
            out[rows[which], at] = values.to(out.dtype)
        else:  # an output layer tied to the embedding: only the trainable tokens' logits change
            columns = F.linear(x[rows], delta.to(x.dtype))  # rows x positions x trainable
            positions = torch.arange(out.shape[1], device=x.device)
            out[rows.view(-1, 1, 1), positions.view(1, -1, 1), index.view(1, 1, -1)] = columns.to(out.dtype)
    return out


def _logits(model, ids: torch.Tensor, names: list[str]) -> list[torch.Tensor]:
    """Each adapter alone (BASE: adapters off), then all of them mixed in one batch."""
    out = []
    active = model.active_adapter
    for name in names:
        if name == BASE:
            with model.disable_adapter():
                out.append(model(input_ids=ids[:1], logits_to_keep=1).logits.float())
        else:
            model.set_adapter(name)
            out.append(model(input_ids=ids[:1], logits_to_keep=1).logits.float())
    model.set_adapter(active)
    out.append(model(input_ids=ids, adapter_names=names, logits_to_keep=1).logits.float())
    return out


@torch.no_grad()
def install(model, prompt_ids: list[int], adapters: list[str], atol: float = 1e-4) -> tuple[bool, str]:
    """Replace PEFT's trainable-token forward on `model` if it gives the same logits; (installed, why not)."""
    wrappers = _wrappers(model) if hasattr(model, "peft_config") else []
    if not wrappers or not adapters:
        return False, "no trainable tokens"
    names = [*adapters, BASE]
    ids = torch.tensor([prompt_ids] * len(names), device=next(model.parameters()).device)
    try:
        before = _logits(model, ids, names)
    except Exception as exc:  # noqa: BLE001 - PEFT cannot even run them: nothing to compare with
        return False, f"PEFT's own forward fails: {type(exc).__name__}"
    for wrapper in wrappers:
        wrapper.forward = types.MethodType(_fast_forward, wrapper)
    try:
        for old, new in zip(before, _logits(model, ids, names)):
            gap = (old - new).abs().max().item()
            if not gap <= atol * max(1.0, old.abs().max().item()):
                raise ValueError(f"logits differ from PEFT's by {gap:.3g}")
    except Exception as exc:  # noqa: BLE001 - anything unexpected: keep PEFT's forward
        for wrapper in wrappers:
            del wrapper.forward
        return False, str(exc)[:200]
    return True, ""
