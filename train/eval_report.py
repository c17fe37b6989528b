"""`train eval`'s figures from its answers: strict identity verdicts per set and language, the lenient
rates beside them, maker mentions, general questions; and the table people read."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from schemas.identity_intent import named_makers
from train.eval_questions import Question
from train.identity_verdict import Terms, Verdict, judge

SETS = (("train", "trained identity questions"), ("val", "val identity questions"),
        ("held_out", "held-out paraphrases"))


def rate(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def verdicts_for(terms: Terms, questions: list[Question], texts: list[str]) -> list[Verdict]:
    return [judge(text, q.needs, q.lang, terms) for q, text in zip(questions, texts)]


def identity_scores(questions: list[Question], verdicts: list[Verdict]) -> dict[str, Any]:
    """Strict correct rate over the questions that need something (per language too), swap and maker-claim
    rates over all, and the old lenient rates (name or author mentioned) for comparison."""
    scored = [i for i, q in enumerate(questions) if q.needs]
    out: dict[str, Any] = {
        "scored": len(scored),
        "correct_rate": rate([verdicts[i].correct for i in scored]),
        "correct_by_lang": {},
        "swap_rate": rate([v.swap for v in verdicts]),
        "maker_claim_rate": rate([any(w.startswith("claims_maker") for w in v.wrong) for v in verdicts]),
        "hit_rate": rate([v.lenient_hit for v in verdicts]),
        "name_rate": rate([v.has_name for v in verdicts]),
        "author_rate": rate([v.has_author for v in verdicts]),
        "both_rate": rate([v.has_name and v.has_author for v in verdicts]),
        "by_lang": {},
    }
    for lang in ("zh", "en"):
        idx = [i for i, q in enumerate(questions) if q.lang == lang]
        if idx:
            out["by_lang"][lang] = rate([verdicts[i].lenient_hit for i in idx])
        strict = [i for i in scored if questions[i].lang == lang]
        if strict:
            out["correct_by_lang"][lang] = rate([verdicts[i].correct for i in strict])
    return out


def answered(question: Question, text: str) -> bool:
    folded = text.casefold()
    return any(expect.casefold() in folded for expect in question.expect)


def maker_scores(texts: list[str]) -> dict[str, Any]:
    found = [named_makers(text) for text in texts]
    counts: dict[str, int] = {}
    for names in found:
        for name in names:
            counts[name] = counts.get(name, 0) + 1
    return {"rate": rate([bool(names) for names in found]), "answers": sum(1 for f in found if f), "by_maker": counts}


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
    for column, justify in (("metric", "left"), ("n", "right"), ("before", "right"), ("after", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for key, label in SETS:
        block = result["identity"][key]
        if not block["questions"]:
            continue
        before, after = block["before"], block["after"]
        table.add_row(f"{label}: correct", str(after["scored"]), _fmt(before["correct_rate"], True),
                      _fmt(after["correct_rate"], True))
        for lang in ("zh", "en"):
            if lang in after["correct_by_lang"]:
                table.add_row(f"  {lang}", "", _fmt(before["correct_by_lang"].get(lang), True),
                              _fmt(after["correct_by_lang"][lang], True))
        for metric, what in (("swap_rate", "swapped name/author"), ("hit_rate", "name or author (lenient)"),
                             ("both_rate", "name and author")):
            table.add_row(f"  {what}", str(block["questions"]), _fmt(before[metric], True), _fmt(after[metric], True))
    makers = result["maker_mentions"]
    table.add_row("answers naming a known maker/model", "", _fmt(makers["before"]["rate"], True),
                  _fmt(makers["after"]["rate"], True))
    table.add_row("answers ending at end-of-turn", "", _fmt(result["eos_rate"]["before"], True),
                  _fmt(result["eos_rate"]["after"], True))
    general = result["general_questions"]
    table.add_row("general questions answered", str(general["questions"]), _fmt(general["before"], True),
                  _fmt(general["after"], True))
    for key, label in (("chat", "general loss, chat (assistant tokens)"), ("plain", "general loss, plain text")):
        block = result["general_loss"][key]
        table.add_row(label, str(block["records"]), _fmt(block["before"]), _fmt(block["after"]))
    console.print(table)
    headline = result["headline"]
    console.print("correct after training: " + ", ".join(
        f"{key} {_fmt(headline[key], True)}" for key in ("train", "val", "held_out")) +
        f"; swaps {_fmt(headline['swap_rate'], True)}")
    change = result["general_loss"]["plain"]["change"]
    if change is not None:
        console.print(f"plain-text general loss change: {100 * change:+.1f}%")


def write_json(result: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


__all__ = ["SETS", "answered", "identity_scores", "maker_scores", "print_table", "rate", "verdicts_for", "write_json"]
