"""The one shape of a version that every output uses: ``list``, ``show``, ``log`` and
``register --json``, and the dicts the Python API returns.

Every key is always present (``None``, ``{}`` or ``[]`` when unset), so a script never has to
ask whether a key exists; ``schema`` says which shape this is (docs/cli.md describes it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import checkout, names
from .index import FamilyIndex, IndexDamaged
from .repo import Record, Repository
from .schema import FIELDS, SCHEMA, public_fields

__all__ = ["FIELDS", "SCHEMA", "json_families", "json_rows", "public_fields", "version_view"]


def version_view(
    repo: Repository, rec: Record, checkout_root: Path | None = None
) -> dict[str, Any]:
    """``rec`` (a record with its tags) in the public shape, with where it is checked out."""
    view: dict[str, Any] = {"schema": SCHEMA, **public_fields(rec)}
    target = checkout.destination(repo, rec, checkout_root)
    view["file_path"] = str(target)
    view["checked_out"] = target.exists()
    return view


def json_rows(repo: Repository, name: str | None = None) -> Iterator[str]:
    """``version_view`` of every version (of one family, or of all) as compact JSON, one
    string each, spliced from the index's stored public fields without parsing them: what
    makes ``list --json`` of 100,000 versions take well under a second. Same keys and values
    as ``json.dumps(version_view(...))``; the keys are in another order."""
    for rows in json_families(repo, name):
        yield from rows


def json_families(repo: Repository, name: str | None = None) -> Iterator[list[str]]:
    """``json_rows``, one list per family. A missing ``name`` is refused here, before the
    first family is asked for (so before a caller has printed anything)."""
    if name is not None:
        repo.check_family_exists(name)
    return _json_families(repo, [name] if name is not None else repo.refs.families())


def _json_families(repo: Repository, families: list[str]) -> Iterator[list[str]]:
    root = str(repo.checkout_root)
    root_json = json.dumps(root, ensure_ascii=False)[1:-1]
    for family in families:
        rows = repo.from_index(family, lambda index: list(_spliced(index, root, root_json)))
        if rows is None:
            rows = [
                json.dumps(version_view(repo, rec), ensure_ascii=False, default=str)
                for rec in repo.versions(family)
            ]
        yield rows


def _spliced(index: FamilyIndex, root: str, root_json: str) -> Iterator[str]:
    try:
        present = {e.name for e in os.scandir(os.path.join(root, index.name))}
    except OSError:
        present = set()
    latest = index.latest()
    tagged: dict[str, list[str]] = {}
    for tag, version in sorted(index.tags.items()):
        tagged.setdefault(version, []).append(tag)
    if latest is not None:
        tagged[latest] = [names.LATEST, *tagged.get(latest, [])]
    tags_json = {version: json.dumps(tags) for version, tags in tagged.items()}
    lead = f'"file_path":"{root_json}/'
    for num, fields, path in index.pieces():
        version = f"v{num}"
        if not path:
            raise IndexDamaged  # a source that is not a safe name: the slow path says so
        rel = path.decode()
        checked = "true" if version in present and os.path.exists(f"{root}/{rel}") else "false"
        if '"' in rel or "\\" in rel:
            rel = json.dumps(rel, ensure_ascii=False)[1:-1]
        yield (
            f'{{"checked_out":{checked},{lead}{rel}","schema":{SCHEMA},'
            f'"tags":{tags_json.get(version, "[]")},{fields[1:].decode()}'
        )
