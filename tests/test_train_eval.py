"""`train eval`: strict identity verdicts before/after, held-out paraphrases, maker mentions, EOS, general
questions and loss. The scorer itself is tested on hand-written answers in test_identity_verdict.py."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from schemas.record import Record
from tests.conftest import IDENTITY, identity_records, make_record, write_bundle
from train.cli import main
from train.eval_questions import HELD_OUT, held_out_questions, normalise_question, question_lang
from train.evaluate import Identity


def test_held_out_paraphrases_are_not_the_shipped_templates():
    """None of the built-in paraphrases is a question the shipped recipe trains on (after normalisation)."""
    root = Path(__file__).resolve().parents[1] / "recipes"
    shipped = {normalise_question(json.loads(line)["query"]) for file in [*root.glob("identity/*.jsonl"),
                                                                         *root.glob("demo/*.jsonl")]
               for line in file.read_text(encoding="utf-8").splitlines() if line.strip()}
    assert len(shipped) > 150 and len(HELD_OUT["zh"]) >= 20 and len(HELD_OUT["en"]) >= 20
    ours = [normalise_question(q) for qs in HELD_OUT.values() for q, _needs in qs]
    assert len(set(ours)) == len(ours)
    assert not shipped & set(ours)


def test_paraphrases_found_in_train_are_skipped():
    train = [Record.model_validate(make_record([("  what is YOUR name ", "Grace")], "identity", "i:1"))]
    kept, skipped = held_out_questions(train, None)
    assert skipped == ["What is your name?"]
    assert "What is your name?" not in [q.text for q in kept]
    assert len(kept) == sum(len(v) for v in HELD_OUT.values()) - 1


def test_lenient_hits_and_language():
    ident = Identity({"zh": "小格", "en": "Grace"}, {"zh": "唐寅", "en": "Tang Yin"})
    assert ident.hits("I'm grace, built by Tang Yin.", "en") == (True, True)
    assert ident.hits("我是小格。", "zh") == (True, False)
    assert ident.hits("我是Grace。", "zh") == (True, False)  # either language's spelling is the name
    assert question_lang("你是谁？") == "zh" and question_lang("Who are you?") == "en"


@pytest.mark.slow  # shares the trained adapter of the slow tests
def test_eval_needs_identity_in_manifest(tmp_path, trained_adapter):
    adapter, _ = trained_adapter
    bare = write_bundle(tmp_path / "b", identity_records())  # manifest without name/author
    result = CliRunner().invoke(main, ["eval", str(adapter), "--bundle", str(bare)], catch_exceptions=False)
    assert result.exit_code == 2  # bad input (the bundle)
    assert result.stderr.strip().splitlines()[-1].startswith("train: ")
    assert "no identity name/author" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_eval_reports_before_and_after(trained_adapter, tiny_model, tmp_path):
    """After training until every answer is learnt verbatim, the bundle's identity questions are all correct;
    "before" is what the base model itself answers (not a figure: the base is random)."""
    adapter, _ = trained_adapter
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(main, ["eval", str(adapter), "--output", str(out), "--max_new_tokens", "32"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert "held-out paraphrases" in result.stdout and "general loss, plain text" in result.stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["kind"] == "adapter"
    trained = data["identity"]["train"]
    assert trained["questions"] == 8  # every identity question of the train split
    assert trained["after"]["correct_rate"] == 1.0 and trained["after"]["swap_rate"] == 0.0
    assert trained["after"]["hit_rate"] == 1.0 and trained["after"]["both_rate"] == 1.0
    assert data["headline"]["train"] == 1.0
    val = data["identity"]["val"]
    assert val["questions"] == 1 and val["after"]["correct_rate"] == 1.0
    held = data["identity"]["held_out"]
    assert held["questions"] + len(held["skipped"]) == sum(len(v) for v in HELD_OUT.values())
    assert "What is your name?" in held["skipped"] and "Who are you?" not in held["skipped"]
    assert set(held["after"]["by_lang"]) == {"zh", "en"} == set(held["after"]["correct_by_lang"])
    assert held["after"]["scored"] == held["questions"]  # every built-in paraphrase needs name or author
    for answer in data["answers"]:  # every question carries its needs and both verdicts
        assert answer["needs"] and {"correct", "wrong"} <= set(answer["after_verdict"])
    general_qs = data["general_questions"]
    assert general_qs["questions"] == 4 and len(general_qs["answers"]) == 4
    _before_is_the_base_model(tiny_model, data)
    for when in ("before", "after"):
        assert 0.0 <= data["eos_rate"][when] <= 1.0
        assert 0.0 <= data["maker_mentions"][when]["rate"] <= 1.0
    chat, plain = data["general_loss"]["chat"], data["general_loss"]["plain"]
    assert chat["records"] == 1 and chat["after"] < chat["before"]  # the val general record is also trained
    assert plain["before"] > 0 and plain["after"] > 0
    assert plain["change"] == pytest.approx((plain["after"] - plain["before"]) / plain["before"])
    by_question = {a["question"]: a["after"] for a in data["answers"] if a["source"] == "train"}
    assert by_question == dict(IDENTITY)  # every trained answer comes back verbatim
    # default output path: next to the adapter
    again = CliRunner().invoke(main, ["eval", str(adapter), "--max_new_tokens", "4", "--train_questions", "3"],
                               catch_exceptions=False)
    assert again.exit_code == 0 and (adapter.parent / "eval.json").is_file()
    assert json.loads((adapter.parent / "eval.json").read_text(encoding="utf-8"))["identity"]["train"]["questions"] == 3


def _before_is_the_base_model(tiny_model: Path, data: dict) -> None:
    """The "before" answers are the base model's own greedy answers (adapter switched off, nothing else)."""
    from transformers import AutoModelForCausalLM

    from train.eval_questions import Question
    from train.evaluate import generate_answers
    from train.model import load_tokenizer

    base = AutoModelForCausalLM.from_pretrained(str(tiny_model)).eval()
    tokenizer = load_tokenizer(str(tiny_model))
    asked = data["answers"][:4]
    questions = [Question([{"role": "user", "content": a["question"]}], a["lang"], a["source"]) for a in asked]
    answers = generate_answers(base, tokenizer, questions, data["max_new_tokens"])
    assert [a.text for a in answers] == [a["before"] for a in asked]
