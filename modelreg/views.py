"""How a version is shown: the one shape that every output uses (``list``, ``show``, ``log``
and ``register --json``, and the dicts the Python API returns), the table of ``list`` and
``summary``, and the warnings ``register`` gives.

Every key is always present (``None``, ``{}`` or ``[]`` when unset), so a script never has to
ask whether a key exists; ``schema`` says which shape this is (docs/cli.md describes it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import checkout, modelinfo, names
from .errors import CorruptObjectError
from .index import FamilyIndex, IndexDamaged
from .model import VersionRecord
from .repo import Record, Repository
from .schema import FIELDS, SCHEMA, public_fields
from .words import clean, human_bytes, utc_time

__all__ = [
    "FIELDS",
    "SCHEMA",
    "auto_gc_warning",
    "card_text",
    "format_warning",
    "json_families",
    "json_rows",
    "public_fields",
    "summary_table",
    "unsafe_warning",
    "version_view",
]


def version_view(
    repo: Repository, rec: Record, checkout_root: Path | None = None
) -> dict[str, Any]:
    """``rec`` (a record with its tags) in the public shape, with where it is checked out."""
    view: dict[str, Any] = {"schema": SCHEMA, **public_fields(rec)}
    target = checkout.destination(repo, rec, checkout_root)
    view["file_path"] = str(target)
    view["checked_out"] = target.exists()
    return view


def card_text(repo: Repository, rec: Record) -> str | None:
    """The version's model card (``show`` and ``get()`` carry it as ``card``); None when
    it has none."""
    oid = rec.get("card")
    if not oid:
        return None
    try:
        return repo.objects.get(oid).decode("utf-8")
    except UnicodeDecodeError:
        raise CorruptObjectError(
            f"{rec['name']}@{rec['version']}: its model card {oid} is not UTF-8 text"
        ) from None


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


def unsafe_warning(rec: Record) -> str | None:
    """The register warning for a version that is not safe to load, naming how bad it is."""
    line = modelinfo.verdict_line(f"{rec['name']}@{rec['version']}", rec.get("inspect") or {})
    return f"{line}; load() refuses it without trust=True" if line else None


RECOGNISED = ("torch-zip", "torchscript", "torch-legacy", "safetensors", "pickle", "gguf", "onnx")


def format_warning(rec: Record) -> str | None:
    """Said when nothing in a version was recognised as a model file: it is still stored,
    but as plain bytes, with no tensor table, safety check or tensor-level dedup."""
    info = rec.get("inspect") or {}
    if VersionRecord.of_view(rec).is_dir:
        if info.get("model_files"):
            return None
        what = f"{rec['source']}/ holds no file"
    else:
        if info.get("format") in RECOGNISED:
            return None
        what = f"{rec['source']} is not a file"
    return (
        f"{what} in a recognised model format (torch checkpoint, safetensors, GGUF, ONNX); "
        "stored as plain bytes"
    )


def summary_table(rows: list[dict[str, Any]]) -> str:
    headers = ["NAME", "VERSION", "TAGS", "SIZE", "METRICS", "REGISTERED (UTC)"]
    table = [headers]
    for r in rows:
        metrics = " ".join(f"{k}={v}" for k, v in sorted((r.get("metrics") or {}).items()))
        table.append(
            [
                r["name"],
                r["version"],
                ",".join(r.get("tags") or []),
                human_bytes(r["size"]),
                metrics,
                utc_time(r.get("registered_at")).removesuffix(" UTC"),
            ]
        )
    table = [[clean(cell) for cell in row] for row in table]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    )


def auto_gc_warning(repo: Repository) -> str | None:
    """Said when the write succeeded but the repack after it failed."""
    if repo.auto_gc_failure is None:
        return None
    return (
        f"gc --auto could not repack the store ({repo.auto_gc_failure}); the write is done, "
        "but loose objects pile up until 'modelreg fsck' and 'modelreg gc' succeed"
    )
