"""The one walk of the objects a version needs: pull, push, ``fsck --repair``, ``fsck``,
``gc`` and ``stats`` all go through ``needed_objects``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from .cards import MAX_CARD_BYTES
from .errors import MalformedObjectError
from .model import FileManifest, JsonStore, Tree, VersionRecord, named

# A manifest of a 100 GB file with 4 MiB chunks is about 3 MB, a tree of 100,000 files about
# 20 MB: a record, tree or manifest above this was not made by modelreg.
MAX_STRUCTURED_BYTES = 64 << 20


class SizedStore(JsonStore, Protocol):
    def size(self, oid: str) -> int: ...


def read_json(store: SizedStore, oid: str) -> Any:
    """A structured object's JSON, refused unread when it is too large to be one (it may
    have come from elsewhere)."""
    if store.size(oid) > MAX_STRUCTURED_BYTES:
        raise MalformedObjectError(
            f"object {oid} is larger than {MAX_STRUCTURED_BYTES >> 20} MiB, too large for a "
            "record, tree or manifest"
        )
    try:
        return store.get_json(oid)
    except ValueError:
        raise MalformedObjectError(f"object {oid} is not JSON") from None


def needed_objects(
    store: SizedStore,
    record_oid: str,
    need: Callable[[str], bool],
    limits: dict[str, int] | None = None,
    chunks: bool = True,
) -> None:
    """Call ``need`` on every object one version needs (record, model card, manifest or
    tree, the tree's manifests, chunks), parsing each structured one on the way. It
    descends only where ``need`` returns True (the object is here). A malformed object
    raises MalformedObjectError naming it; an unreadable one, the store's error. ``limits``, when
    given, learns the most bytes each object may have before ``need`` is asked for it: a
    chunk's length in its manifest, ``MAX_STRUCTURED_BYTES`` for a record, tree or manifest,
    ``MAX_CARD_BYTES`` for a card (so pull can stop reading a remote's object past it).
    Without ``chunks``, the walk stops at the manifests (what a lazy clone fetches)."""
    bounds = limits if limits is not None else {}

    def needs(oid: str, limit: int) -> bool:
        bounds[oid] = max(bounds.get(oid, 0), limit)
        return need(oid)

    if not needs(record_oid, MAX_STRUCTURED_BYTES):
        return
    rec = named(record_oid, VersionRecord.parse, read_json(store, record_oid))
    if rec.card is not None:
        needs(rec.card, MAX_CARD_BYTES)
    if not needs(rec.root, MAX_STRUCTURED_BYTES):
        return
    body = read_json(store, rec.root)
    shown = body.get("type") if isinstance(body, dict) else type(body).__name__
    if shown != rec.root_type:
        raise MalformedObjectError(
            f"object {record_oid} is not a well-formed version record: its kind is {rec.kind} "
            f"but its root {rec.root} is a {shown!r:.20}, not a {rec.root_type}"
        )
    manifests = named(rec.root, Tree.parse, body).manifest_ids() if rec.is_dir else [rec.root]
    for m in manifests:
        if m != rec.root and not needs(m, MAX_STRUCTURED_BYTES):
            continue
        raw = body if m == rec.root else read_json(store, m)
        manifest = named(m, FileManifest.parse, raw)
        if not chunks:
            continue
        for chunk in manifest.chunks():
            needs(chunk.oid, chunk.length)
