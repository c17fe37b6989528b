"""Hostile templates and malformed sources, through `curate build`: each finishes in seconds, rejects
only the record at fault (naming its physical line), loses nothing and prints no traceback."""
import json
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from curate.cli import main
from tests.curate_helpers import general_rows, make_project, read_jsonl, write_jsonl

# The shipped templates of make_project are 4 per language; a hostile one is appended to the en file.
HOSTILE_LINE = 5


def _run(recipe: Path, *args: str):
    started = time.perf_counter()
    result = CliRunner().invoke(main, ["build", str(recipe), *args])
    elapsed = time.perf_counter() - started
    assert "Traceback" not in result.output
    return result, elapsed


def _build_ok(recipe: Path) -> Path:
    result, elapsed = _run(recipe)
    assert result.exit_code == 0 and result.exception is None, result.output
    assert elapsed < 15, elapsed
    version = Path(result.stdout.strip().splitlines()[-1])
    _assert_nothing_lost(version)
    return version


def _assert_nothing_lost(version: Path) -> None:
    """Every record read is in train, val or rejects exactly once, and the manifest's counts add up."""
    kept = [r for name in ("train.jsonl", "val.jsonl") for r in read_jsonl(version / name)]
    rejects = read_jsonl(version / "rejects.jsonl")
    ids = Counter(r["meta"]["id"] for r in kept) + Counter(r["id"] for r in rejects)
    assert all(n == 1 for n in ids.values()), [i for i, n in ids.items() if n > 1]
    manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    counts = manifest["counts"]
    assert len(ids) == counts["read"] == counts["kept"] + counts["rejected"] + counts["mixed_out"]
    for source in manifest["sources"]:
        assert source["rows"] - source["sampled_out"] == source["kept"] + source["rejected"] + source["mixed_out"]


def _rejects(version: Path, source: str, stage: str | None = None) -> list[dict]:
    return [r for r in read_jsonl(version / "rejects.jsonl")
            if r["source"] == source and r["stage"] != "mix" and (stage is None or r["stage"] == stage)]


def _meta(version: Path, record_id: str) -> dict:
    """The meta of a record that passed validation, kept or left out by the mix."""
    for name in ("train.jsonl", "val.jsonl"):
        for r in read_jsonl(version / name):
            if r["meta"]["id"] == record_id:
                return r["meta"]
    for r in read_jsonl(version / "rejects.jsonl"):
        if r["id"] == record_id and isinstance(r.get("raw"), dict) and "meta" in r["raw"]:
            return r["raw"]["meta"]
    raise AssertionError(f"{record_id} not found")


def _add_source(recipe: Path, path: str) -> None:
    text = recipe.read_text(encoding="utf-8")
    recipe.write_text(text.replace("sources:\n", f"sources:\n- path: {path}\n  kind: general\n", 1), encoding="utf-8")


def _with_template(tmp_path: Path, query: str, response: str) -> Path:
    recipe = make_project(tmp_path)
    path = tmp_path / "identity" / "en.jsonl"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"query": query, "response": response, "tag": "en"}) + "\n")
    return recipe


# --- templates ---------------------------------------------------------------------------------

LIMITED = [
    ("nested_loops", "{% for a in range(10**6) %}{% for b in range(10**6) %}x{% endfor %}{% endfor %}", "range()"),
    ("nested_loops_counted", "{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}",
     "loop iterations"),
    ("string_times_huge", "{{ 'a' * 10**10 }}", "'*'"),
    ("power_tower", "{{ 10**(10**10) }}", "integer"),
    ("recursive_macro", "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(1) }}", "nested"),
    ("range_1e9", "{% for i in range(10**9) %}{{ i }}{% endfor %}", "range()"),
    ("huge_output", "{% for i in range(10**5) %}xxxxxxxxxx{% endfor %}", "renders more than 65536"),
    ("exponential_macro", "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(25) }}",
     "longer than"),
    ("format_width", "{{ '{:>999999999}'.format(name) }}", "width"),
    ("filter_width", "{{ name|center(10**9) }}", "width"),
    ("doubling_concat", "{% set ns = namespace(s=name) %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
     "{% endfor %}{{ ns.s }}", "'~'"),
    ("list_times_huge", "{{ [name] * 10**7 }}", "'*'"),
]


