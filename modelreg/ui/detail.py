"""The version page (every recorded field, params, card, safety, files, tensors, what it
added to the store) and the compare page (metadata and metric deltas, tensor diff, bytes
shared)."""

from __future__ import annotations

from typing import Any

from .. import modelinfo
from ..repo import Record, Repository
from ..schema import FIELDS
from ..words import human_bytes, plural, utc_time, value
from . import data, markdown
from .html import Markup, el, esc, join, link, pairs, table
from .pages import Links, metric_text, tags_html

SHOWN_APART = ("metrics", "params", "inspect", "tags", "description")


def _field(key: str, v: Any, links: Links) -> Any:
    if key == "parent" and v:
        return link(links.spec(str(v)), v)
    if key == "registered_at":
        return utc_time(v)
    if key == "size" and isinstance(v, int):
        return f"{human_bytes(v)} ({v:,} bytes)"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return value(v, width=10_000)


def safety_banner(rec: Record) -> Markup:
    info = rec.get("inspect") or {}
    line = modelinfo.verdict_line(data.label(rec), info)
    if not line:
        return esc("")
    kind = "warn" if info.get("safety") == modelinfo.UNKNOWN else "bad"
    word = "Could not be checked" if kind == "warn" else "Not safe to load"
    return el(
        "div",
        el("div", f"{word}: load() refuses it without trust=True"),
        el("div", line, style="font-weight:400"),
        class_=f"banner {kind}",
        id="safety",
        role="alert",
    )


def version(
    repo: Repository, rec: Record, rows: list[Record], links: Links, kids: list[str]
) -> Markup:
    name, ver = rec["name"], rec["version"]
    info = rec.get("inspect") or {}
    fields = [(k, _field(k, rec.get(k), links)) for k in FIELDS if k not in SHOWN_APART]
    fields = [(k, v) for k, v in fields if rec.get(k) not in (None, "", [], {})]
    extra = sorted(k for k in rec if k not in FIELDS and k not in ("type", "card", "schema"))
    fields += [(k, value(rec[k], width=10_000)) for k in extra]
    if kids:
        fields.append(("children", join((link(links.spec(k), k) for k in kids), ", ")))
    parts: list[Any] = [
        el("h1", el("code", f"{name}@{ver}"), " ", tags_html(rec.get("tags") or [])),
        el("p", link(links.family(name), f"all versions of {name}"), class_="muted"),
        safety_banner(rec),
    ]
    if rec.get("description"):
        parts.append(el("p", rec["description"], class_="desc", id="description"))
    parts.append(el("h2", "Fields"))
    parts.append(pairs(fields, id="fields"))
    metrics = rec.get("metrics") or {}
    params = rec.get("params") or {}
    if metrics:
        parts += [
            el("h2", "Metrics"),
            pairs([(k, metric_text(v)) for k, v in metrics.items()], id="metrics"),
        ]
    if params:
        parts += [
            el("h2", "Params"),
            pairs([(k, value(v, 10_000)) for k, v in params.items()], id="params"),
        ]
    card = data.card_text(repo, rec)
    if card and card.strip():
        parts += [
            el("h2", "Model card"),
            el("div", markdown.render(card), class_="card", id="card"),
        ]
    parts += [el("h2", "Contents"), pairs(_inspect_rows(info), id="inspect")]
    parts += [
        el("h2", "Files"),
        table(
            ["path", "size", "hash"],
            [[p, human_bytes(s), el("code", h)] for p, s, h in data.files(repo, rec)],
            id="files",
        ),
    ]
    t = data.tensors(repo, rec)
    parts.append(el("h2", "Tensors"))
    if t.problem:
        parts.append(el("p", t.problem, class_="error"))
    elif not t.total:
        parts.append(el("p", "No tensor table (not a recognised model format).", class_="muted"))
    else:
        more = f" (the first {len(t.rows):,} shown)" if t.total > len(t.rows) else ""
        parts.append(el("p", f"{plural(t.total, 'tensor')}{more}", class_="muted"))
        parts.append(table(["name", "dtype", "shape"], t.rows, id="tensors"))
    added = data.added(repo, rec, rows)
    against = ", ".join(added.against) or "nothing (no parent or earlier version left)"
    parts += [
        el("h2", "What it added to the store"),
        pairs(
            [
                ("compared with", against),
                ("new chunks", f"{added.new_chunks:,} of {added.chunks:,}"),
                (
                    "new bytes",
                    f"{human_bytes(added.new_bytes)} of {human_bytes(int(rec.get('size') or 0))}",
                ),
                ("stored as", human_bytes(added.stored_new)),
            ],
            id="added",
        ),
    ]
    if rec.get("parent"):
        parts.append(
            el(
                "p",
                link(
                    links.compare(str(rec["parent"]), data.label(rec)),
                    f"compare with its parent {rec['parent']}",
                ),
            )
        )
    return join(parts)


