"""SVG charts drawn here: a metric across versions, and stored against logical bytes. They
need no script (hovering a point shows its ``<title>``), print, scale and work in a report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..words import human_bytes
from .html import Markup, el

WIDTH, HEIGHT = 560, 220
LEFT, RIGHT, TOP, BOTTOM = 58, 14, 16, 30


@dataclass
class Point:
    version: str
    value: float
    slot: int  # its place among the family's versions, oldest first
    tags: list[str] = field(default_factory=list)
    href: str | None = None


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def metric_chart(metric: str, points: Sequence[Point], total: int) -> Markup:
    """One point per version that records ``metric``, at its place among ``total`` versions
    (so a gap stays a gap); tagged versions are drawn larger, in another colour, labelled."""
    values = [p.value for p in points]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if high == low:
        pad = abs(high) * 0.05 or 0.5
        low, high = low - pad, high + pad
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slots = max(total - 1, 1)

    def xy(index: int, value: float) -> tuple[float, float]:
        x = LEFT + (index / slots if total > 1 else 0.5) * plot_w
        y = TOP + (1 - (value - low) / (high - low)) * plot_h
        return round(x, 1), round(y, 1)

    parts: list[Markup] = [
        el("line", x1=LEFT, y1=TOP, x2=LEFT, y2=TOP + plot_h, class_="axis"),
        el("line", x1=LEFT, y1=TOP + plot_h, x2=LEFT + plot_w, y2=TOP + plot_h, class_="axis"),
        el("text", _fmt(high), x=LEFT - 6, y=TOP + 4, text_anchor="end"),
        el("text", _fmt(low), x=LEFT - 6, y=TOP + plot_h, text_anchor="end"),
    ]
    placed = [(xy(p.slot, p.value), p) for p in points]
    if placed:
        parts.append(el("text", placed[0][1].version, x=LEFT, y=HEIGHT - 8))
        parts.append(
            el("text", placed[-1][1].version, x=LEFT + plot_w, y=HEIGHT - 8, text_anchor="end")
        )
    if len(placed) > 1:
        line = " ".join(f"{x},{y}" for (x, y), _p in placed)
        parts.append(el("polyline", points=line, class_="line"))
    for (x, y), p in placed:
        tags = f" ({', '.join(p.tags)})" if p.tags else ""
        title = el("title", f"{p.version}: {metric} = {_fmt(p.value)}{tags}")
        dot = el(
            "circle",
            title,
            cx=x,
            cy=y,
            r=5 if p.tags else 3,
            class_="pt tagged" if p.tags else "pt",
            data_version=p.version,
        )
        parts.append(el("a", dot, href=p.href) if p.href else dot)
        if p.tags:
            anchor = "end" if x > WIDTH - RIGHT - 40 else "start" if x < LEFT + 40 else "middle"
            parts.append(el("text", ", ".join(p.tags), x=x, y=max(y - 8, 10), text_anchor=anchor))
    return _svg(f"{metric} across versions", parts, WIDTH, HEIGHT, "chart", data_metric=metric)


def _svg(
    title: str, parts: list[Markup], width: int, height: int, cls: str, **attrs: str
) -> Markup:
    return el(
        "svg",
        el("title", title),
        *parts,
        xmlns="http://www.w3.org/2000/svg",
        viewBox=f"0 0 {width} {height}",
        width=width,
        height=height,
        class_=cls,
        role="img",
        **attrs,
    )


def storage_bars(rows: Sequence[tuple[str, int, int]], width: int = WIDTH) -> Markup:
    """Per label: a pale bar for the logical size and a dark one for the bytes stored only for
    it, on one scale."""
    bar_h, gap, label_w = 14, 6, 150
    top = max((max(a, b) for _l, a, b in rows), default=1) or 1
    plot_w = width - label_w - 90
    parts: list[Markup] = []
    for i, (label, logical, stored) in enumerate(rows):
        y = i * (bar_h + gap) + 4
        wl = max(logical / top * plot_w, 1)
        ws = max(stored / top * plot_w, 1 if stored else 0)
        tip = f"{label}: {human_bytes(logical)} logical, {human_bytes(stored)} stored for it alone"
        parts.append(el("text", label, x=label_w - 6, y=y + 11, text_anchor="end"))
        parts.append(
            el(
                "rect",
                el("title", tip),
                x=label_w,
                y=y,
                width=round(wl, 1),
                height=bar_h,
                class_="logical",
            )
        )
        parts.append(
            el(
                "rect",
                el("title", tip),
                x=label_w,
                y=y + 3,
                width=round(ws, 1),
                height=bar_h - 6,
                class_="stored",
            )
        )
        parts.append(el("text", human_bytes(logical), x=label_w + max(wl, ws) + 4, y=y + 11))
    height = len(rows) * (bar_h + gap) + 8
    return _svg("logical and stored bytes", parts, width, height, "chart bars")
