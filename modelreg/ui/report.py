"""``modelreg report``: the UI's views as one self-contained HTML file (inline CSS, SVG
charts, no script, nothing fetched from anywhere) to attach to a pull request or an e-mail.
Links between its parts are anchors; a version the report leaves out is named, not linked."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from .. import names
from ..errors import NotFoundError
from ..repo import Repository
from . import data, detail, pages
from .html import el, join, page

VERSIONS_IN_FULL = 50  # per family: the newest this many (and every tagged one) get a page


class ReportLinks(pages.Links):
    def __init__(self, families: set[str], versions: set[str]) -> None:
        self.families = families
        self.versions = versions

    def home(self) -> str | None:
        return "#families"

    def family(self, name: str, **params: str) -> str | None:
        return f"#m-{name}" if name in self.families else None

    def version(self, name: str, version: str) -> str | None:
        label = f"{name}@{version}"
        return f"#v-{label}" if label in self.versions else None

    def compare(self, a: str, b: str) -> str | None:
        return None

    def storage(self) -> str | None:
        return "#storage"

    def nav(self) -> list[tuple[str, str]]:
        return []


def _in_full(fam: data.Family) -> list[Any]:
    newest = fam.rows[-VERSIONS_IN_FULL:]
    tagged = [r for r in fam.rows[:-VERSIONS_IN_FULL] if r.get("tags")]
    return tagged + newest


def build(repo: Repository, wanted: Sequence[str] = ()) -> str:
    """The report of the families ``wanted`` (default: all) as one HTML document."""
    for name in wanted:
        names.check_family(name)
        repo.check_family_exists(name)
    everything = data.families(repo)
    fams = [f for f in everything if not wanted or f.name in wanted]
    full = {f.name: _in_full(f) for f in fams}
    links = ReportLinks(
        {f.name for f in fams}, {data.label(r) for rows in full.values() for r in rows}
    )
    kids = data.children(everything)
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts: list[Any] = [
        el("p", f"modelreg report of {repo.root}, made {when}", class_="muted"),
        el("section", pages.home(fams, links), id="families"),
    ]
    for fam in fams:
        body = pages.family(fam, links, everything, server=False)
        history = detail.tag_history(data.tag_history(repo, fam.name))
        parts.append(el("section", body, history, class_="page", id=f"m-{fam.name}"))
        left_out = len(fam.rows) - len(full[fam.name])
        if left_out:
            parts.append(
                el(
                    "p",
                    f"{left_out:,} older untagged versions of {fam.name} are in the table only.",
                    class_="muted",
                )
            )
        for row in full[fam.name]:
            rec = repo.lookup(data.label(row))
            body = detail.version(repo, rec, fam.rows, links, kids.get(data.label(rec), []))
            parts.append(el("section", body, class_="page", id=f"v-{data.label(rec)}"))
        parent = fam.latest.get("parent")
        if parent:
            try:
                compared = data.compare(repo, str(parent), data.label(fam.latest))
            except NotFoundError:
                continue  # the parent was removed: there is nothing to compare with
            parts.append(el("section", detail.compare(compared, links), class_="page"))
    storage = pages.storage(data.storage(repo), fams, links)
    parts.append(el("section", storage, class_="page", id="storage"))
    return str(page("modelreg report", join(parts)))
