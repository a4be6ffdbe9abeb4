"""The pages as HTML: home (the families), a family (its versions, charts and lineage) and
the storage view. ``Links`` says where a page lives: URLs in the server, anchors in a report.
Version and compare pages are in detail.py."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Sequence
from typing import Any

from .. import modelinfo, query
from ..errors import ModelregError
from ..repo import Record
from ..words import human_bytes, plural, utc_time, value
from . import charts, data
from .html import Markup, el, esc, join, link, pairs, table


class Links:
    """Where each page is served: ``/m/NAME``, ``/m/NAME/vN``, ``/compare?a=..&b=..``."""

    def home(self) -> str | None:
        return "/"

    def family(self, name: str, **params: str) -> str | None:
        query_text = urllib.parse.urlencode(params) if params else ""
        return f"/m/{urllib.parse.quote(name)}" + (f"?{query_text}" if query_text else "")

    def version(self, name: str, version: str) -> str | None:
        return f"/m/{urllib.parse.quote(name)}/{urllib.parse.quote(version)}"

    def compare(self, a: str, b: str) -> str | None:
        return "/compare?" + urllib.parse.urlencode({"a": a, "b": b})

    def storage(self) -> str | None:
        return "/storage"

    def spec(self, spec: str) -> str | None:
        name, _, version = spec.partition("@")
        return self.version(name, version or "latest")

    def nav(self) -> list[tuple[str, str]]:
        found = [("Families", self.home()), ("Compare", "/compare"), ("Storage", self.storage())]
        return [(text, href) for text, href in found if href]


def tags_html(tags: Sequence[str]) -> Markup:
    return join(el("span", t, class_="tag") for t in tags)


def safety_html(inspect: dict[str, Any]) -> Markup:
    marker = modelinfo.safety_marker(inspect)
    if not marker:
        return esc(inspect.get("safety") or "")
    return el("span", marker, class_="safety-warn" if marker == "unchecked" else "safety-bad")


def metric_text(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return value(v)


# --- home -----------------------------------------------------------------------------------
def home(fams: list[data.Family], links: Links) -> Markup:
    if not fams:
        return el("p", "No models yet; add one with ", el("code", "modelreg register NAME PATH"))
    rows = []
    for f in fams:
        latest = f.latest
        rows.append(
            [
                link(links.family(f.name), f.name),
                el("span", f"{len(f.rows):,}", class_="num"),
                link(links.version(f.name, latest["version"]), latest["version"]),
                join(
                    (el("span", f"{t} → {v}", class_="tag") for t, v in sorted(f.tags.items())),
                    " ",
                ),
                human_bytes(int(latest.get("size") or 0)),
                human_bytes(f.logical_bytes),
                utc_time(f.last_registered),
            ]
        )
    total = sum(len(f.rows) for f in fams)
    return join(
        [
            el("h1", "Families"),
            el("p", f"{plural(len(fams), 'family')}, {plural(total, 'version')}", class_="muted"),
            table(
                [
                    "family",
                    "versions",
                    "latest",
                    "tags",
                    "latest size",
                    "all versions",
                    "last registered",
                ],
                rows,
                id="families",
            ),
        ]
    )


# --- a family -------------------------------------------------------------------------------
def where_list(raw: Sequence[str]) -> list[str]:
    """The ``where`` parameters of a URL; one may hold several expressions split by ';'."""
    return [part.strip() for text in raw for part in text.split(";") if part.strip()]


def _sort_link(links: Links, name: str, field: str, where: list[str], current: str | None) -> str:
    descending = current != f"-{field}"
    params = {"sort": f"-{field}" if descending else field}
    if where:
        params["where"] = "; ".join(where)
    return links.family(name, **params) or ""


def family(
    fam: data.Family,
    links: Links,
    everything: list[data.Family],
    where: Sequence[str] = (),
    sort: str | None = None,
    server: bool = True,
) -> Markup:
    """Versions table (filtered and sorted as ``list --where --sort``), a chart per metric,
    lineage across families."""
    exprs = where_list(where)
    problem = None
    try:
        shown = query.select(fam.rows, exprs or None, sort)
    except ModelregError as e:
        problem, shown = str(e), fam.rows
    metrics = fam.metrics()
    headers = _headers(fam.name, metrics, links, exprs, sort) if server else None
    rows = [_row(fam.name, r, metrics, links) for r in shown]
    parts: list[Any] = [
        el("h1", "Family ", el("code", fam.name)),
        el(
            "p",
            f"{plural(len(fam.rows), 'version')}; latest ",
            link(links.version(fam.name, fam.latest["version"]), fam.latest["version"]),
            f"; {human_bytes(fam.logical_bytes)} as plain copies",
            class_="muted",
        ),
    ]
    if metrics:
        parts.append(el("h2", "Metrics across versions"))
        parts.append(el("div", *(_chart(fam, m, links) for m in metrics), class_="charts"))
    parts.append(el("h2", "Versions"))
    if server:
        parts.append(_filter_form(links, fam.name, exprs, sort))
    if problem:
        parts.append(el("p", problem, class_="error", id="query-error"))
    elif exprs:
        parts.append(el("p", f"{len(shown):,} of {len(fam.rows):,} versions match", class_="muted"))
    plain = [c for c, _f in _columns(metrics)]
    parts.append(table(headers or plain, rows, id="versions"))
    parts.append(_lineage(fam, links, everything))
    return join(parts)


def _columns(metrics: list[str]) -> list[tuple[str, str | None]]:
    """(heading, the field it sorts by) of the versions table."""
    return (
        [("version", "version"), ("tags", None), ("registered", "registered_at"), ("size", "size")]
        + [(m, f"metrics.{m}") for m in metrics]
        + [("dataset", "dataset"), ("parent", "parent"), ("safety", None)]
    )


def _headers(
    name: str, metrics: list[str], links: Links, exprs: list[str], sort: str | None
) -> list[Any]:
    """Headings that sort the table (again: the other way), keeping the filter."""
    out: list[Any] = []
    for text, field in _columns(metrics):
        if field is None:
            out.append(text)
            continue
        arrow = " ▲" if sort == field else " ▼" if sort == f"-{field}" else ""
        out.append(link(_sort_link(links, name, field, exprs, sort), text + arrow))
    return out


def _row(name: str, r: Record, metrics: list[str], links: Links) -> list[Any]:
    parent = r.get("parent")
    recorded = r.get("metrics") or {}
    return [
        link(links.version(name, r["version"]), r["version"]),
        tags_html(r.get("tags") or []),
        utc_time(r.get("registered_at")).removesuffix(" UTC"),
        human_bytes(int(r.get("size") or 0)),
        *[metric_text(recorded[m]) if m in recorded else "" for m in metrics],
        r.get("dataset") or "",
        link(links.spec(str(parent)), parent) if parent else "",
        safety_html(r.get("inspect") or {}),
    ]


def _filter_form(links: Links, name: str, exprs: list[str], sort: str | None) -> Markup:
    hidden = el("input", type="hidden", name="sort", value=sort) if sort else ""
    return el(
        "form",
        el("label", "where ", for_="where"),
        el(
            "input",
            type="text",
            id="where",
            name="where",
            value="; ".join(exprs),
            placeholder="accuracy>=0.9; params.optimizer=adamw",
        ),
        hidden,
        " ",
        el("button", "filter", type="submit"),
        " ",
        el(
            "span",
            "same expressions as ",
            el("code", "modelreg list --where"),
            "; several are joined by ;",
            class_="muted",
        ),
        class_="where",
        method="get",
        action=links.family(name),
    )


def _chart(fam: data.Family, metric: str, links: Links) -> Markup:
    points = []
    for slot, r in enumerate(fam.rows):
        v = (r.get("metrics") or {}).get(metric)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            tags = [t for t in r.get("tags") or [] if t != "latest"]
            href = links.version(fam.name, r["version"])
            points.append(charts.Point(r["version"], float(v), slot, tags, href))
    return el(
        "figure", charts.metric_chart(metric, points, len(fam.rows)), el("figcaption", metric)
    )


def _lineage(fam: data.Family, links: Links, everything: list[data.Family]) -> Markup:
    """Where versions came from across families, and which versions elsewhere came from here."""
    mine = {data.label(r) for r in fam.rows}
    rows = []
    for r in fam.rows:
        parent = r.get("parent")
        if parent and not str(parent).startswith(f"{fam.name}@"):
            rows.append(
                [
                    link(links.version(fam.name, r["version"]), data.label(r)),
                    "derives from",
                    link(links.spec(str(parent)), parent),
                ]
            )
    for other in everything:
        if other.name == fam.name:
            continue
        for r in other.rows:
            if str(r.get("parent")) in mine:
                rows.append(
                    [
                        link(links.version(other.name, r["version"]), data.label(r)),
                        "derives from",
                        link(links.spec(str(r["parent"])), r["parent"]),
                    ]
                )
    first = fam.rows[0]
    chain = f"Each version's parent is in the table above; the first, {first['version']}, " + (
        f"derives from {first['parent']}." if first.get("parent") else "has none."
    )
    body: list[Any] = [el("h2", "Lineage"), el("p", chain, class_="muted")]
    if rows:
        body.append(table(["version", "", "parent"], rows, id="lineage"))
    else:
        body.append(el("p", "No links to other families.", class_="muted"))
    return join(body)


# --- storage --------------------------------------------------------------------------------
def storage(st: data.Storage, fams: list[data.Family], links: Links) -> Markup:
    s = st.stats
    summary = pairs(
        [
            ("families, versions", f"{s.families:,}, {s.versions:,}"),
            ("logical (as plain copies)", human_bytes(s.logical_bytes)),
            ("stored", human_bytes(s.stored_bytes)),
            ("dedup ratio", f"{s.dedup_ratio:.2f}x"),
            (".modelreg/ on disk", human_bytes(s.disk_bytes)),
            (
                "checkouts on disk",
                f"{human_bytes(s.checkout_bytes)} in {s.checkout_dir} "
                f"({plural(s.checked_out, 'version')})",
            ),
            ("gc would free", _gc_text(st)),
        ],
        id="storage-summary",
    )
    bars = [
        (data.label(r), int(r.get("size") or 0), s.freeable.get(data.label(r), 0))
        for f in fams
        for r in f.rows
    ]
    per_version = [
        [
            link(links.version(r["name"], r["version"]), data.label(r)),
            human_bytes(int(r.get("size") or 0)),
            human_bytes(s.freeable.get(data.label(r), 0)),
        ]
        for f in fams
        for r in f.rows
    ]
    checkouts = [
        [
            link(links.version(m.name, m.version), m.label) if m.registered else m.label,
            human_bytes(m.bytes),
            utc_time(_iso(m.last_used)),
            ", ".join(m.modified) or "",
            "" if m.registered else "not in the registry",
        ]
        for m in st.checkouts
    ]
    return join(
        [
            el("h1", "Storage"),
            summary,
            el("h2", "Per version"),
            el(
                "p",
                "Logical: the version as a plain copy. Stored for it alone: what ",
                el("code", "rm"),
                " then ",
                el("code", "gc"),
                " would free (bytes it shares with another version stay).",
                class_="muted",
            ),
            charts.storage_bars(bars[:40]) if bars else "",
            table(["version", "logical", "stored for it alone"], per_version, id="per-version"),
            el("h2", "Checkouts"),
            table(
                ["version", "on disk", "last used", "edited files", ""], checkouts, id="checkouts"
            )
            if checkouts
            else el("p", "Nothing is checked out.", class_="muted"),
        ]
    )


def _gc_text(st: data.Storage) -> str:
    s = st.stats
    return f"{human_bytes(s.unused_bytes)} ({plural(s.unused_objects, 'object')} no version uses)"


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat()
