"""The data-QA report: one offline HTML file per bundle version (figures, charts, example records)."""
from curate.report.render import build_report, render_html, write_report

__all__ = ["build_report", "render_html", "write_report"]
