"""Stats + examples -> one self-contained HTML file (inline CSS and SVG, no script, nothing fetched).

Autoescape is on: record text is data, and a record holding `<script>` must show as text.
Figures are printed through `fig(...)`, which tags each number with its path in the stats
(data-figure="[...]"), so tests can check the page against the manifest and `--json`.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from jinja2 import DictLoader, Environment, StrictUndefined
from markupsafe import Markup

from curate.report import svg
from curate.report.examples import collect_examples
from curate.report.template import REPORT_TEMPLATE
from curate.stats import open_inputs, stats_for

_ENV = Environment(loader=DictLoader({"report.html": REPORT_TEMPLATE}), autoescape=True,
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def fmt(value: Any) -> str:
    """1234 -> '1,234'; floats to 2 decimals; None -> '—'."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def _lookup(stats: dict[str, Any], keys: tuple[Any, ...]) -> Any:
    value: Any = stats
    for key in keys:
        if value is None:
            return None
        value = value[key] if isinstance(value, list) else value.get(key)
    return value


def _fig_function(stats: dict[str, Any]):
    def fig(*keys: Any) -> Markup:
        value = _lookup(stats, keys)
        return Markup('<span class="fig" data-figure="{}">{}</span>').format(json.dumps(list(keys)), fmt(value))

    return fig


def _pct(part: int | None, whole: int | None) -> str:
    return f"{part / whole * 100:.1f}%" if part is not None and whole else "—"


def render_html(stats: dict[str, Any], examples: dict[str, Any] | None = None) -> str:
    """The report page for figures from collect_stats and examples from collect_examples."""
    examples = examples or {"rejects": {}, "clusters": []}
    template = _ENV.get_template("report.html")
    return template.render(s=stats, ex=examples, fig=_fig_function(stats), fmt=fmt, pct=_pct, svg=svg,
                           charts=_charts(stats))


def _charts(stats: dict[str, Any]) -> dict[str, Any]:
    records, ratio = stats["records"], stats["ratio"]
    charts: dict[str, Any] = {
        "ratio": svg.ratio_band(ratio["achieved_general_per_domain"], ratio["requested_general_per_domain"],
                                ratio["band"]),
        "languages": svg.bars(sorted(records["by_language"].items(), key=lambda kv: (-kv[1], kv[0])),
                              total=records["total"]),
        "kinds": svg.bars(sorted(records["by_kind"].items(), key=lambda kv: (-kv[1], kv[0])),
                          total=records["total"]),
        "reasons": svg.bars(sorted(stats["rejects"]["by_reason"].items(), key=lambda kv: (-kv[1], kv[0]))[:30],
                            total=sum(stats["rejects"]["by_reason"].values())),
        "histograms": {},
    }
    for unit in ("chars", "tokens"):
        lengths = stats["lengths"][unit]
        if lengths:
            hist = lengths["histogram"]
            charts["histograms"][unit] = [
                svg.histogram(hist["edges"], series, f"{kind}: conversation length in {unit}", unit)
                for kind, series in sorted(hist["by_kind_split"].items())]
    return charts


def build_report(path: Path, tokenizer: str | None = None, records=None,
                 rejects=None) -> tuple[dict[str, Any], str]:
    """Stats and report HTML for a bundle version, output root or source file, reading the inputs once.

    `records` and `rejects` are passes over train and val and over the rejects the caller already
    made (see curate.stats_pass.new_pass, curate.rejects_pass)."""
    inputs = open_inputs(path)
    stats = stats_for(inputs, tokenizer, records, rejects)
    return stats, render_html(stats, collect_examples(inputs, stats))


def write_report(version_dir: Path, out_file: Path, tokenizer: str | None = None, records=None,
                 rejects=None) -> None:
    """Read the bundle in version_dir and write its report to out_file (the build calls this)."""
    _, html = build_report(Path(version_dir), tokenizer, records, rejects)
    out_file = Path(out_file)
    tmp = out_file.with_name(out_file.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, out_file)
