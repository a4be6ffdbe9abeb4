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
from .schema import FIELDS, SCHEMA, public_fields

__all__ = ["FIELDS", "SCHEMA", "public_fields", "version_view"]


def version_view(
    repo: Repository, rec: Record, checkout_root: Path | None = None
) -> dict[str, Any]:
    """``rec`` (a record with its tags) in the public shape, with where it is checked out."""
    view: dict[str, Any] = {"schema": SCHEMA, **public_fields(rec)}
    target = checkout.destination(repo, rec, checkout_root)
    view["file_path"] = str(target)
    view["checked_out"] = target.exists()
    return view
