"""`train eval`: did the identity take, and what did it cost the model's general ability?

For a LoRA adapter one model is in memory: the base model with the adapter switched off (peft
`disable_adapter`) answers "before", the same model with the adapter on answers "after". For a fully
trained (or merged) model folder, the base model recorded in its curatune_train.json answers "before",
then makes room for the trained model. Measured, before and after:

- identity hit rates on three sets of questions: the identity questions the model trained on (train
  split, the first --train_questions of them), the bundle's val identity questions (paraphrases in
  the recipe's templates that training never saw), and built-in paraphrases in zh and en that the
  bundle never trained on (any that does appear among the train questions, after normalisation, is
  skipped and reported). An answer is a hit when it names the new name or the new author for the
  question's language (from the bundle manifest's `identity`); name, author and both are reported
  separately too;
- mentions of known model makers and model names (Alibaba/Qwen, Google/Gemma, Meta/Llama, ...);
- how often generation stopped at the end-of-turn token rather than at --max_new_tokens;
- general retention: the mean token loss on the val split's general records, once as chat
  (assistant tokens only, chat template) and once as plain text (question and answer joined, no
  template), which measures a base model that never saw the template fairly.

Greedy decoding. The JSON written is the machine contract; the table is for people.
"""
from __future__ import annotations

import json
import re
import unicodedata
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
from train.loop import token_loss_sum
from train.model import load_tokenizer

HELD_OUT: dict[str, list[str]] = {
    "en": [
        "What do people call you?", "May I know your name?", "Introduce yourself, please.",
        "Who is your creator?", "Who made you?", "Which organization developed you?",
        "Tell me your name and who built you.", "Who are you, exactly?", "What is your name?",
        "Who is behind you?", "Could you tell me who you are?", "Who programmed you?", "Who designed you?",
        "Which assistant am I speaking with?", "Which AI are you?", "Please describe who you are.",
        "Who trained you?", "Who is your developer?", "What are you called?", "Give me a short introduction of yourself.",
    ],
    "zh": [
        "你叫啥？", "请问你的名字是？", "你的开发者是谁？", "谁创造了你？", "你是哪位？", "能介绍一下你是谁吗？",
        "谁训练了你？", "你是由谁打造的？", "请告诉我你的名字。", "你是什么AI？", "我在和谁说话？", "你的作者是谁？",
        "你是哪家的AI助手？", "简单介绍一下自己吧。", "怎么称呼你比较好？", "谁设计了你？", "你的名字叫什么？",
        "你出自谁之手？", "做个自我介绍吧。", "你是谁做出来的？",
    ],
}

