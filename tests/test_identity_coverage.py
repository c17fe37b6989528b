"""Identity coverage near the top of `curate stats` and the report, with warnings that predict trouble.

Small hand-built bundles trigger each warning; the shipped recipes, built into tmp_path, raise none.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from _bundle_factory import IDENTITY, record, write_bundle
from curate.identity_coverage import IdentityTally, identity_terms
from curate.report import write_report
from curate.stats import collect_stats
from curate.stats_cli import stats_command

ROOT = Path(__file__).resolve().parents[1]
COVERAGE = {"identity_language_imbalance", "few_name_answers", "few_author_answers", "name_question_author_answer"}


def codes(stats: dict) -> set[str]:
    return {w["code"] for w in stats["warnings"]}


def messages(stats: dict, code: str) -> list[str]:
    return [w["message"] for w in stats["warnings"] if w["code"] == code]


def ident(start: int, count: int, lang: str, question: str, answer: str) -> list:
    """`count` identity records in one language; the answer may use {i} to stay distinct."""
    return [record(f"identity:{i}", f"{question} #{i}", answer.format(i=i), kind="identity", lang=lang)
            for i in range(start, start + count)]


def good(start: int, count: int, lang: str) -> list:
    if lang == "zh":
        return ident(start, count, "zh", "你是谁？", "我是小智，由星河实验室开发。（{i}）")
    return ident(start, count, "en", "Who are you?", "I am Zhi, made by Galaxy Lab. ({i})")


def general(count: int) -> list:
    return [record(f"general.jsonl:{i}", f"General question {i}?", f"General answer number {i}.",
                   lang="zh" if i % 2 else "en") for i in range(1, count + 1)]


def stats_of(tmp_path: Path, records: list, identity: dict | None = IDENTITY, val_every: int = 10) -> dict:
    write_bundle(tmp_path / "v0001", records + general(4 * len(records)), rejects=[], identity=identity,
                 val_every=val_every)
    return collect_stats(tmp_path / "v0001")


# ---------------------------------------------------------------- the shipped recipes

@pytest.mark.parametrize("recipe", ["identity.yaml", "demo_gemma.yaml"])
def test_shipped_recipes_raise_no_warning(recipe: str, tmp_path: Path) -> None:
    from curate.pipeline import build
    from schemas.recipe import load_recipe

    version = build(load_recipe(ROOT / "recipes" / recipe), tmp_path).version_dir
    stats = collect_stats(version)
    assert stats["warnings"] == []
    ident = stats["identity"]
    assert ident["languages"] == ["en", "zh"]
    assert set(ident["stating"]) == {"en", "zh"}
    for row in ident["stating"].values():
        assert row["name_share"] == 1.0 and row["author_share"] > 0.5  # the demo's answers all state both
    assert ident["name_asked_not_stated"] == {"records": 0, "examples": []}
    assert ident["name_asked_author_only"] == {"records": 0, "examples": []}
    html = (version / "report.html").read_text(encoding="utf-8")
    assert 'id="identity"' in html and "answers stating the name" in html


# ---------------------------------------------------------------- figures

def test_stating_shares_match_any_spelling_case_insensitive(tmp_path: Path) -> None:
    recs = good(1, 10, "en")
    recs += ident(11, 10, "zh", "你叫什么？", "我是ZHI。（{i}）")  # the en spelling, other case, in a zh answer
    recs += ident(21, 10, "zh", "你好", "你好，我是Zhivago。（{i}）")  # not the name: a longer Latin word
    stats = stats_of(tmp_path, recs)
    stating = stats["identity"]["stating"]
    assert stating["en"] == {"records": 10, "name": 10, "author": 10, "name_share": 1.0, "author_share": 1.0}
    assert stating["zh"] == {"records": 20, "name": 10, "author": 0, "name_share": 0.5, "author_share": 0.0}


def test_name_questions_answered_without_the_name(tmp_path: Path) -> None:
    recs = good(1, 20, "en") + good(101, 20, "zh")
    recs += ident(201, 3, "en", "What is your name?", "I am a helpful assistant. ({i})")
    recs += ident(301, 7, "en", "Who are you?", "I was built by galaxy lab. ({i})")
    recs += ident(401, 2, "en", "Who made you?", "Galaxy Lab made me. ({i})")  # asks for the author: fine
    stats = stats_of(tmp_path, recs, val_every=10_000)
    figures = stats["identity"]
    assert figures["name_asked_not_stated"]["records"] == 10
    only = figures["name_asked_author_only"]
    assert only["records"] == 7
    assert [e["id"] for e in only["examples"]] == [f"identity:{i}" for i in range(301, 306)]
    assert only["examples"][0] == {"id": "identity:301", "question": "Who are you? #301",
                                   "answer": "I was built by galaxy lab. (301)"}
    assert [e["id"] for e in figures["name_asked_not_stated"]["examples"]] == [
        "identity:201", "identity:202", "identity:203", "identity:301", "identity:302"]
    assert "name_question_author_answer" in codes(stats)
    message = messages(stats, "name_question_author_answer")[0]
    assert "7 identity records" in message and "identity:301" in message


def test_an_author_holding_the_name_does_not_state_the_name(tmp_path: Path) -> None:
    identity = {"name": {"en": "Grace"}, "author": {"en": "Grace Labs"}, "templates": 1}
    recs = ident(1, 12, "en", "Who are you?", "I am Grace, from Grace Labs. ({i})")
    recs += ident(21, 1, "en", "Introduce yourself.", "I was made by Grace Labs.")
    figures = stats_of(tmp_path, recs, identity=identity)["identity"]
    assert figures["stating"]["en"]["name"] == 12
    assert figures["name_asked_author_only"]["records"] == 1


# ---------------------------------------------------------------- warnings

def test_language_imbalance(tmp_path: Path) -> None:
    stats = stats_of(tmp_path / "a", good(1, 40, "en") + good(101, 19, "zh"))
    assert messages(stats, "identity_language_imbalance") == [
        "'zh' has 19 identity records, fewer than half of 'en' (40)"]
    assert "identity_language_imbalance" not in codes(stats_of(tmp_path / "b", good(1, 40, "en") + good(101, 20, "zh")))


def test_a_recipe_language_without_identity_records_is_imbalance(tmp_path: Path) -> None:
    identity = dict(IDENTITY, languages=["en", "ja", "zh"])
    stats = stats_of(tmp_path, good(1, 30, "en") + good(101, 30, "zh"), identity=identity)
    assert stats["identity"]["languages"] == ["en", "ja", "zh"]
    assert messages(stats, "identity_language_imbalance") == [
        "'ja' has 0 identity records, fewer than half of 'en' (30)"]


def test_few_name_answers(tmp_path: Path) -> None:
    recs = good(1, 30, "zh") + good(101, 9, "en")
    recs += ident(201, 11, "en", "Can you code?", "Yes, Galaxy Lab taught me to code. ({i})")  # 9 of 20 state the name
    stats = stats_of(tmp_path, recs)
    assert codes(stats) & COVERAGE == {"few_name_answers"}
    assert messages(stats, "few_name_answers") == [
        "only 9 of 20 'en' identity answers (45%) state the name (Zhi / 小智); want at least 50%"]


def test_few_author_answers(tmp_path: Path) -> None:
    recs = good(1, 30, "en") + good(101, 5, "zh")
    recs += ident(201, 15, "zh", "你能写代码吗？", "能，小智会写代码。（{i}）")  # 5 of 20 state the author
    stats = stats_of(tmp_path / "a", recs)
    assert codes(stats) & COVERAGE == {"few_author_answers"}
    assert "only 5 of 20 'zh' identity answers (25%) state the author" in messages(stats, "few_author_answers")[0]
    recs = good(1, 30, "en") + good(101, 6, "zh") + ident(201, 14, "zh", "你能写代码吗？", "能，小智会写代码。（{i}）")
    assert "few_author_answers" not in codes(stats_of(tmp_path / "b", recs))  # 30% is enough


def test_share_warnings_wait_for_enough_records(tmp_path: Path) -> None:
    recs = good(1, 40, "en") + ident(101, 9, "zh", "你能做什么？", "我能回答问题。（{i}）")
    stats = stats_of(tmp_path, recs)
    assert not {"few_name_answers", "few_author_answers"} & codes(stats)
    assert "identity_language_imbalance" in codes(stats)  # 9 zh records is what to fix first


def test_clean_identity_raises_no_coverage_warning(tmp_path: Path) -> None:
    assert not codes(stats_of(tmp_path, good(1, 30, "en") + good(101, 30, "zh"))) & COVERAGE


def test_merged_tallies_equal_one_pass() -> None:
    terms = identity_terms(IDENTITY)
    rows = [("train", r) for r in good(1, 4, "en") + ident(11, 6, "en", "Who are you?", "Galaxy Lab. ({i})")]
    whole, first, second = IdentityTally(terms), IdentityTally(terms), IdentityTally(terms)
    for n, (split, rec) in enumerate(rows):
        data = rec.to_json_dict()
        for tally in (whole, first if n < 7 else second):
            tally.add(split, data["meta"]["lang"], data["meta"]["id"], data["messages"])
    first.merge(second)
    assert vars(first) == vars(whole)
    assert whole.author_not_name.records == 6 and len(whole.author_not_name.examples) == 5


def test_no_import_cycle() -> None:
    code = "import sys, curate.identity_coverage; print('curate.stats' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------- where it is shown

def _bad_bundle(tmp_path: Path) -> Path:
    recs = good(1, 30, "en") + good(101, 12, "zh")
    recs += ident(201, 2, "zh", "你是谁？", "我由星河实验室开发。（{i}）")
    write_bundle(tmp_path / "v0001", recs + general(4 * len(recs)), rejects=[])
    return tmp_path / "v0001"


def test_text_output_puts_identity_right_after_the_counts(tmp_path: Path) -> None:
    bundle = _bad_bundle(tmp_path)
    group = click.Group("curate", commands={"stats": stats_command})
    result = CliRunner().invoke(group, ["stats", str(bundle)], terminal_width=200)
    assert result.exit_code == 0, result.output
    out = result.output
    at = {text: out.index(text) for text in ("Counts", "Identity coverage", "Domain:general ratio",
                                             "Records by kind", "Conversation length", "Rejects by stage")}
    assert at["Counts"] < at["Identity coverage"] < min(v for k, v in at.items() if k not in ("Counts",
                                                                                               "Identity coverage"))
    assert "name questions answered with the author but not the name: 2" in out
    assert "identity:201" in out
    assert "[name_question_author_answer]" in out and "[identity_language_imbalance]" in out
    as_json = json.loads(CliRunner().invoke(group, ["stats", str(bundle), "--json"]).output)
    assert as_json["identity"]["name_asked_author_only"]["records"] == 2


def test_html_puts_the_identity_section_after_the_summary(tmp_path: Path) -> None:
    bundle = _bad_bundle(tmp_path)
    write_report(bundle, tmp_path / "report.html")
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    sections = [html.index(f'<section id="{name}"') for name in ("overview", "identity")]
    others = [html.index(f'<section id="{name}"') for name in
              ("ratio", "records", "lengths", "rejects", "near-duplicates", "repeated")]
    assert html.index('id="warnings"') < sections[0] < sections[1] < min(others)
    warnings = html[html.index('id="warnings"'):sections[0]]
    assert "name_question_author_answer" in warnings and "identity_language_imbalance" in warnings
    section = html[sections[1]:min(others)]
    assert "Name questions answered with the author but not the name" in section
    assert "identity:201" in section and "我由星河实验室开发。（201）" in section