@pytest.mark.parametrize("case,answer,says", LIMITED, ids=[c[0] for c in LIMITED])
def test_template_over_a_limit_rejects_only_its_record(tmp_path, case, answer, says):
    version = _build_ok(_with_template(tmp_path, "Who are you, really?", "I am {{ name }}. " + answer))
    [reject] = _rejects(version, "identity/en.jsonl")
    assert (reject["stage"], reject["reason"], reject["line"]) == ("render", "template_limit", HOSTILE_LINE)
    assert says in reject["message"], reject["message"]
    assert reject["id"] == f"identity/en.jsonl:{HOSTILE_LINE}"
    assert reject["raw"]["messages"][-1]["content"].endswith(answer)  # the template as written, kept whole
    identity = [r for name in ("train.jsonl", "val.jsonl") for r in read_jsonl(version / name)
                if r["meta"]["kind"] == "identity"]
    assert len(identity) == 8  # the other templates rendered as usual


def test_power_is_left_associative_and_harmless(tmp_path):
    """jinja2 reads 10**10**10 as (10**10)**10: a 101-digit number, rendered, not a hang."""
    version = _build_ok(_with_template(tmp_path, "How big is it?", "{{ name }} says {{ 10**10**10 }}"))
    assert not _rejects(version, "identity/en.jsonl")
    answers = [r["messages"][-1]["content"] for name in ("train.jsonl", "val.jsonl")
               for r in read_jsonl(version / name)]
    assert "Grace says 1" + "0" * 100 in answers


@pytest.mark.parametrize("query,response,reason", [
    ("Who are you?", "{{ '' }}", "empty_answer"),
    ("Who are you?", "{{ '   ' }}\n", "empty_answer"),
    ("{{ '' }}", "I am {{ name }}.", "empty_question"),
    ("{{ ' ' * 3 }}", "I am {{ name }}.", "empty_question"),
])
def test_template_rendering_empty_is_rejected(tmp_path, query, response, reason):
    version = _build_ok(_with_template(tmp_path, query, response))
    [reject] = _rejects(version, "identity/en.jsonl")
    assert (reject["stage"], reject["reason"], reject["line"]) == ("render", reason, HOSTILE_LINE)


@pytest.mark.parametrize("answer,error", [
    ("{{ 1 / 0 }}", "ZeroDivisionError"),
    ("{{ nickname }}", "'nickname' is undefined"),
    ("{{ [].append(1) }}", "unsafe"),
    ("{{ lipsum(5) }}", "'lipsum' is undefined"),
])
def test_template_bugs_stop_the_build_with_one_line(tmp_path, answer, error):
    """A template that is wrong (not merely expensive) is the author's to fix: one line naming it."""
    result, _ = _run(_with_template(tmp_path, "Who are you?", answer))
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith(f"Error: identity/en.jsonl:{HOSTILE_LINE}: template error") and error in lines[-1]
    assert not any(p.name.startswith("v") for p in (tmp_path / "bundle").glob("*"))


# --- empty user turns in data ---------------------------------------------------------------------

