"""The one shape of a version that every output uses: ``list``, ``show``, ``log`` and
``register --json``, and the dicts the Python API returns.

Every key is always present (``None``, ``{}`` or ``[]`` when unset), so a script never has to
ask whether a key exists; ``schema`` says which shape this is (docs/cli.md describes it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import checkout
from .repo import Record, Repository

SCHEMA = 1

# key -> the value it has when a record does not set it
FIELDS: dict[str, Any] = {
    "name": None,
    "version": None,
    "tags": [],
    "kind": None,
    "format": None,
    "source": None,
    "size": None,
    "content_hash": None,
    "root": None,
    "parent": None,
    "registered_at": None,
    "framework": None,
    "dataset": None,
    "architecture": None,
    "input_shape": None,
    "description": None,
    "metrics": {},
    "params": {},
    "git_commit": None,
    "git_dirty": None,
    "inspect": {},
}


def version_view(
    repo: Repository, rec: Record, checkout_root: Path | None = None
) -> dict[str, Any]:
    """``rec`` (a record with its tags) in the public shape, with where it is checked out."""
    view: dict[str, Any] = {"schema": SCHEMA}
    for key, empty in FIELDS.items():
        value = rec.get(key)
        view[key] = (
            (type(empty)() if isinstance(empty, (dict, list)) else None)
            if (value is None)
            else value
        )
    target = checkout.destination(repo, rec, checkout_root)
    view["file_path"] = str(target)
    view["checked_out"] = target.exists()
    return view
