"""`train eval`: did the identity take, and what did it cost the model's general ability?

For a LoRA adapter one model is in memory: the base model with the adapter switched off (peft
`disable_adapter`) answers "before", the same model with the adapter on answers "after". For a fully
trained (or merged) model folder, the base model recorded in its curatune_train.json answers "before",
then makes room for the trained model. Measured, before and after:

- identity, strictly (train/identity_verdict.py): on three sets of questions, the identity questions
  the model trained on (train split, the first --train_questions of them), the bundle's val identity
  questions (paraphrases in the recipe's templates that training never saw), and built-in paraphrases
  in zh and en that the bundle never trained on (any found among the train questions is skipped and
  reported). Each question carries what a correct answer must state (name, author); an answer is
  correct when it states it in the question's language and attributes nothing wrongly (the author's
  name as its own, denying its name, a known maker as its own). The correct rate per set and language
  is the headline; swaps and the lenient "name or author mentioned" rate stand beside it;
- a few general questions a pretrained model can answer ("What is the capital of France?");
- mentions of known model makers and model names (Alibaba/Qwen, Google/Gemma, Meta/Llama, ...);
- how often generation stopped at the end-of-turn token rather than at --max_new_tokens;
- general retention: the mean token loss on the val split's general records, once as chat
  (assistant tokens only, chat template) and once as plain text (question and answer joined, no
  template), which measures a base model that never saw the template fairly.

Greedy decoding. The JSON written is the machine contract; the table is for people.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from schemas.record import Record
from train.bundle import open_bundle
from train.chat import load_base_model, load_trained_model, read_run_info, stop_token_ids
from train.data import collate, count_targets
from train.encode import Encoded, encode_records, render
from train.errors import TrainError
from train.eval_questions import Question, bundle_questions, general_questions, held_out_questions
from train.eval_report import SETS, answered, identity_scores, maker_scores, print_table, rate, verdicts_for, write_json
from train.identity_verdict import Terms, mentions
from train.loop import token_loss_sum
from train.model import load_tokenizer

@dataclass
class Answer:
    text: str
    stopped: bool  # generation ended at an end-of-turn/eos token, not at max_new_tokens


class Identity(Terms):
    """The identity a bundle was built for, read from its manifest."""

    @classmethod
    def from_manifest(cls, identity: dict[str, Any] | None, where: str) -> "Identity":
        identity = identity or {}
        name, author = identity.get("name"), identity.get("author")
        if not isinstance(name, dict) or not isinstance(author, dict) or not name or not author:
            raise TrainError(f"{where}: the bundle manifest has no identity name/author to check for "
                             "(built from a recipe without an `identity:` section?)")
        return cls({k: str(v) for k, v in name.items() if v}, {k: str(v) for k, v in author.items() if v})

    def hits(self, answer: str, lang: str) -> tuple[bool, bool]:
        """Lenient: does the answer mention the name, the author (any language's spelling)?"""
        return mentions(answer, self.names()), mentions(answer, self.authors())


@torch.no_grad()
def generate_answers(model, tokenizer, questions: list[Question], max_new_tokens: int = 64,
                     batch_size: int = 8) -> list[Answer]:
    """Greedy answers, several prompts at a time (left-padded), in the order of `questions`."""
    from transformers import GenerationConfig

    stops = stop_token_ids(tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    prompts = [tokenizer(render(tokenizer, q.messages, add_generation_prompt=True),
                         add_special_tokens=False)["input_ids"] for q in questions]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    device = next(model.parameters()).device
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=stops,
                              pad_token_id=pad_id, repetition_penalty=1.0, temperature=None, top_p=None, top_k=None)
    answers: list[Answer | None] = [None] * len(prompts)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        width = max(len(prompts[i]) for i in chunk)
        input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, i in enumerate(chunk):
            ids = prompts[i]
            input_ids[row, width - len(ids):] = torch.tensor(ids)
            mask[row, width - len(ids):] = 1
        output = model.generate(input_ids=input_ids.to(device), attention_mask=mask.to(device), generation_config=config)
        for row, i in enumerate(chunk):
            new = output[row, width:].tolist()
            cut = next((k for k, token in enumerate(new) if token in stops), None)
            text = tokenizer.decode(new[:cut] if cut is not None else new, skip_special_tokens=True).strip()
            answers[i] = Answer(text, cut is not None)
    return answers  # type: ignore[return-value]


@torch.no_grad()
def chat_loss(model, encoded: list[Encoded], pad_id: int, batch_size: int = 8) -> float | None:
    """Mean loss per assistant token (chat template, assistant-only labels)."""
    loss_sum, tokens = 0.0, 0
    for start in range(0, len(encoded), batch_size):
        batch = collate([[e] for e in encoded[start:start + batch_size]], pad_id, packing=False)
        loss_sum += float(token_loss_sum(model, batch))
        tokens += count_targets(batch["labels"])
    return loss_sum / tokens if tokens else None


def plain_texts(records: list[Record]) -> list[str]:
    """Each record's user and assistant contents joined by newlines: text with no chat template."""
    return ["\n".join(m.content for m in r.messages if m.role in ("user", "assistant")) for r in records]


def plain_encoded(tokenizer, texts: list[str], max_length: int) -> list[Encoded]:
    """Every token is a target (BOS, if the tokenizer adds one, is the unscored first token)."""
    out = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=True)["input_ids"][:max_length]
        if len(ids) >= 2:
            out.append(Encoded(ids, list(ids)))
    return out