# Makers and model names a base model tends to claim; word-bounded where they are Latin words.
MAKERS: dict[str, str] = {
    "Alibaba": r"\balibaba\b|阿里", "Qwen": r"\bqwen|通义|千问", "Google": r"\bgoogle\b|谷歌",
    "Gemma": r"\bgemma\b", "Gemini": r"\bgemini\b", "DeepMind": r"\bdeepmind\b", "Meta": r"\bmeta\b",
    "Llama": r"\bllama\b", "OpenAI": r"\bopenai\b", "ChatGPT/GPT": r"\bchatgpt\b|\bgpt\b", "Anthropic": r"\banthropic\b",
    "Claude": r"\bclaude\b", "Baidu": r"\bbaidu\b|百度|文心|\bernie\b", "Microsoft": r"\bmicrosoft\b|微软",
    "Mistral": r"\bmistral\b", "DeepSeek": r"\bdeepseek\b|深度求索",
}
_MAKER_RES = {name: re.compile(pattern, re.IGNORECASE) for name, pattern in MAKERS.items()}
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def normalise_question(text: str) -> str:
    """NFKC, case-folded, letters and digits only: 'Who are you?' == 'who are you'."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).casefold() if ch.isalnum())


def question_lang(text: str, given: str | None = None) -> str:
    if given in ("zh", "en"):
        return given
    return "zh" if _CJK.search(text) else "en"


def makers_in(text: str) -> list[str]:
    return [name for name, pattern in _MAKER_RES.items() if pattern.search(text)]


@dataclass
class Question:
    messages: list[dict[str, str]]  # up to and including the user turn to answer
    lang: str
    source: str  # "val", "train" or "held_out"
    reference: str | None = None

    @property
    def text(self) -> str:
        return self.messages[-1]["content"]


@dataclass
class Answer:
    text: str
    stopped: bool  # generation ended at an end-of-turn/eos token, not at max_new_tokens


@dataclass
class Identity:
    name: dict[str, str]
    author: dict[str, str]

    @classmethod
    def from_manifest(cls, identity: dict[str, Any] | None, where: str) -> "Identity":
        identity = identity or {}
        name, author = identity.get("name"), identity.get("author")
        if not isinstance(name, dict) or not isinstance(author, dict) or not name or not author:
            raise TrainError(f"{where}: the bundle manifest has no identity name/author to check for "
                             "(built from a recipe without an `identity:` section?)")
        return cls({k: str(v) for k, v in name.items()}, {k: str(v) for k, v in author.items()})

    def _pick(self, table: dict[str, str], lang: str) -> str:
        return table.get(lang) or table.get("en") or next(iter(table.values()))

    def hits(self, answer: str, lang: str) -> tuple[bool, bool]:
        folded = answer.casefold()
        return (self._pick(self.name, lang).casefold() in folded, self._pick(self.author, lang).casefold() in folded)


def first_question(record: Record, system: str | None) -> list[dict[str, str]] | None:
    """The record's messages up to its first assistant turn (system replaced as in training)."""
    from train.encode import record_messages

    messages = record_messages(record, system)
    for i, message in enumerate(messages):
        if message["role"] == "assistant":
            return messages[:i] if i and messages[i - 1]["role"] == "user" else None
    return None


def bundle_questions(records: list[Record], system: str | None, source: str) -> list[Question]:
    out = []
    for record in records:
        if record.meta.kind != "identity":
            continue
        messages = first_question(record, system)
        if messages is None:
            continue
        reference = next((m.content for m in record.messages if m.role == "assistant"), None)
        out.append(Question(messages, question_lang(messages[-1]["content"], record.meta.lang), source, reference))
    return out


def held_out_questions(train: list[Record], system: str | None) -> tuple[list[Question], list[str]]:
    """Built-in paraphrases not among the train questions; and those skipped because they are."""
    seen = {normalise_question(m.content) for r in train for m in r.messages if m.role == "user"}
    kept, skipped = [], []
    for lang, questions in HELD_OUT.items():
        for text in questions:
            if normalise_question(text) in seen:
                skipped.append(text)
                continue
            messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
            kept.append(Question(messages, lang, "held_out"))
    return kept, skipped


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


