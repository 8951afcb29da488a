"""Server-side SVG charts for the admin report page: no CDN, no JavaScript. Every point
carries a <title> so hovering shows the exact value."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 520, 190
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 56, 12, 14, 30


@dataclass(frozen=True)
class Point:
    label: str  # x label, e.g. "03-01"
    value: float | None  # None: undefined (e.g. CTR without impressions), drawn as a gap


def _nice_max(value: float, *, integer: bool, steps: int = 3) -> float:
    """The smallest round top (steps × a round step) at or above `value`; for counts the
    grid steps are whole numbers."""
    if value <= 0:
        return float(steps)
    raw = value / steps
    if integer and raw < 1:
        return float(steps)
    magnitude = 10 ** math.floor(math.log10(raw))
    for mult in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        step = mult * magnitude
        if integer and step != int(step):
            continue
        if step >= raw - 1e-12:
            return steps * step
    return value


def line_chart(
    *,
    title: str,
    points: Sequence[Point],
    fmt: Callable[[float], str],
    color: str = "#417690",
    slug: str = "",
    integer: bool = False,
) -> SafeString:
    """An area+line chart of `points` with a zero-based y axis and 3 grid lines."""
    values = [p.value for p in points if p.value is not None]
    top = _nice_max(max(values) if values else 0.0, integer=integer)
    inner_w = WIDTH - PAD_LEFT - PAD_RIGHT
    inner_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    n = max(len(points), 1)

    def x(i: int) -> float:
        return PAD_LEFT + (inner_w * (i + 0.5) / n)

    def y(v: float) -> float:
        return PAD_TOP + inner_h * (1 - v / top)

    parts = [
        f'<svg class="adp-chart" data-chart="{escape(slug)}" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" preserveAspectRatio="xMidYMid meet" role="img" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for k in range(4):
        gy = PAD_TOP + inner_h * k / 3
        parts.append(
            f'<line x1="{PAD_LEFT}" y1="{gy:.1f}" x2="{WIDTH - PAD_RIGHT}" y2="{gy:.1f}" stroke="#e5e5e5"/>'
            f'<text x="{PAD_LEFT - 6}" y="{gy + 4:.1f}" text-anchor="end" font-size="10" fill="#666">'
            f"{escape(fmt(top * (1 - k / 3)))}</text>"
        )
    # segments of consecutive defined points
    segments: list[list[tuple[float, float]]] = [[]]
    for i, p in enumerate(points):
        if p.value is None:
            if segments[-1]:
                segments.append([])
            continue
        segments[-1].append((x(i), y(p.value)))
    base = PAD_TOP + inner_h
    for seg in segments:
        if not seg:
            continue
        line = " ".join(f"{px:.1f},{py:.1f}" for px, py in seg)
        area = f"{seg[0][0]:.1f},{base:.1f} {line} {seg[-1][0]:.1f},{base:.1f}"
        parts.append(f'<polygon points="{area}" fill="{color}" fill-opacity="0.12"/>')
        parts.append(f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="2"/>')
    step = max(1, len(points) // 8)
    for i, p in enumerate(points):
        if p.value is not None:
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(p.value):.1f}" r="2.5" fill="{color}">'
                f"<title>{escape(p.label)}: {escape(fmt(p.value))}</title></circle>"
            )
        if i % step == 0:
            parts.append(
                f'<text x="{x(i):.1f}" y="{HEIGHT - 10}" text-anchor="middle" font-size="10" fill="#666">'
                f"{escape(p.label)}</text>"
            )
    if not values:
        parts.append(
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" font-size="12" fill="#999">No data</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped above
