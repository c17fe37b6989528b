"""The HTML report: same figures as the manifest and `--json`, record text escaped, nothing fetched."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from _bundle_factory import default_records, default_rejects, record, write_bundle
from curate.report import render_html, write_report
from curate.report.render import fmt
from curate.stats import collect_stats
from curate.stats_cli import stats_command
from schemas.bundle import load_manifest
from schemas.manifest import Reject

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class FigureParser(HTMLParser):
    """Collects (path, shown text) for every <span data-figure=...>."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: list[tuple[list, str]] = []
        self._open: list | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        if "data-figure" in attrs:
            self._open = json.loads(attrs["data-figure"])

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self.figures.append((self._open, data))
            self._open = None


def figures(html: str) -> dict[tuple, str]:
    parser = FigureParser()
    parser.feed(html)
    return {tuple(path): text for path, text in parser.figures}


def lookup(data, path):
    for key in path:
        data = data[key]
    return data


def external_references(html: str) -> list[str]:
    """Anything that would make a browser fetch: remote src/href/url()/@import, or any script/link/img tag."""
    found = re.findall(r"""(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//[^"'\s>]*""", html, re.I)
    found += re.findall(r"""url\(\s*["']?\s*(?:https?:)?//[^)]*\)""", html, re.I)
    found += re.findall(r"@import[^;]*", html, re.I)
    found += re.findall(r"<(?:script|link|img|iframe|object|embed)\b[^>]*>", html, re.I)
    return found


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    write_bundle(tmp_path / "out" / "v0001")
    return tmp_path / "out" / "v0001"


@pytest.fixture
def report(bundle: Path, tmp_path: Path) -> str:
    out = tmp_path / "report.html"
    write_report(bundle, out)
    return out.read_text(encoding="utf-8")


def test_report_figures_equal_manifest_and_json(bundle: Path, report: str) -> None:
    shown = figures(report)
    result = CliRunner().invoke(click.Group("curate", commands={"stats": stats_command}),
                                ["stats", str(bundle), "--json"])
    as_json = json.loads(result.output)
    assert len(shown) > 80
    for path, text in shown.items():
        assert text == fmt(lookup(as_json, path)), path
    manifest = load_manifest(bundle)
    for key, value in manifest.counts.items():
        assert shown[("counts", key)] == fmt(value)
    assert shown[("ratio", "achieved_general_per_domain")] == fmt(manifest.ratio.achieved_general_per_domain)
    assert shown[("ratio", "domain")] == fmt(manifest.ratio.domain)
    for stage in manifest.stages:
        assert shown[("rejects", "by_stage", stage.name, "rejected")] == fmt(stage.rejected)
        for reason, n in stage.reasons.items():
            assert shown[("rejects", "by_stage", stage.name, "reasons", reason)] == fmt(n)
    for i, source in enumerate(sorted(manifest.sources, key=lambda s: s.path)):
        assert shown[("sources", i, "kept")] == fmt(source.kept)
    assert shown[("identity", "rendered")] == fmt(manifest.identity["rendered"])
    assert shown[("duplicates", "near")] == "5" and shown[("lengths", "chars", "all", "p50")]


def test_report_sections_and_examples(report: str) -> None:
    for text in ("Warnings", "repeated_answer", "Identity coverage", "星河实验室", "Largest near-duplicate clusters",
                 "kept: domain.jsonl:2", "removed: 4", "too_long", "<svg", "allowed 1:2 … 1:10"):
        assert text in report
    assert report.count("<svg") >= 6  # ratio, kinds, languages, reasons, 3 histograms


