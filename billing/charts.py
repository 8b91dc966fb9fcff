"""Charts of the monthly report as SVG written here (weasyprint draws inline SVG; no plotting stack needed)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from html import escape

from billing.model import DayCount

COLOURS = ("#1f4e79", "#2e8b57", "#c0504d")
WIDTH, HEIGHT = 680, 200


def _scale_max(value: int) -> int:
    """A round axis maximum at or above `value`: 1, 2 or 5 times a power of ten."""
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10


def daily_alerts(days: Sequence[DayCount]) -> str:
    """Grouped bars per day: alerts raised, verified by an operator, dispatched to a force."""
    left, bottom, top_pad = 34, 24, 16
    plot_w, plot_h = WIDTH - left - 8, HEIGHT - bottom - top_pad
    peak = _scale_max(max([d.raised for d in days] + [1]))
    slot = plot_w / max(len(days), 1)
    bar = max(slot / 4, 1.0)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="Vigie" font-size="9">']
    for tick in (0, peak // 2, peak) if peak % 2 == 0 else (0, peak):
        y = top_pad + plot_h - plot_h * tick / peak
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{WIDTH - 8}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end">{tick}</text>')
    for i, day in enumerate(days):
        x0 = left + i * slot + (slot - 3 * bar) / 2
        for k, value in enumerate((day.raised, day.verified, day.dispatched)):
            h = plot_h * value / peak
            parts.append(f'<rect x="{x0 + k * bar:.1f}" y="{top_pad + plot_h - h:.1f}" width="{bar:.1f}" '
                         f'height="{h:.1f}" fill="{COLOURS[k]}"/>')
        if day.day.day in (1, 5, 10, 15, 20, 25) or i == len(days) - 1:
            parts.append(f'<text x="{left + (i + 0.5) * slot:.1f}" y="{HEIGHT - 10}" text-anchor="middle">'
                         f"{day.day.day}</text>")
    for k, label in enumerate(("levées", "vérifiées", "transmises aux forces")):
        parts.append(f'<rect x="{left + k * 150}" y="2" width="9" height="9" fill="{COLOURS[k]}"/>'
                     f'<text x="{left + k * 150 + 13}" y="10">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)


def availability_bars(rows: Sequence[tuple[str, Decimal | None]], floor: Decimal = Decimal(90)) -> str:
    """One horizontal bar per camera, from `floor` % to 100 % (availability lives near the top of the scale)."""
    row_h, label_w = 16, 220
    height = max(row_h * len(rows) + 24, 40)
    span = float(Decimal(100) - floor)
    plot_w = WIDTH - label_w - 60
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}" font-family="Vigie" font-size="9">']
    for i, (name, value) in enumerate(rows):
        y = 4 + i * row_h
        parts.append(f'<text x="{label_w - 6}" y="{y + 10}" text-anchor="end">{escape(name[:40])}</text>')
        if value is None:
            parts.append(f'<text x="{label_w}" y="{y + 10}" fill="#777">hors service</text>')
            continue
        share = min(max((float(value) - float(floor)) / span, 0.0), 1.0)
        colour = COLOURS[1] if value >= Decimal("99") else COLOURS[2]
        parts.append(f'<rect x="{label_w}" y="{y + 2}" width="{plot_w * share:.1f}" height="{row_h - 5}" '
                     f'fill="{colour}"/><text x="{label_w + plot_w * share + 4:.1f}" y="{y + 10}">'
                     f"{str(value).replace('.', ',')} %</text>")
    axis_y = 4 + len(rows) * row_h + 10
    parts.append(f'<text x="{label_w}" y="{axis_y}">{floor} %</text>'
                 f'<text x="{label_w + plot_w}" y="{axis_y}" text-anchor="end">100 %</text></svg>')
    return "".join(parts)