def _rate(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def identity_scores(identity: Identity, questions: list[Question], answers: list[Answer]) -> dict[str, Any]:
    name_hits, author_hits = [], []
    for q, a in zip(questions, answers):
        n, au = identity.hits(a.text, q.lang)
        name_hits.append(n)
        author_hits.append(au)
    by_lang = {}
    for lang in ("zh", "en"):
        idx = [i for i, q in enumerate(questions) if q.lang == lang]
        if idx:
            by_lang[lang] = _rate([name_hits[i] or author_hits[i] for i in idx])
    return {"hit_rate": _rate([n or au for n, au in zip(name_hits, author_hits)]),
            "name_rate": _rate(name_hits), "author_rate": _rate(author_hits),
            "both_rate": _rate([n and au for n, au in zip(name_hits, author_hits)]),
            "by_lang": by_lang}


def maker_scores(answers: list[Answer]) -> dict[str, Any]:
    found = [makers_in(a.text) for a in answers]
    counts: dict[str, int] = {}
    for names in found:
        for name in names:
            counts[name] = counts.get(name, 0) + 1
    return {"rate": _rate([bool(names) for names in found]), "answers": sum(1 for f in found if f), "by_maker": counts}


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

    sets = {"train": bundle_questions(opened.train, system, "train")[:train_questions],
            "val": bundle_questions(opened.val, system, "val")}
    held_out, skipped = held_out_questions(opened.train, system)
    sets["held_out"] = held_out
    if skipped:
        log(f"eval: skipped {len(skipped)} built-in paraphrase(s) found among the train questions: "
            + "; ".join(skipped))
    general = [r for r in opened.val if r.meta.kind == "general"]
    questions = [q for qs in sets.values() for q in qs]

    tokenizer = load_tokenizer(str(adapter))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    chat_encoded = encode_records(tokenizer, general, max_length, system)
    plain = plain_encoded(tokenizer, plain_texts(general), max_length)

    def measure(lm, when: str) -> dict[str, Any]:
        log(f"eval: {when}: {len(questions)} identity questions, {len(general)} general records")
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

    def part(qs: list[Question], offset: int) -> dict[str, Any]:
        block: dict[str, Any] = {"questions": len(qs)}
        for when in ("before", "after"):
            block[when] = identity_scores(identity, qs, results[when]["answers"][offset:offset + len(qs)])
        return block

    def loss_block(key: str) -> dict[str, Any]:
        before, after = results["before"][key], results["after"][key]
        change = (after - before) / before if before and after is not None else None
        return {"before": before, "after": after, "change": change, "records": len(general)}

    blocks, offset = {}, 0
    for key, qs in sets.items():
        blocks[key] = part(qs, offset)
        offset += len(qs)
    blocks["held_out"]["skipped"] = skipped
    samples = []
    for i, q in enumerate(questions):
        samples.append({"source": q.source, "lang": q.lang, "question": q.text, "reference": q.reference,
                        "before": results["before"]["answers"][i].text,
                        "after": results["after"]["answers"][i].text,
                        "after_stopped": results["after"]["answers"][i].stopped})
    return {
        "model": str(adapter.resolve()),
        "kind": "adapter" if is_adapter else "model",
        "base_model": info.get("base_model"),
        "bundle": {"path": str(opened.path), "manifest_id": opened.manifest.id},
        "identity_target": {"name": identity.name, "author": identity.author},
        "max_new_tokens": max_new_tokens,
        "identity": blocks,
        "maker_mentions": {when: maker_scores(results[when]["answers"]) for when in ("before", "after")},
        "eos_rate": {when: _rate([a.stopped for a in results[when]["answers"]]) for when in ("before", "after")},
        "general_loss": {"chat": loss_block("chat"), "plain": loss_block("plain")},
        "answers": samples,
    }


def _fmt(value: Any, percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.0f}%" if percent else f"{value:.4f}"


def print_table(result: dict[str, Any], console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    target = result["identity_target"]
    table = Table(title=f"identity check: {target['name'].get('en') or ''} / {target['author'].get('en') or ''}")
    table.add_column("metric")
    table.add_column("n", justify="right")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    for key, label in (("train", "trained identity questions"), ("val", "val identity questions"),
                       ("held_out", "held-out paraphrases")):
        block = result["identity"][key]
        if not block["questions"]:
            continue
        for metric, what in (("hit_rate", "name or author"), ("both_rate", "name and author")):
            table.add_row(f"{label}: {what}", str(block["questions"]), _fmt(block["before"][metric], True),
                          _fmt(block["after"][metric], True))
        for lang in ("zh", "en"):
            if lang in block["after"]["by_lang"]:
                table.add_row(f"  {lang}", "", _fmt(block["before"]["by_lang"].get(lang), True),
                              _fmt(block["after"]["by_lang"][lang], True))
    makers = result["maker_mentions"]
    table.add_row("answers naming a known maker/model", "", _fmt(makers["before"]["rate"], True),
                  _fmt(makers["after"]["rate"], True))
    table.add_row("answers ending at end-of-turn", "", _fmt(result["eos_rate"]["before"], True),
                  _fmt(result["eos_rate"]["after"], True))
    for key, label in (("chat", "general loss, chat (assistant tokens)"), ("plain", "general loss, plain text")):
        block = result["general_loss"][key]
        table.add_row(label, str(block["records"]), _fmt(block["before"]), _fmt(block["after"]))
    console.print(table)
    change = result["general_loss"]["plain"]["change"]
    if change is not None:
        console.print(f"plain-text general loss change: {100 * change:+.1f}%")


def write_json(result: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


__all__ = ["HELD_OUT", "MAKERS", "evaluate_trained", "print_table", "write_json", "normalise_question"]