def test_record_text_is_escaped(tmp_path: Path) -> None:
    evil = "<script>alert('x')</script><img src=x onerror=alert(1)>"
    recs = default_records() + [record("general.jsonl:4000", f"Q {evil}", f"A {evil}", lang="en")]
    rejects = default_rejects() + [
        Reject(source=f"src{evil}", line=1, stage="near_dedup", reason="near_duplicate", message=f"m {evil}",
               raw={"q": evil}, id="x:1", duplicate_of="general.jsonl:4000"),
        Reject(source="s", line=2, stage="read", reason=f"bad{evil}", message="m", raw=evil, id="x:2")]
    write_bundle(tmp_path / "v0001", recs, rejects, identity={"name": {"en": evil, "zh": "小智"},
                                                             "author": {"en": "A", "zh": "作者"},
                                                             "templates": 1, "rendered": 0, "system": evil})
    out = tmp_path / "r.html"
    write_report(tmp_path / "v0001", out)
    html = out.read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(" in html and "&lt;img src=x" in html
    assert not re.search(r"<script|<img", html, re.I)
    assert external_references(html) == []


def test_report_is_self_contained(report: str) -> None:
    assert external_references(report) == []
    assert "http://" not in report and "https://" not in report
    assert "default-src 'none'" in report  # the CSP forbids fetching anything even if a reference slipped in
    assert external_references('<img src="https://x/y.png"><style>@import "a.css"; a{background:url(//x)}</style>')


def test_write_report_in_a_temp_build_dir_and_caps(tmp_path: Path) -> None:
    rejects = [Reject(source="g", line=i, stage="length", reason="too_long", message="long", raw="x" * 5000,
                      id=f"g:{i}") for i in range(200)]
    rejects += [Reject(source="d", line=i, stage="near_dedup", reason="near_duplicate", message="near",
                       raw={"q": f"dup {i}"}, id=f"d:{i}", duplicate_of=f"general.jsonl:{1 + i % 15}")
                for i in range(300)]
    tmp_dir = tmp_path / ".tmp-v0002"
    write_bundle(tmp_dir, rejects=rejects)
    write_report(tmp_dir, tmp_dir / "report.html")
    html = (tmp_dir / "report.html").read_text(encoding="utf-8")
    assert not list(tmp_dir.glob("*.tmp"))
    assert ".tmp-v0002" not in html  # neither the temp name nor any absolute path ends up in the bundle's report
    assert str(tmp_path) not in html
    assert html.count("<pre>") <= 2 * 3 + 10 * 6  # 3 per reason, top 10 clusters with kept + 5 removed each
    assert "x" * 700 not in html and "more chars]" in html
    assert len(html) < 200_000


def test_report_is_deterministic(bundle: Path, tmp_path: Path) -> None:
    write_report(bundle, tmp_path / "a.html")
    write_report(bundle, tmp_path / "b.html")
    assert (tmp_path / "a.html").read_bytes() == (tmp_path / "b.html").read_bytes()


def test_cli_html_for_a_bundle_and_a_source_file(bundle: Path, tmp_path: Path) -> None:
    group = click.Group("curate", commands={"stats": stats_command})
    out = tmp_path / "cli.html"
    result = CliRunner().invoke(group, ["stats", str(bundle.parent), "--html", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == collect_stats(bundle)
    assert figures(out.read_text(encoding="utf-8"))[("counts", "kept")] == "426"
    source = tmp_path / "rows.jsonl"
    source.write_text('{"query": "<b>q</b>", "response": "r"}\n{"bad json\n', encoding="utf-8")
    result = CliRunner().invoke(group, ["stats", str(source), "--html", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "Source file report" in html and "bad_json" in html and external_references(html) == []


def test_render_html_without_examples(bundle: Path) -> None:
    html = render_html(collect_stats(bundle))
    assert "No near duplicates were removed." in html and figures(html)[("counts", "read")] == "435"


# ---------------------------------------------------------------- real browser

def _chromium(page: Path, work: Path) -> tuple[str, list[str], Path]:
    """Load a page headless; return chromium's stderr, the URLs the page itself requested, the screenshot."""
    shot, netlog = work / "shot.png", work / "net.json"
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={work / 'profile'}", "--enable-logging=stderr", "--v=0",
         f"--log-net-log={netlog}", f"--screenshot={shot}", "--window-size=1280,4000", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = json.loads(netlog.read_text(encoding="utf-8"))
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    # The browser's own update/account pings carry no page isolation key; requests made by a file:// page do.
    page_urls = [e["params"]["url"] for e in log["events"]
                 if e["type"] == start_job and "file://" in str(e["params"].get("network_isolation_key", ""))]
    return proc.stderr, page_urls, shot


def _console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install chromium)")
def test_report_in_a_headless_browser(bundle: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    write_report(bundle, page)
    started = time.monotonic()
    stderr, urls, shot = _chromium(page, tmp_path / "run")
    assert _console(stderr) == []
    assert [u for u in urls if not u.startswith("file://")] == []
    assert shot.stat().st_size > 50_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The same checks catch a page that does fetch and does fail, so they cannot pass vacuously.
    bad = tmp_path / "bad.html"
    bad.write_text('<img src="http://example.invalid/x.png"><script>console.error("boom")</script>', encoding="utf-8")
    stderr, urls, _ = _chromium(bad, tmp_path / "control")
    assert "http://example.invalid/x.png" in urls and any("boom" in line for line in _console(stderr))
    assert time.monotonic() - started < 120
