"""What the language filter drops shows per source, with examples, in the stats and the report."""
from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from curate.pipeline import build
from curate.stats import collect_stats
from curate.stats_cli import stats_command
from schemas.recipe import load_recipe
from tests.curate_helpers import general_rows, make_project, read_jsonl, write_jsonl

FOREIGN = [
    {"instruction": "Sawubona, ngicela ungitshele ukuthi ungubani futhi wenzani lapha namhlanje?",
     "input": "", "output": "Ngiyabonga ngombuzo wakho, ngingumsizi futhi ngilapha ukukusiza namuhla."},
    {"instruction": "東京について教えてください。", "input": "",
     "output": "東京は日本の首都で、たくさんの人が住んでいます。電車がとても便利です。"},
]


def _project(tmp_path: Path) -> Path:
    recipe = make_project(tmp_path, templates=False, recipe_extra={
        "sources": [{"path": "general/zh.jsonl", "kind": "general", "languages": ["zh"]},
                    {"path": "general/en.jsonl", "kind": "general", "languages": ["en"]},
                    {"path": "domain/en.jsonl", "kind": "domain", "languages": ["en"]}],
        "mix": {"ratio": "1:2"}})
    write_jsonl(tmp_path / "domain" / "en.jsonl", general_rows("en", 10, start=100) + FOREIGN)
    return recipe


def test_language_rejects_per_source_with_examples(tmp_path: Path) -> None:
    result = build(load_recipe(_project(tmp_path)), workers=1)
    version = result.version_dir
    dropped = [r for r in read_jsonl(version / "rejects.jsonl") if r["stage"] == "language"]
    assert len(dropped) == 2 and all(r["source"] == "domain/en.jsonl" for r in dropped)
    assert {r["reason"] for r in dropped} <= {"wrong_language", "language_unsure"}
    assert "ja" in {r["lang"] for r in dropped}

    per_source = collect_stats(version)["rejects"]["language_by_source"]
    assert list(per_source) == ["domain/en.jsonl"]
    assert per_source["domain/en.jsonl"]["rejected"] == 2
    assert sum(per_source["domain/en.jsonl"]["languages"].values()) == 2
    assert "ja" in per_source["domain/en.jsonl"]["languages"]

    html = (version / "report.html").read_text(encoding="utf-8")
    assert "Dropped by the language filter, per source" in html
    assert "東京について教えてください" in html and "Sawubona" in html
    assert "language_by_source" in html  # the count is a figure tied to the stats

    out = CliRunner().invoke(stats_command, [str(version)])
    assert out.exit_code == 0 and "Dropped by the language filter" in out.output and "domain/en.jsonl" in out.output