@pytest.mark.parametrize("row", [
    {"messages": [{"role": "user", "content": "  \n\t"}, {"role": "assistant", "content": "An answer to nothing."}]},
    {"messages": [{"role": "user", "content": "What is two plus two?"}, {"role": "assistant", "content": "Four."},
                  {"role": "user", "content": ""}, {"role": "assistant", "content": "An answer to nothing."}]},
    {"instruction": "   ", "input": "", "output": "An answer to a blank instruction."},
    {"query": "\u3000", "response": "An answer to an ideographic space."},
    {"conversations": [{"from": "human", "value": " "}, {"from": "gpt", "value": "An answer to nothing."}]},
], ids=["messages", "messages_second_turn", "alpaca", "query_response", "sharegpt"])
def test_blank_user_turn_is_rejected(tmp_path, row):
    recipe = make_project(tmp_path)
    write_jsonl(tmp_path / "general" / "blank.jsonl", general_rows("en", 3, start=500) + [row])
    _add_source(recipe, "general/blank.jsonl")
    version = _build_ok(recipe)
    [reject] = _rejects(version, "general/blank.jsonl")
    assert (reject["stage"], reject["reason"], reject["line"]) == ("validate", "empty_question", 4)
    assert reject["raw"] == row and "index" not in reject  # JSONL: no index


# --- CSV ----------------------------------------------------------------------------------------

def _csv_rows(start: int, count: int) -> list[bytes]:
    return [f'"{r["instruction"]}","{r["output"]}"\n'.encode() for r in general_rows("en", count, start=start)]


@pytest.mark.parametrize("bad,reason,says", [
    (b'"Too many fields here?","answer","surplus"\n', "bad_csv", "row has 3 fields, the header has 2"),
    (b'"An unterminated quote,"answer\n', "bad_csv", "malformed CSV"),
    (b'A stray "quote" mid field,"answer"x\n', "bad_csv", "malformed CSV"),
    (b'"Bytes \xff\xfe that are not UTF-8","answer"\n', "bad_utf8", "not UTF-8 at byte 7"),
    (b'"Latin-1 caf\xe9 question","r\xe9ponse"\n', "bad_utf8", "not UTF-8"),
], ids=["extra_fields", "unterminated_quote", "junk_after_quote", "undecodable", "latin1"])
def test_malformed_csv_row_rejects_that_row_only(tmp_path, bad, reason, says):
    recipe = make_project(tmp_path)
    before, after = _csv_rows(600, 3), _csv_rows(700, 3)
    (tmp_path / "general" / "t.csv").write_bytes(b"instruction,output\n" + b"".join(before) + bad + b"".join(after))
    _add_source(recipe, "general/t.csv")
    version = _build_ok(recipe)
    [reject] = _rejects(version, "general/t.csv")
    assert (reject["stage"], reject["reason"], reject["line"], reject["index"]) == ("read", reason, 5, 4)
    assert says in reject["message"]
    assert "\ufffd" not in (version / "train.jsonl").read_text(encoding="utf-8")
    # the rows after the bad one are read, at their own lines
    for number, line in ((5, 6), (6, 7), (7, 8)):
        meta = _meta(version, f"general/t.csv:{line}")
        assert (meta["line"], meta["index"]) == (line, number)


def test_csv_lines_are_physical_across_quoted_newlines(tmp_path):
    recipe = make_project(tmp_path)
    (tmp_path / "general" / "q.csv").write_bytes(
        b"\xef\xbb\xbfinstruction,output\r\n"
        b'"A question that\r\nruns over\r\nthree lines?","An answer that is long enough."\r\n'
        b"\r\n"
        b'"Second question, single line?","A second answer,\non two lines."\r\n'
        b'"Third question without an answer",\r\n')
    _add_source(recipe, "general/q.csv")
    version = _build_ok(recipe)
    first, second = _meta(version, "general/q.csv:2"), _meta(version, "general/q.csv:6")
    assert (first["line"], first["index"], second["line"], second["index"]) == (2, 1, 6, 2)
    [reject] = _rejects(version, "general/q.csv")
    assert (reject["reason"], reject["line"], reject["index"]) == ("missing_field", 8, 3)


# --- JSON arrays and JSONL ----------------------------------------------------------------------