def _inspect_rows(info: dict[str, Any]) -> list[tuple[str, Any]]:
    from .pages import safety_html

    rows: list[tuple[str, Any]] = [
        ("format", info.get("format") or "unknown"),
        ("safety", safety_html(info) or "n/a"),
    ]
    for key in ("tensors", "parameters"):
        if info.get(key) is not None:
            rows.append((key, f"{int(info[key]):,}"))
    if info.get("dtypes"):
        rows.append(("dtypes", ", ".join(str(d) for d in info["dtypes"])))
    if info.get("model_files"):
        rows.append(("model files", value(info["model_files"], 10_000)))
    if info.get("unsafe_globals"):
        rows.append(("flagged globals", modelinfo.flagged_globals(info)))
    return rows


def compare_form(links: Links, a: str = "", b: str = "") -> Markup:
    return el(
        "form",
        el("label", "A ", el("input", type="text", name="a", value=a, placeholder="NAME@REF")),
        " ",
        el("label", "B ", el("input", type="text", name="b", value=b, placeholder="NAME@REF")),
        " ",
        el("button", "compare", type="submit"),
        method="get",
        action="/compare",
        class_="where",
    )


def compare(c: data.Compared, links: Links) -> Markup:
    d = c.result
    parts: list[Any] = [
        el(
            "h1",
            "Compare ",
            link(links.spec(d["a"]), d["a"]),
            " → ",
            link(links.spec(d["b"]), d["b"]),
        ),
    ]
    share = c.shared_bytes / c.b_bytes if c.b_bytes else 0.0
    parts.append(
        el(
            "p",
            f"{human_bytes(c.shared_bytes)} of {d['b']}'s "
            f"{human_bytes(c.b_bytes)} are chunks {d['a']} also holds "
            f"({share:.0%} shared).",
            id="shared",
        )
    )
    parts.append(el("h2", "Metadata"))
    if d["metadata"]:
        parts.append(
            table(
                ["field", d["a"], d["b"]],
                [[k, value(v[0], 200), value(v[1], 200)] for k, v in d["metadata"].items()],
                id="metadata",
            )
        )
    else:
        parts.append(el("p", "No differences.", class_="muted"))
    parts.append(el("h2", "Metrics"))
    if d["metrics"]:
        rows = []
        for key, m in d["metrics"].items():
            delta = m["delta"]
            shown = "" if delta is None else f"{delta:+.4g}"
            cls = "" if not delta else "added" if delta > 0 else "removed"
            rows.append(
                [
                    key,
                    metric_text(m["a"]) if m["a"] is not None else "",
                    metric_text(m["b"]) if m["b"] is not None else "",
                    el("span", shown, class_=cls),
                ]
            )
        parts.append(table(["metric", d["a"], d["b"], "delta"], rows, id="metric-deltas"))
    else:
        parts.append(el("p", "No differences.", class_="muted"))
    if "files" in d:
        f = d["files"]
        rows = [[el("span", "~ changed", class_="changed"), n] for n in f["changed"]]
        rows += [[el("span", "+ added", class_="added"), n] for n in f["added"]]
        rows += [[el("span", "- removed", class_="removed"), n] for n in f["removed"]]
        parts += [el("h2", "Files"), table(["", "path"], rows, id="file-diff")]
    if "tensors" in d:
        t = d["tensors"]
        parts.append(el("h2", "Tensors"))
        parts.append(
            el(
                "p",
                f"{len(t['changed']):,} changed, {len(t['added']):,} added, "
                f"{len(t['removed']):,} removed, {t['unchanged']:,} unchanged",
                id="tensor-counts",
            )
        )
        rows = []
        for x in t["changed"]:
            how = (
                "values"
                if x["change"] == "values"
                else (
                    f"{x['dtype'][0]}{list(x['shape'][0])} → {x['dtype'][1]}{list(x['shape'][1])}"
                )
            )
            rows.append([el("span", "~ changed", class_="changed"), x["name"], how])
        rows += [
            [el("span", "+ added", class_="added"), x["name"], f"{x['dtype']}{list(x['shape'])}"]
            for x in t["added"]
        ]
        rows += [
            [
                el("span", "- removed", class_="removed"),
                x["name"],
                f"{x['dtype']}{list(x['shape'])}",
            ]
            for x in t["removed"]
        ]
        if rows:
            parts.append(table(["", "tensor", "what"], rows, id="tensor-diff"))
    return join(parts)


HISTORY_ORDER = ("at", "tag", "op", "from", "to", "by", "host", "message", "forced")


def tag_history(entries: list[dict[str, Any]] | None) -> Markup:
    """The journal of tag moves, whatever keys its entries have: the usual ones first."""
    if not entries:
        return esc("")
    found = {k for e in entries for k in e}
    keys = [k for k in HISTORY_ORDER if k in found] + sorted(found - set(HISTORY_ORDER))

    def cell(key: str, v: Any) -> str:
        if v is None or v == "":
            return ""
        return utc_time(v) if key == "at" else value(v, 200)

    rows = [[cell(k, e.get(k)) for k in keys] for e in entries]
    return join([el("h2", "Tag history"), table(keys, rows, id="tag-history")])
