"""The public shape of a version (schema 1, docs/cli.md): its keys and their empty values.

Apart from views.py so that the version index, which stores each version in this shape, can
use it without importing the registry."""

from __future__ import annotations

from typing import Any

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
    "registered_by": None,
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


def public_fields(rec: dict[str, Any]) -> dict[str, Any]:
    """Every schema key of ``rec``, an unset one as its empty value."""
    out: dict[str, Any] = {}
    for key, empty in FIELDS.items():
        value = rec.get(key)
        out[key] = (
            (type(empty)() if isinstance(empty, (dict, list)) else None) if value is None else value
        )
    return out
