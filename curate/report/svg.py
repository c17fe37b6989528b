"""Inline SVG charts built in Python, so the report needs no script, font or image from anywhere.

Every label that may come from data (source names, reason codes) goes through `escape`; the
functions return Markup so jinja2's autoescape leaves the finished SVG alone.
"""
from __future__ import annotations

from markupsafe import Markup, escape

COLORS = {"train": "#3b6ea8", "val": "#e0902f", "source": "#3b6ea8"}
PALETTE = ["#3b6ea8", "#e0902f", "#4c9a6a", "#b5485d", "#7a5ea8", "#8c8c3b", "#3ba8a1", "#a86b3b"]
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _num(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _short(edge: int) -> str:
    return f"{edge // 1024}k" if edge >= 1024 and edge % 1024 == 0 else str(edge)


def bin_labels(edges: list[int]) -> list[str]:
    """'0–31', '32–63', …, '32k+' for fixed histogram edges."""
    labels = [f"{_short(lo)}–{_short(hi - 1) if hi - 1 < 1024 else _short(hi)}" for lo, hi in zip(edges, edges[1:])]
    return labels + [f"{_short(edges[-1])}+"]


def histogram(edges: list[int], series: dict[str, list[int]], title: str, unit: str = "chars") -> Markup:
    """Grouped bars per fixed bin, each series as % of its own records so train and val compare."""
    width, height, left, bottom, top = 560, 200, 40, 46, 22
    plot_w, plot_h = width - left - 10, height - bottom - top
    names = sorted(series)
    shares = {n: [c / (sum(series[n]) or 1) * 100 for c in series[n]] for n in names}
    peak = max([max(v) for v in shares.values()] + [1.0])
    slot = plot_w / len(edges)
    bar = max(2.0, (slot - 4) / max(1, len(names)))
    labels = bin_labels(edges)
    parts = [f'<svg viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" {FONT}>',
             f'<text x="{left}" y="14" font-weight="600" font-size="12">{escape(title)}</text>']
    for frac in (0, 0.5, 1):
        y = top + plot_h - frac * plot_h
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e3e3"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#666">{peak * frac:.0f}%</text>')
    for i, label in enumerate(labels):
        x0 = left + i * slot + 2
        for j, name in enumerate(names):
            value = shares[name][i]
            h = value / peak * plot_h
            color = COLORS.get(name, PALETTE[j % len(PALETTE)])
            parts.append(f'<rect x="{x0 + j * bar:.1f}" y="{top + plot_h - h:.1f}" width="{bar - 1:.1f}" '
                         f'height="{h:.1f}" fill="{color}"><title>{escape(name)} {escape(label)} {unit}: '
                         f'{series[name][i]:,} records ({value:.1f}%)</title></rect>')
        parts.append(f'<text x="{x0 + slot / 2 - 2:.1f}" y="{top + plot_h + 12}" text-anchor="end" fill="#444" '
                     f'transform="rotate(-35 {x0 + slot / 2 - 2:.1f} {top + plot_h + 12})">{escape(label)}</text>')
    for j, name in enumerate(names):
        x = width - 10 - (len(names) - j) * 90
        color = COLORS.get(name, PALETTE[j % len(PALETTE)])
        parts.append(f'<rect x="{x}" y="5" width="10" height="10" fill="{color}"/>'
                     f'<text x="{x + 14}" y="14">{escape(name)} ({sum(series[name]):,})</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def bars(items: list[tuple[str, float]], title: str = "", total: float | None = None) -> Markup:
    """Horizontal bars with value labels; with `total`, labels also show the share in %."""
    if not items:
        return Markup('<p class="muted">nothing to show</p>')
    row, left, width = 22, 190, 560
    height = row * len(items) + (24 if title else 6)
    top = 22 if title else 4
    peak = max(v for _, v in items) or 1
    parts = [f'<svg viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" {FONT}>']
    if title:
        parts.append(f'<text x="0" y="14" font-weight="600" font-size="12">{escape(title)}</text>')
    for i, (label, value) in enumerate(items):
        y = top + i * row
        w = value / peak * (width - left - 110)
        shown = str(label) if len(str(label)) <= 30 else str(label)[:29] + "…"
        share = f" ({value / total * 100:.1f}%)" if total else ""
        parts.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end" fill="#333">{escape(shown)}'
                     f'<title>{escape(label)}</title></text>'
                     f'<rect x="{left}" y="{y + 3}" width="{max(w, 1):.1f}" height="15" rx="2" '
                     f'fill="{PALETTE[i % len(PALETTE)]}"/>'
                     f'<text x="{left + w + 6:.1f}" y="{y + 14}" fill="#333">{_num(value)}{share}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def ratio_band(achieved: float | None, requested: float | None, band: list[float]) -> Markup:
    """General records per domain record on a line, the allowed band shaded, requested and achieved marked."""
    width, height, left, right = 560, 92, 20, 20
    low, high = band
    span = max([high * 1.2] + [v * 1.1 for v in (achieved, requested) if v is not None])
    scale = (width - left - right) / span

    def x(value: float) -> float:
        return left + value * scale

    ok = achieved is not None and low <= achieved <= high
    parts = [f'<svg viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" {FONT}>',
             f'<rect x="{x(low):.1f}" y="26" width="{x(high) - x(low):.1f}" height="22" fill="#dcefe2"/>',
             f'<line x1="{left}" x2="{width - right}" y1="48" y2="48" stroke="#888"/>',
             f'<text x="{(x(low) + x(high)) / 2:.1f}" y="41" text-anchor="middle" fill="#2f6b43">'
             f'allowed 1:{low:g} … 1:{high:g}</text>']
    step = 1 if span <= 15 else 5 if span <= 60 else 10 ** len(str(int(span // 10)))
    tick = 0
    while tick <= span:
        parts.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="48" y2="53" stroke="#888"/>'
                     f'<text x="{x(tick):.1f}" y="65" text-anchor="middle" fill="#666">{tick:g}</text>')
        tick += step
    if requested is not None:
        parts.append(f'<line x1="{x(requested):.1f}" x2="{x(requested):.1f}" y1="18" y2="48" stroke="#555" '
                     f'stroke-dasharray="3 2"/><text x="{x(requested):.1f}" y="14" text-anchor="middle" '
                     f'fill="#555">requested 1:{requested:g}</text>')
    if achieved is not None:
        color = "#2f7d4a" if ok else "#c0392b"
        parts.append(f'<path d="M{x(achieved):.1f} 48 l-6 -12 h12 z" fill="{color}"/>'
                     f'<text x="{x(achieved):.1f}" y="82" text-anchor="middle" fill="{color}" '
                     f'font-weight="600">achieved 1:{achieved:.2f}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