def test_json_array_records_carry_physical_line_and_index(tmp_path):
    recipe = make_project(tmp_path)
    good = general_rows("en", 3, start=800)
    text = ('[\n'
            f'  {json.dumps(good[0])},\n'
            '\n'
            '  {\n    "instruction": "No output here",\n    "input": ""\n  },\n'
            f'  {json.dumps(good[1])}, {json.dumps(good[2])},\n'
            '  "not an object"\n'
            ']\n')
    (tmp_path / "general" / "arr.json").write_text(text, encoding="utf-8")
    _add_source(recipe, "general/arr.json")
    version = _build_ok(recipe)
    first = _meta(version, "general/arr.json:2")
    assert (first["line"], first["index"]) == (2, 1)
    # two records start on line 8: their ids tell them apart by index
    assert (_meta(version, "general/arr.json:8#3")["index"], _meta(version, "general/arr.json:8#4")["line"]) == (3, 8)
    rejects = {r["reason"]: r for r in _rejects(version, "general/arr.json")}
    assert (rejects["missing_field"]["line"], rejects["missing_field"]["index"]) == (4, 2)
    assert (rejects["not_an_object"]["line"], rejects["not_an_object"]["index"]) == (9, 5)


def test_one_line_json_array_gives_distinct_ids(tmp_path):
    recipe = make_project(tmp_path)
    (tmp_path / "general" / "flat.json").write_text(json.dumps(general_rows("en", 4, start=900)), encoding="utf-8")
    _add_source(recipe, "general/flat.json")
    version = _build_ok(recipe)
    assert [_meta(version, f"general/flat.json:1#{i}")["index"] for i in range(1, 5)] == [1, 2, 3, 4]


def test_undecodable_bytes_in_a_json_array_reject_that_element(tmp_path):
    recipe = make_project(tmp_path)
    good = general_rows("en", 2, start=950)
    (tmp_path / "general" / "bytes.json").write_bytes(
        b"[\n" + json.dumps(good[0]).encode() + b",\n"
        b'{"instruction": "Caf\xe9?", "output": "Yes."},\n' + json.dumps(good[1]).encode() + b"\n]\n")
    _add_source(recipe, "general/bytes.json")
    version = _build_ok(recipe)
    [reject] = _rejects(version, "general/bytes.json")
    assert (reject["reason"], reject["line"], reject["index"]) == ("bad_utf8", 3, 2)
    assert _meta(version, "general/bytes.json:4")["index"] == 3


def test_jsonl_undecodable_bytes_and_no_index(tmp_path):
    recipe = make_project(tmp_path)
    rows = [json.dumps(r).encode() for r in general_rows("en", 3, start=1000)]
    (tmp_path / "general" / "b.jsonl").write_bytes(
        rows[0] + b"\n\n" + b'{"instruction": "Bad \xc3\x28 bytes", "output": "x"}\n' + rows[1] + b"\r\n" + rows[2])
    _add_source(recipe, "general/b.jsonl")
    version = _build_ok(recipe)
    [reject] = _rejects(version, "general/b.jsonl")
    assert (reject["stage"], reject["reason"], reject["line"]) == ("read", "bad_utf8", 3)
    assert "index" not in reject
    assert "index" not in _meta(version, "general/b.jsonl:4")  # JSONL bundles look as they always did


def test_hostile_build_is_deterministic(tmp_path):
    recipe = _with_template(tmp_path, "Who are you, really?", "{% for i in range(10**5) %}xxxxxxxxxx{% endfor %}")
    (tmp_path / "general" / "t.csv").write_bytes(
        b"instruction,output\n" + b"".join(_csv_rows(600, 2)) + b'"x","y","z"\n' + b'"bad \xff",""\n')
    _add_source(recipe, "general/t.csv")
    first, second = _build_ok(recipe), _build_ok(recipe)
    for name in ("train.jsonl", "val.jsonl", "rejects.jsonl", "manifest.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
