"""Telling a user that what they registered is already there.

Two levels: the *same content* (byte-identical file or folder) and the *same tensors* (every
tensor's name, dtype, shape and bytes equal, only headers differ: what ``torch.save`` of the
same state dict twice gives). The version is made either way; this only says so.

The search covers the new version's family and its parent's family, which is where a
duplicate comes from in practice, and reads them from the version index; tensor tables are
read only for versions whose tensor and parameter counts already match.
"""

from __future__ import annotations

from typing import Any

from .diff import tensors_of
from .errors import ModelregError
from .repo import Record, Repository

SAME_CONTENT = "same content"
SAME_TENSORS = "same tensors"


def _signature(repo: Repository, rec: Record) -> dict[str, Any]:
    return {name: (t.dtype, t.shape, t.key) for name, t in tensors_of(repo, rec).items()}


def _counts(rec: Record) -> tuple[Any, Any]:
    info = rec.get("inspect") or {}
    return info.get("tensors"), info.get("parameters")


def find_same(repo: Repository, rec: Record) -> tuple[str, str] | None:
    """(``SAME_CONTENT`` or ``SAME_TENSORS``, 'name@vN') of an earlier version, or None."""
    families = [rec["name"]]
    parent = rec.get("parent") or ""
    if "@" in parent and parent.partition("@")[0] not in families:
        families.append(parent.partition("@")[0])
    candidates: list[tuple[str, Record]] = []
    this = f"{rec['name']}@{rec['version']}"
    for family in families:
        # from the version index: one read per family, not one record object per version
        try:
            others = list(repo.versions(family))
        except ModelregError:
            continue  # a damaged record is fsck's to report, not register's
        for other in reversed(others):
            label = f"{family}@{other['version']}"
            if label == this:
                continue
            if other.get("content_hash") == rec.get("content_hash"):
                return SAME_CONTENT, label
            candidates.append((label, other))
    tensors, _params = _counts(rec)
    if not tensors:
        return None
    mine: dict[str, Any] | None = None
    for label, other in candidates:
        if _counts(other) != _counts(rec):
            continue
        try:
            mine = mine if mine is not None else _signature(repo, rec)
            if _signature(repo, other) == mine:
                return SAME_TENSORS, label
        except ModelregError:
            continue
    return None
