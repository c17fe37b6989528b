"""Packing: records share a row but never attend to each other."""
from __future__ import annotations

import torch

from schemas.record import Record
from tests.conftest import identity_records
from train.data import collate, make_examples
from train.encode import encode_records
from train.loop import token_loss_sum
from train.packing import pack_records


def _setup(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    records = [Record.model_validate(r) for r in identity_records()]
    return tokenizer, model, encode_records(tokenizer, records, max_length=512)


def test_packed_record_matches_record_alone(tiny_model):
    tokenizer, model, encoded = _setup(tiny_model)
    packs = pack_records(encoded, max_length=128)
    assert len(packs) < len(encoded) and all(sum(len(e.input_ids) for e in p) <= 128 for p in packs)
    assert any(len(p) >= 3 for p in packs)
    pad = tokenizer.pad_token_id
    with torch.no_grad():
        batch = collate(packs[:2], pad, packing=True)  # two rows: the shorter one is padded at the tail
        logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
        for row, pack in enumerate(packs[:2]):
            offset = 0
            for item in pack:
                alone = model(input_ids=torch.tensor([item.input_ids]), use_cache=False).logits[0]
                n = len(item.input_ids)
                torch.testing.assert_close(logits[row, offset:offset + n], alone, atol=1e-4, rtol=1e-4)
                offset += n


def test_packed_loss_equals_sum_of_losses(tiny_model):
    tokenizer, model, encoded = _setup(tiny_model)
    pad = tokenizer.pad_token_id
    packs = make_examples(encoded, packing=True, max_length=256, seed=1)
    with torch.no_grad():
        packed = sum(float(token_loss_sum(model, collate([p], pad, packing=True))) for p in packs)
        alone = sum(float(token_loss_sum(model, collate([[e]], pad, packing=False))) for e in encoded)
        padded_batch = float(token_loss_sum(model, collate([[e] for e in encoded], pad, packing=False)))
    assert abs(packed - alone) < 1e-3 * alone
    assert abs(padded_batch - alone) < 1e-3 * alone
