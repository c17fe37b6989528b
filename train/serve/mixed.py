"""Per-row adapters in one batch (PEFT's mixed-adapter inference), cheaply, and a check that it is right.

PEFT routes `adapter_names=[...]` (one per row, "__base__" for the base model) by registering a hook on
every LoRA layer for the length of each forward call, after walking the whole model twice: on the tiny
model that set-up was 45% of a decoding step. `AdapterRouter` registers the same hooks once and sets the
names per step; a batch whose rows all use one adapter skips routing altogether (that adapter is made
the active one, and PEFT's plain forward runs).

Adapters trained with a built-in `--template` carry peft "trainable tokens" (embedding rows of the
template's markers). PEFT 0.21 routes `adapter_names` through those layers as well (logits matched
each adapter alone to 1e-5 on a tied-embedding model), but adapters with and without trainable tokens
cannot be mixed (a KeyError inside PEFT), and other PEFT versions may differ. So the server asks once,
at start, through the router the batcher will use: one forward over a short prompt, one row per
adapter and one for the base model, compared with each adapter run alone. If it raises or disagrees,
the batcher groups rows by adapter instead.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

from train.serve.jobs import BASE


class AdapterRouter:
    """Sends each row of a batch through its own adapter (see the module docstring)."""

    def __init__(self, model):
        from peft.tuners.lora import LoraLayer
        from peft.utils.other import AuxiliaryTrainingWrapper

        self.model, self.names = model, None
        self.active = model.active_adapter
        self._handles = [module.register_forward_pre_hook(self._inject, with_kwargs=True)
                         for module in model.modules() if isinstance(module, (LoraLayer, AuxiliaryTrainingWrapper))]

    def _inject(self, _module, args, kwargs):
        if self.names is not None:
            kwargs["adapter_names"] = self.names
        return args, kwargs

    @contextmanager
    def rows(self, names: list[str]) -> Iterator[None]:
        """Within the block, row i of a forward pass goes through adapter names[i]."""
        if len(set(names)) == 1 and names[0] != BASE:
            if self.active != names[0]:
                self.model.set_adapter(names[0])
                self.active = names[0]
            yield
            return
        self.names = list(names)
        try:
            yield
        finally:
            self.names = None

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


@torch.no_grad()
def mixed_batches_work(model, prompt_ids: list[int], adapters: list[str], atol: float = 1e-3) -> tuple[bool, str]:
    """(works, why not) for `model` (a PeftModel holding `adapters`) on `prompt_ids`."""
    if not hasattr(model, "peft_config") or not adapters:
        return True, ""
    names = [*adapters, BASE]
    ids = torch.tensor([prompt_ids] * len(names), device=next(model.parameters()).device)
    active = model.active_adapter
    router = AdapterRouter(model)
    try:
        with router.rows(names):
            mixed = model(input_ids=ids, logits_to_keep=1).logits.float()
    except Exception as exc:  # noqa: BLE001 - any failure means: do not mix
        return False, f"{type(exc).__name__}: {str(exc)[:160]}"
    finally:
        router.close()
    try:
        for row, name in enumerate(names):
            if name == BASE:
                with model.disable_adapter():
                    alone = model(input_ids=ids[row:row + 1], logits_to_keep=1).logits.float()
            else:
                model.set_adapter(name)
                alone = model(input_ids=ids[row:row + 1], logits_to_keep=1).logits.float()
            gap = (alone[0] - mixed[row]).abs().max().item()
            if not gap <= atol * max(1.0, alone.abs().max().item()):
                return False, f"row of {name!r} differs from that adapter alone by {gap:.3g}"
    finally:
        model.set_adapter(active)
    return True, ""