def evaluate_trained(adapter: str | Path, bundle: str | Path | None = None, max_new_tokens: int = 64,
                     model_override: str | None = None, batch_size: int = 8, train_questions: int | None = None,
                     log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Run the whole check on an adapter (or a full/merged model folder) and return the JSON-ready result."""
    adapter = Path(adapter)
    is_adapter = (adapter / "adapter_config.json").is_file()
    if not is_adapter and not (adapter / "config.json").is_file():
        raise TrainError(f"{adapter}: not a model folder; pass the folder `train run` printed "
                         "(OUTPUT_DIR/adapter or OUTPUT_DIR/model) or one `train merge` wrote")
    info = read_run_info(adapter)
    bundle_path = bundle or (info.get("bundle") or {}).get("path")
    if not bundle_path:
        raise TrainError(f"{adapter}: no bundle recorded in curatune_train.json; pass --bundle")
    opened = open_bundle(bundle_path, log=log)
    identity = Identity.from_manifest(opened.manifest.identity, str(opened.path / "manifest.json"))
    config = info.get("config", {})
    system, max_length = config.get("system"), int(config.get("max_length") or 2048)

    sets = {"train": bundle_questions(opened.train, system, "train", identity)[:train_questions],
            "val": bundle_questions(opened.val, system, "val", identity)}
    held_out, skipped = held_out_questions(opened.train, system)
    sets["held_out"] = held_out
    if skipped:
        log(f"eval: skipped {len(skipped)} built-in paraphrase(s) found among the train questions: "
            + "; ".join(skipped))
    general_qs = general_questions(system)
    general = [r for r in opened.val if r.meta.kind == "general"]
    questions = [q for qs in sets.values() for q in qs] + general_qs

    tokenizer = load_tokenizer(str(adapter))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    chat_encoded = encode_records(tokenizer, general, max_length, system)
    plain = plain_encoded(tokenizer, plain_texts(general), max_length)

    def measure(lm, when: str) -> dict[str, Any]:
        log(f"eval: {when}: {len(questions)} questions, {len(general)} general records")
        return {"answers": generate_answers(lm, tokenizer, questions, max_new_tokens, batch_size),
                "chat": chat_loss(lm, chat_encoded, pad_id, batch_size),
                "plain": chat_loss(lm, plain, pad_id, batch_size)}

    results: dict[str, dict[str, Any]] = {}
    if is_adapter:
        model = load_trained_model(adapter, model_override)
        with model.disable_adapter():
            results["before"] = measure(model, "before")
        # Folded into the weights, the adapter costs nothing per token: unmerged, peft's trainable
        # token rows rebuild the whole embedding matrix on every forward (3x slower for Gemma).
        model.merge_adapter()
        results["after"] = measure(model, "after")
    else:
        base = load_base_model(info, model_override)
        results["before"] = measure(base, "before")
        del base  # one model in memory at a time
        trained = load_trained_model(adapter)
        results["after"] = measure(trained, "after")
    return assemble_result(adapter, is_adapter, info, opened, identity, sets, skipped, general_qs, general,
                           results, max_new_tokens)


def assemble_result(adapter: Path, is_adapter: bool, info: dict[str, Any], opened, identity: Identity,
                    sets: dict[str, list[Question]], skipped: list[str], general_qs: list[Question],
                    general: list[Record], results: dict[str, dict[str, Any]], max_new_tokens: int) -> dict[str, Any]:
    """Verdicts and rates per set, language and moment (before/after), with every answer and why."""
    texts = {when: [a.text for a in results[when]["answers"]] for when in ("before", "after")}
    identity_qs = [q for key, _ in SETS for q in sets[key]]
    n = len(identity_qs)
    verdicts = {when: verdicts_for(identity, identity_qs, texts[when][:n]) for when in ("before", "after")}
    blocks, offset = {}, 0
    for key, _label in SETS:
        qs = sets[key]
        blocks[key] = {"questions": len(qs)}
        for when in ("before", "after"):
            blocks[key][when] = identity_scores(qs, verdicts[when][offset:offset + len(qs)])
        offset += len(qs)
    blocks["held_out"]["skipped"] = skipped

    def loss_block(key: str) -> dict[str, Any]:
        before, after = results["before"][key], results["after"][key]
        change = (after - before) / before if before and after is not None else None
        return {"before": before, "after": after, "change": change, "records": len(general)}

    samples = []
    for i, q in enumerate(identity_qs):
        samples.append({"source": q.source, "lang": q.lang, "question": q.text, "needs": list(q.needs),
                        "reference": q.reference,
                        "before": texts["before"][i], "before_verdict": verdicts["before"][i].to_json(),
                        "after": texts["after"][i], "after_verdict": verdicts["after"][i].to_json(),
                        "after_stopped": results["after"]["answers"][i].stopped})
    general_block: dict[str, Any] = {"questions": len(general_qs), "answers": []}
    for when in ("before", "after"):
        general_block[when] = rate([answered(q, t) for q, t in zip(general_qs, texts[when][n:])])
    for j, q in enumerate(general_qs):
        general_block["answers"].append({"question": q.text, "lang": q.lang, "expect": list(q.expect),
                                         "before": texts["before"][n + j], "after": texts["after"][n + j],
                                         "answered_after": answered(q, texts["after"][n + j])})
    return {
        "model": str(adapter.resolve()),
        "kind": "adapter" if is_adapter else "model",
        "base_model": info.get("base_model"),
        "bundle": {"path": str(opened.path), "manifest_id": opened.manifest.id},
        "identity_target": {"name": identity.name, "author": identity.author},
        "max_new_tokens": max_new_tokens,
        "headline": {**{key: blocks[key]["after"]["correct_rate"] for key, _ in SETS},
                     "swap_rate": rate([v.swap for v in verdicts["after"]])},
        "identity": blocks,
        "maker_mentions": {when: maker_scores(texts[when][:n]) for when in ("before", "after")},
        "eos_rate": {when: rate([a.stopped for a in results[when]["answers"][:n]]) for when in ("before", "after")},
        "general_questions": general_block,
        "general_loss": {"chat": loss_block("chat"), "plain": loss_block("plain")},
        "answers": samples,
    }


__all__ = ["Identity", "evaluate_trained", "print_table", "write_json"]
