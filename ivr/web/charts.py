"""Charts as server-rendered SVG: no JavaScript library, nothing from a CDN,
and the statistics page prints as it shows."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from markupsafe import Markup, escape

logger = logging.getLogger(__name__)

_COLOURS = ("#1f6f8b", "#d9534f")


def bar_chart(
    data: Sequence[tuple[str, int | float]],
    title: str,
    *,
    width: int = 640,
    height: int = 220,
    horizontal: bool = False,
) -> Markup:
    """One series of bars, labelled; ``horizontal`` for long labels (areas, topics)."""
    if horizontal:
        return _horizontal(data, title, width)
    top = max((v for _, v in data), default=0) or 1
    pad_left, pad_bottom, pad_top = 36, 28, 24
    inner_w = width - pad_left - 8
    inner_h = height - pad_bottom - pad_top
    step = inner_w / max(len(data), 1)
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
        f'<text x="{pad_left}" y="16" class="chart-title">{escape(title)}</text>',
        f'<text x="{pad_left - 4}" y="{pad_top + 4}" text-anchor="end">{_num(top)}</text>',
        f'<line x1="{pad_left}" y1="{pad_top + inner_h}" x2="{width - 8}" '
        f'y2="{pad_top + inner_h}" stroke="#888"/>',
    ]
    label_every = max(1, len(data) // 14)
    for index, (label, value) in enumerate(data):
        bar_h = inner_h * value / top
        x = pad_left + index * step + step * 0.15
        parts.append(
            f'<rect x="{x:.1f}" y="{pad_top + inner_h - bar_h:.1f}" width="{step * 0.7:.1f}" '
            f'height="{bar_h:.1f}" fill="{_COLOURS[0]}"><title>{escape(label)}: '
            f"{_num(value)}</title></rect>"
        )
        if index % label_every == 0:
            parts.append(
                f'<text x="{x + step * 0.35:.1f}" y="{height - 10}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def _horizontal(data: Sequence[tuple[str, int | float]], title: str, width: int) -> Markup:
    top = max((v for _, v in data), default=0) or 1
    row, label_w, pad_top = 22, 220, 28
    height = pad_top + row * max(len(data), 1) + 8
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
        f'<text x="4" y="16" class="chart-title">{escape(title)}</text>',
    ]
    for index, (label, value) in enumerate(data):
        y = pad_top + index * row
        bar_w = (width - label_w - 50) * value / top
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{escape(label[:34])}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{bar_w:.1f}" height="{row - 6}" '
            f'fill="{_COLOURS[0]}"/>'
            f'<text x="{label_w + bar_w + 4:.1f}" y="{y + 15}">{_num(value)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def stacked_bars(
    data: Sequence[tuple[str, int, int]], legend: tuple[str, str], title: str, width: int = 640
) -> Markup:
    """Two parts per row (answered/abandoned, on time/late) as horizontal stacks."""
    top = max((a + b for _, a, b in data), default=0) or 1
    row, label_w, pad_top = 26, 160, 44
    height = pad_top + row * max(len(data), 1) + 8
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
        f'<text x="4" y="16" class="chart-title">{escape(title)}</text>',
    ]
    for index, name in enumerate(legend):
        x = label_w + index * 150
        parts.append(
            f'<rect x="{x}" y="24" width="12" height="12" fill="{_COLOURS[index]}"/>'
            f'<text x="{x + 16}" y="34">{escape(name)}</text>'
        )
    span = width - label_w - 60
    for index, (label, first, second) in enumerate(data):
        y = pad_top + index * row
        w1, w2 = span * first / top, span * second / top
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 17}" text-anchor="end">{escape(label[:24])}</text>'
            f'<rect x="{label_w}" y="{y + 4}" width="{w1:.1f}" height="{row - 8}" '
            f'fill="{_COLOURS[0]}"/>'
            f'<rect x="{label_w + w1:.1f}" y="{y + 4}" width="{w2:.1f}" height="{row - 8}" '
            f'fill="{_COLOURS[1]}"/>'
            f'<text x="{label_w + w1 + w2 + 4:.1f}" y="{y + 17}">{first} / {second}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _num(value: float) -> str:
    return f"{value:g}"
