"""HTML by small functions: every piece of user text goes through ``esc`` (html.escape with
quotes) on its way in, and a ``Markup`` is text already made safe. No templates, no script."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any


class Markup(str):
    """HTML that is safe as it is: produced by these functions from escaped parts."""


def esc(value: Any) -> Markup:
    """``value`` as HTML text; a Markup passes through unchanged."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def join(parts: Iterable[Any], sep: str = "") -> Markup:
    return Markup(esc(sep).join(esc(p) for p in parts))


VOID = frozenset({"input", "meta", "br", "hr", "link"})  # elements with no end tag


def el(name: str, /, *body: Any, **attrs: Any) -> Markup:
    """``<name attrs>body</name>``; attribute ``class_`` is ``class``; None/False drop out."""
    shown = []
    for key, value in attrs.items():
        if value is None or value is False:
            continue
        key = key.rstrip("_").replace("_", "-")
        shown.append(f" {key}" if value is True else f' {key}="{esc(value)}"')
    if name in VOID:
        return Markup(f"<{name}{''.join(shown)}>")
    return Markup(f"<{name}{''.join(shown)}>{join(body)}</{name}>")


def link(href: str | None, text: Any, **attrs: Any) -> Markup:
    """A link, or the bare text when there is nowhere to go (a report without that page)."""
    return el("a", text, href=href, **attrs) if href else esc(text)


def table(headers: Sequence[Any], rows: Iterable[Sequence[Any]], **attrs: Any) -> Markup:
    head = el("thead", el("tr", *(el("th", h) for h in headers)))
    body = el("tbody", *(el("tr", *(el("td", c) for c in row)) for row in rows))
    return el("table", head, body, **attrs)


def pairs(items: Iterable[tuple[Any, Any]], **attrs: Any) -> Markup:
    """A two-column table of name, value."""
    return el(
        "table", *(el("tr", el("th", k), el("td", v)) for k, v in items), class_="kv", **attrs
    )


CSS = """
:root { --fg:#1d232a; --muted:#5b6570; --line:#d8dde3; --bg:#fff; --soft:#f4f6f8;
  --accent:#1f6feb; --bad:#b42318; --badbg:#fdecea; --warn:#8a5a00; --warnbg:#fff6e0; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
  background: var(--bg); margin: 0; }
header.top { background: #0d1b2a; color: #fff; padding: .6rem 1.2rem; display: flex;
  gap: 1.2rem; align-items: baseline; }
header.top a { color: #cfe3ff; text-decoration: none; }
header.top .brand { font-weight: 700; color: #fff; }
main { padding: 1rem 1.2rem 3rem; max-width: 1200px; }
h1 { font-size: 1.4rem; margin: .4rem 0 .8rem; } h2 { font-size: 1.1rem; margin: 1.6rem 0 .5rem; }
a { color: var(--accent); }
table { border-collapse: collapse; margin: .3rem 0 1rem; }
th, td { border-bottom: 1px solid var(--line); padding: .25rem .6rem; text-align: left;
  vertical-align: top; }
thead th { background: var(--soft); position: sticky; top: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.kv th { color: var(--muted); font-weight: 500; white-space: nowrap; }
.muted { color: var(--muted); } .tag { background: #e7f0ff; color: #0b4bb3; border-radius: 3px;
  padding: 0 .35rem; margin-right: .2rem; font-size: .85em; white-space: nowrap; }
.banner { padding: .7rem 1rem; border-radius: 6px; margin: .5rem 0 1rem; font-weight: 600; }
.banner.bad { background: var(--badbg); color: var(--bad); border: 2px solid var(--bad); }
.banner.warn { background: var(--warnbg); color: var(--warn); border: 2px solid #e0b44c; }
.safety-bad { color: var(--bad); font-weight: 600; }
.safety-warn { color: var(--warn); font-weight: 600; }
pre, code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .92em; }
pre { background: var(--soft); padding: .6rem; overflow-x: auto; white-space: pre-wrap; }
.desc { white-space: pre-wrap; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: .2rem 1rem; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; } figcaption { color: var(--muted); text-align: center; }
svg.chart { border: 1px solid var(--line); border-radius: 4px; background: #fff; }
svg.chart .pt { fill: var(--accent); } svg.chart .pt.tagged { fill: #d97706; }
svg.chart .line { fill: none; stroke: var(--accent); stroke-width: 1.2; opacity: .6; }
svg.chart text { font: 11px system-ui, sans-serif; fill: var(--muted); }
svg.chart .axis { stroke: var(--line); }
svg.bars .stored { fill: var(--accent); } svg.bars .logical { fill: #c9d7ec; }
form.where input[type=text] { width: 28rem; padding: .3rem; font: inherit; }
.error { color: var(--bad); font-weight: 600; }
.added { color: #116329; } .removed { color: var(--bad); } .changed { color: var(--warn); }
section.page { border-top: 3px solid var(--line); margin-top: 2rem; }
@media print { header.top { display: none; } thead th { position: static; } }
"""


def page(title: str, body: Any, nav: Sequence[tuple[str, str]] = ()) -> Markup:
    """A whole document: inline CSS, no script, no font or file from anywhere else."""
    links = join(el("a", text, href=href) for text, href in nav)
    top = el("header", el("span", "modelreg", class_="brand"), links, class_="top") if nav else ""
    return Markup(
        "<!doctype html>\n"
        + el(
            "html",
            el(
                "head",
                Markup('<meta charset="utf-8">'),
                Markup('<meta name="viewport" content="width=device-width, initial-scale=1">'),
                el("title", title),
                el("style", Markup(CSS)),
            ),
            el("body", top, el("main", body)),
            lang="en",
        )
    )
