"""`curate stats` and `curate diff`: the same figures as tables, JSON or the HTML report.

Every expected failure (missing path, broken bundle, no tokenizer) becomes one ClickException
line; the lead registers these commands on the `curate` group.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import click
from rich.console import Console
from rich.markup import escape as esc
from rich.table import Table

from curate.stats import collect_stats
from curate.stats_inputs import StatsError
from schemas.bundle import BundleError

PCTS = ("p0", "p50", "p90", "p99", "max")


def _clean_errors(fn: Callable[[], Any]) -> Any:
    """Run fn, turning the errors we expect into a one-line ClickException."""
    try:
        return fn()
    except (StatsError, BundleError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None


def _n(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _signed(value: Any) -> str:
    if value is None:
        return ""
    if value == 0:
        return "0"
    return ("+" if value > 0 else "") + _n(value)


IDENTITY_WARNINGS = ("identity_language_imbalance", "few_name_answers", "few_author_answers",
                     "name_question_author_answer", "few_identity", "identity_language_missing", "val_without_identity")
COUNT_ORDER = ("read", "kept", "rejected", "train", "val", "mixed_out", "sampled_out")
TEXT_COLUMNS = {"kinds", "reasons", "languages", "name", "author", "requested", "allowed band", "percentile"}


def _table(title: str, columns: list[str]) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 or column in TEXT_COLUMNS else "right")
    return table


def _dump_json(data: dict[str, Any]) -> None:
    click.echo(json.dumps(data, sort_keys=True, ensure_ascii=False, indent=2))


# ---------------------------------------------------------------- stats

def print_stats(stats: dict[str, Any], console: Console) -> None:
    """The figures a person checks first, one rich table per topic."""
    if stats["bundle"]:
        b = stats["bundle"]
        console.print(f"[bold]{esc(b['name'])}[/] {b['version'] or ''}  id {b['id'][:16]}  ({esc(stats['path'])})")
    else:
        console.print(f"[bold]source file[/] {esc(stats['path'])}")
    keys = [k for k in COUNT_ORDER if k in stats["counts"]] + sorted(set(stats["counts"]) - set(COUNT_ORDER))
    counts = _table("Counts", keys)
    counts.add_row(*[_n(stats["counts"][k]) for k in keys])
    console.print(counts)
    ident = stats["identity"]
    if ident["configured"] or ident["records"]:
        _print_identity(ident, console)
        coverage = [w["code"] for w in stats["warnings"] if w["code"] in IDENTITY_WARNINGS]
        if coverage:
            console.print(f"[yellow]identity warnings[/] {esc(', '.join(coverage))} (see below)", highlight=False)

    r = stats["ratio"]
    ratio = _table("Domain:general ratio (identity counts as domain)",
                   ["requested", "achieved", "domain", "general", "allowed band", "in band"])
    achieved = f"1:{r['achieved_general_per_domain']:.2f}" if r["achieved_general_per_domain"] is not None else "—"
    ratio.add_row(esc(r["requested"] or "—"), achieved, _n(r["domain"]), _n(r["general"]),
                  f"1:{r['band'][0]:g}..1:{r['band'][1]:g}", "yes" if r["in_band"] else "[red]no[/]")
    console.print(ratio)

    rec = stats["records"]
    splits = list(rec["by_split"])
    kinds = _table("Records by kind and split", ["kind", *splits, "total"])
    for kind, per in rec["by_kind_split"].items():
        kinds.add_row(esc(kind), *[_n(per.get(s, 0)) for s in splits], _n(rec["by_kind"][kind]))
    kinds.add_row("[bold]all[/]", *[_n(rec["by_split"][s]) for s in splits], _n(rec["total"]))
    console.print(kinds)
    sources = _table("Records by source", ["source", "kinds", *splits, "total"])
    for name, per in rec["by_source"].items():
        sources.add_row(esc(name), esc(", ".join(per["kinds"])), *[_n(per.get(s, 0)) for s in splits], _n(per["total"]))
    console.print(sources)
    langs = _table("Records by language", ["language", "records", "share"])
    for lang, n in rec["by_language"].items():
        langs.add_row(esc(lang), _n(n), f"{n / rec['total'] * 100:.1f}%" if rec["total"] else "—")
    console.print(langs)

    for unit in ("chars", "tokens"):
        lengths = stats["lengths"][unit]
        if not lengths:
            continue
        table = _table(f"Conversation length ({unit})", ["group", *PCTS])
        table.add_row("all", *[_n(lengths["all"][p]) for p in PCTS])
        for group in ("by_kind", "by_split"):
            for name, pct in lengths[group].items():
                table.add_row(esc(f"{group[3:]}={name}"), *[_n(pct[p]) for p in PCTS])
        console.print(table)
    turns = stats["turns"]
    console.print(f"turns per record: mean {_n(turns['mean'])}, max {_n(turns['max'])}, "
                  + ", ".join(f"{t}: {_n(n)}" for t, n in turns["distribution"][:10]))

    rejects = _table("Rejects by stage", ["stage", "in", "out", "rejected", "reasons"])
    for stage in stats["rejects"]["stage_order"]:
        s = stats["rejects"]["by_stage"][stage]
        rejects.add_row(esc(stage), _n(s["in"]), _n(s["out"]), _n(s["rejected"]),
                        esc(", ".join(f"{k} {v:,}" for k, v in s["reasons"].items())))
    console.print(rejects)
    drops = stats["rejects"].get("language_by_source") or {}
    if drops:
        table = _table("Dropped by the language filter, per source", ["source", "dropped", "reasons", "languages"])
        for src, per in drops.items():
            table.add_row(esc(src), _n(per["rejected"]), esc(", ".join(f"{k} {v:,}" for k, v in per["reasons"].items())),
                          esc(", ".join(f"{k} {v:,}" for k, v in per["languages"].items())))
        console.print(table)
    d = stats["duplicates"]
    console.print(f"rejected by filters {_n(stats['rejects']['total'])}, "
                  f"left out by the mix {_n(stats['rejects']['mixed_out'])}")
    console.print(f"duplicates removed: exact {_n(d['exact'])}, near {_n(d['near'])} "
                  f"(in {_n(d['near_clusters'])} clusters)")

    if stats["warnings"]:
        for w in stats["warnings"]:
            console.print(f"[yellow]warning[/] {esc('[' + w['code'] + ']')} {esc(w['message'])}", highlight=False)
    else:
        console.print("[green]no warnings[/]")


def _stated(row: dict[str, Any], part: str) -> str:
    """'27 (90.0%)' for the identity answers of one language that state the name or author."""
    if row[part] is None:
        return "—"
    return f"{row[part]:,} ({row[part + '_share'] * 100:.1f}%)" if row["records"] else "0"


def _print_identity(ident: dict[str, Any], console: Console) -> None:
    """Identity records per language, what their answers state, and name questions answered wrongly."""
    table = _table("Identity coverage", ["language", "records", "name", "carrying name", "states name",
                                         "author", "carrying author", "states author"])
    for lang in sorted(set(ident["name"]) | set(ident["by_language"]) | set(ident["languages"])):
        row = ident["stating"].get(lang) or {"records": 0, "name": None, "author": None}
        table.add_row(esc(lang), _n(ident["by_language"].get(lang, 0)), esc(ident["name"].get(lang, "—")),
                      _n(ident["carrying"].get(f"name.{lang}")), _stated(row, "name"),
                      esc(ident["author"].get(lang, "—")), _n(ident["carrying"].get(f"author.{lang}")),
                      _stated(row, "author"))
    console.print(table)
    console.print(f"identity records {_n(ident['records'])} (rendered {_n(ident['rendered'])}), "
                  f"empty answers {_n(ident['empty_answers'])}, "
                  f"repeated answers {_n(ident['repeated_answers']['distinct'])}")
    if not ident["name"]:
        return  # no name configured: the name checks did not run
    for key, what in (("name_asked_not_stated", "name questions answered without the name"),
                      ("name_asked_author_only", "name questions answered with the author but not the name")):
        flagged = ident[key]
        console.print(f"{what}: {_n(flagged['records'])}", highlight=False)
        for e in flagged["examples"]:
            console.print(f"  {esc(str(e['id']))}: {esc(e['question'][:80])} -> {esc(e['answer'][:80])}",
                          highlight=False)


@click.command("stats")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--tokenizer", metavar="P", help="tokenizer path (transformers) to also report token lengths")
@click.option("--json", "as_json", is_flag=True, help="print the figures as JSON instead of tables")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path),
              help="also write the self-contained HTML report to this file")
def stats_command(path: Path, tokenizer: str | None, as_json: bool, html_file: Path | None) -> None:
    """Figures for a bundle version, an output root (newest version) or a source file."""
    if html_file is not None:
        from curate.report import build_report

        stats, html = _clean_errors(lambda: build_report(path, tokenizer))
        _clean_errors(lambda: _write(html_file, html))
    else:
        stats = _clean_errors(lambda: collect_stats(path, tokenizer))
    if as_json:
        _dump_json(stats)
    else:
        print_stats(stats, Console())
        if html_file is not None:
            click.echo(f"report written to {html_file}")


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# ---------------------------------------------------------------- diff

def print_diff(diff: dict[str, Any], console: Console) -> None:
    console.print(f"[bold]old[/] {esc(diff['old']['path'])} ({diff['old']['id'][:12]})  ->  "
                  f"[bold]new[/] {esc(diff['new']['path'])} ({diff['new']['id'][:12]})"
                  + ("  [green]identical[/]" if diff["identical"] else ""))
    rec = diff["records"]
    console.print(f"records: +{rec['added']:,} added, -{rec['removed']:,} removed "
                  f"({rec['changed']:,} of them changed in place), {rec['unchanged']:,} unchanged")
    for key, title in (("by_source", "source"), ("by_kind", "kind")):
        if rec[key]:
            table = _table(f"Records added/removed by {title}", [title, "added", "removed"])
            for name, per in rec[key].items():
                table.add_row(esc(name), f"+{per['added']:,}", f"-{per['removed']:,}")
            console.print(table)
    moves = _table("Counts and ratio", ["figure", "old", "new", "change"])
    order = [k for k in COUNT_ORDER if k in diff["counts"]] + sorted(set(diff["counts"]) - set(COUNT_ORDER))
    for name in order:
        m = diff["counts"][name]
        moves.add_row(f"count {name}", _n(m["old"]), _n(m["new"]), _signed(m["delta"]))
    for name, m in diff["ratio"].items():
        moves.add_row(f"ratio {name}", _n(m["old"]), _n(m["new"]), _signed(m["delta"]))
    console.print(moves)
    lengths = _table("Conversation length in chars (per kind: changed rows only)",
                     ["group", "percentile", "old", "new", "change"])
    groups = [("all", diff["lengths"]["all"])] + [(f"kind={k}", v) for k, v in diff["lengths"]["by_kind"].items()]
    for name, table in groups:
        for p in PCTS:
            m = table[p]
            if name == "all" or m["old"] != m["new"]:
                lengths.add_row(esc(name), p, _n(m["old"]), _n(m["new"]), _signed(m["delta"]))
    console.print(lengths)
    if diff["recipe"]:
        recipe = _table("Recipe keys changed", ["key", "old", "new"])
        for change in diff["recipe"]:
            recipe.add_row(esc(change["key"]), esc(json.dumps(change["old"], ensure_ascii=False)),
                           esc(json.dumps(change["new"], ensure_ascii=False)))
        console.print(recipe)
    else:
        console.print("recipe unchanged")


@click.command("diff")
@click.argument("old", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="print the differences as JSON instead of tables")
def diff_command(old: Path, new: Path, as_json: bool) -> None:
    """What changed from bundle OLD to bundle NEW (version dirs or output roots)."""
    from curate.diff import diff_bundles

    diff = _clean_errors(lambda: diff_bundles(old, new))
    if as_json:
        _dump_json(diff)
    else:
        print_diff(diff, Console())
