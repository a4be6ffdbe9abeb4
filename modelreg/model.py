"""The structured objects, typed: file manifests, trees and version records.

The one place that parses them. Each class's ``parse`` takes the JSON a store holds and
checks every field a reader relies on (raising MalformedObjectError saying what is wrong; the
caller says where the object came from); ``to_json`` gives back the very dict it was parsed
from, so its canonical bytes, and its id, never change. Keys a class does not know are kept
(``extra``) and written back: a newer modelreg's fields survive an older one's round trip.

The one walk of the objects a version needs, built on these, is ``walk.needed_objects``.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Protocol, TypeVar

from . import names
from ._fs import check_relpath
from .errors import MalformedObjectError, ModelregError, UnsafePathError
from .hashing import is_oid, new_hasher
from .metadata import USER_FIELDS, check_stored, has_control

Kind = Literal["file", "dir"]
Json = dict[str, Any]
T = TypeVar("T")


class JsonStore(Protocol):
    """What reading structured objects needs of an object store."""

    def get_json(self, oid: str) -> Any: ...


def _malformed(what: str, why: str) -> MalformedObjectError:
    return MalformedObjectError(f"not a well-formed {what}: {why}")


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _oid(value: object) -> bool:
    return isinstance(value, str) and is_oid(value)


def _extra(obj: Mapping[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in known}


def inline_size(encoded: str) -> int:
    """Bytes an inline (base64) part decodes to, without decoding it."""
    return len(encoded) // 4 * 3 - encoded[-2:].count("=")


# --- file manifests --------------------------------------------------------------------------


class Inline(NamedTuple):  # tuples: a manifest holds thousands of parts, made fast
    """A piece of at most ``inline_max`` bytes kept inside the manifest, base64."""

    b64: str

    def to_json(self) -> Json:
        return {"b": self.b64}


class Chunk(NamedTuple):
    """A piece kept as its own object."""

    oid: str
    length: int

    def to_json(self) -> Json:
        return {"o": self.oid, "n": self.length}


@dataclass(frozen=True)
class FileManifest:
    """The pieces of one file in order, its whole hash, its format and the named spans
    (tensor records) the chunker found."""

    size: int
    hash: str
    format: str
    parts: tuple[Inline | Chunk, ...]
    spans: tuple[tuple[str, int, int], ...] | None = None  # None: not stored
    extra: Mapping[str, Any] = field(default_factory=dict)

    KEYS = ("type", "size", "hash", "format", "parts", "spans")

    @classmethod
    def parse(cls, obj: object) -> FileManifest:
        """Typed fields, parts that are inline base64 or (chunk id, length) and add up to
        ``size``, spans inside the file. Content is not read here; ``hash`` is checked
        against the chunks by whoever rebuilds the file."""
        what = "file manifest"
        if not isinstance(obj, dict) or obj.get("type") != "file":
            raise _malformed(what, "it is not a file manifest")
        size, whole = obj.get("size"), obj.get("hash")
        if not _whole(size) or not _oid(whole):
            raise _malformed(what, "its size or hash is missing or malformed")
        if not isinstance(obj.get("format"), str):
            raise _malformed(what, "its format is not text")
        raw_parts = obj.get("parts")
        if not isinstance(raw_parts, list):
            raise _malformed(what, "its parts are not a list")
        parts: list[Inline | Chunk] = []
        total = 0
        for part in raw_parts:
            if isinstance(part, dict) and set(part) == {"b"} and isinstance(part["b"], str):
                try:
                    base64.b64decode(part["b"], validate=True)
                except ValueError:
                    raise _malformed(what, "an inline part is not base64") from None
                total += inline_size(part["b"])
                parts.append(Inline(part["b"]))
            elif (
                isinstance(part, dict)
                and set(part) == {"o", "n"}
                and _oid(part["o"])
                and _whole(part["n"])
            ):
                total += part["n"]
                parts.append(Chunk(part["o"], part["n"]))
            else:
                raise _malformed(what, f"a part is neither inline bytes nor a chunk: {part!r:.80}")
        if total != size:
            raise _malformed(what, f"its parts add up to {total} bytes, not its size {size}")
        raw_spans = obj.get("spans")
        spans = None
        if "spans" in obj:
            if not isinstance(raw_spans, list):
                raise _malformed(what, f"its spans are not a list: {raw_spans!r:.80}")
            spans = tuple(_span(span, total) for span in raw_spans)
        return cls(size, obj["hash"], obj["format"], tuple(parts), spans, _extra(obj, cls.KEYS))

    def to_json(self) -> Json:
        out: Json = {
            **self.extra,
            "type": "file",
            "size": self.size,
            "hash": self.hash,
            "format": self.format,
            "parts": [p.to_json() for p in self.parts],
        }
        if self.spans is not None:
            out["spans"] = [list(s) for s in self.spans]
        return out

    def chunks(self) -> list[Chunk]:
        return [p for p in self.parts if isinstance(p, Chunk)]

    def chunk_ids(self) -> list[str]:
        return [p.oid for p in self.parts if isinstance(p, Chunk)]


def _span(span: object, total: int) -> tuple[str, int, int]:
    if (
        isinstance(span, list)
        and len(span) == 3
        and isinstance(span[0], str)
        and _whole(span[1])
        and _whole(span[2])
        and span[1] + span[2] <= total
    ):
        return span[0], span[1], span[2]
    raise _malformed("file manifest", f"a span is malformed or outside the file: {span!r:.80}")


# --- trees -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TreeEntry:
    """One file of a directory model: its manifest, and that manifest's size and hash."""

    manifest: str
    size: int
    hash: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    KEYS = ("manifest", "size", "hash")

    def to_json(self) -> Json:
        return {**self.extra, "manifest": self.manifest, "size": self.size, "hash": self.hash}


def tree_hash(entries: Mapping[str, Any]) -> str:
    """A tree's ``hash``: of each path and its file's hash, in path order. ``entries`` maps
    each path to anything with a ``hash`` (a TreeEntry, or its JSON)."""
    whole = new_hasher()
    for rel in sorted(entries):
        entry = entries[rel]
        digest = entry.hash if isinstance(entry, TreeEntry) else entry["hash"]
        whole.update(f"{rel}\0{digest}\n".encode())
    return whole.hexdigest()


@dataclass(frozen=True)
class Tree:
    """Each relative path of a directory model -> the manifest of that file."""

    entries: Mapping[str, TreeEntry]
    size: int
    hash: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    KEYS = ("type", "entries", "size", "hash")

    @classmethod
    def parse(cls, obj: object) -> Tree:
        """Safe relative paths, entries naming manifests with a size and hash, and a size
        and hash that are the ones the entries give."""
        what = "tree"
        if not isinstance(obj, dict) or obj.get("type") != "tree":
            raise _malformed(what, "it is not a tree")
        raw = obj.get("entries")
        if not isinstance(raw, dict):
            raise _malformed(what, "its entries are not a mapping")
        entries: dict[str, TreeEntry] = {}
        for rel, e in raw.items():
            try:
                check_relpath(rel)
            except UnsafePathError as unsafe:  # its words say how it is unsafe: checkout shows them
                raise _malformed(what, f"it has an unsafe path: {unsafe.args[0]:.200}") from None
            if not (
                isinstance(e, dict)
                and _oid(e.get("manifest"))
                and _whole(e.get("size"))
                and _oid(e.get("hash"))
            ):
                raise _malformed(what, f"the entry of {rel!r:.80} is malformed")
            entries[rel] = TreeEntry(e["manifest"], e["size"], e["hash"], _extra(e, TreeEntry.KEYS))
        if obj.get("size") != sum(e.size for e in entries.values()):
            raise _malformed(what, "its size is not the sum of its files' sizes")
        if obj.get("hash") != tree_hash(entries):
            raise _malformed(what, "its hash is not the one its entries give")
        return cls(entries, obj["size"], obj["hash"], _extra(obj, cls.KEYS))

    def to_json(self) -> Json:
        return {
            **self.extra,
            "type": "tree",
            "entries": {rel: e.to_json() for rel, e in self.entries.items()},
            "size": self.size,
            "hash": self.hash,
        }

    def manifest_ids(self) -> list[str]:
        return [e.manifest for e in self.entries.values()]


# --- version records -------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionRecord:
    """One version: what it is (``kind``, ``root``: its manifest or tree, with that
    object's size, hash and format), where it came from, and its metadata."""

    name: str
    version: str
    kind: Kind
    root: str
    size: int
    content_hash: str
    format: str
    source: str  # the file or folder name it was registered from
    registered_at: str
    parent: str | None = None
    inspect: Mapping[str, Any] | None = None  # None: made before records had a summary
    card: str | None = None  # the object id of its model card (cards.py)
    metadata: Mapping[str, Any] = field(default_factory=dict)  # the USER_FIELDS it holds
    extra: Mapping[str, Any] = field(default_factory=dict)  # git_commit, git_dirty, ...

    KEYS = (
        "type",
        "name",
        "version",
        "kind",
        "root",
        "size",
        "content_hash",
        "format",
        "source",
        "registered_at",
        "parent",
        "inspect",
        "card",
        *USER_FIELDS,
    )

    @classmethod
    def parse(cls, obj: object) -> VersionRecord:
        """A record whose fields have the types and forms every reader assumes."""
        _check_record(obj)
        assert isinstance(obj, dict)
        return cls._of(obj)

    @classmethod
    def _of(cls, obj: Mapping[str, Any]) -> VersionRecord:
        extra = _extra(obj, cls.KEYS)
        for key in ("parent", "inspect"):  # stored, even as null: kept so
            if key in obj and obj[key] is None:
                extra[key] = None
        return cls(
            name=obj["name"],
            version=obj["version"],
            kind=obj["kind"],
            root=obj["root"],
            size=obj["size"],
            content_hash=obj["content_hash"],
            format=obj["format"],
            source=obj["source"],
            registered_at=obj["registered_at"],
            parent=obj.get("parent"),
            inspect=obj.get("inspect"),
            card=obj.get("card"),
            metadata={k: obj[k] for k in USER_FIELDS if k in obj},
            extra=extra,
        )

    @classmethod
    def of_view(cls, view: Mapping[str, Any]) -> VersionRecord:
        """The record behind a record-shaped dict this registry handed out (``lookup``,
        ``describe``: the record plus its tags), without checking its metadata again: it
        came from this store, whose bytes hash to their id. Its kind is still checked."""
        if view.get("kind") not in ("file", "dir"):
            kind = view.get("kind")
            raise _malformed("version record", f"its kind {kind!r:.40} is neither file nor dir")
        return cls._of(view)

    def to_json(self) -> Json:
        out: Json = {
            **self.extra,
            **self.metadata,
            "type": "version",
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "root": self.root,
            "size": self.size,
            "content_hash": self.content_hash,
            "format": self.format,
            "source": self.source,
            "registered_at": self.registered_at,
        }
        if self.parent is not None:
            out["parent"] = self.parent
        if self.inspect is not None:
            out["inspect"] = self.inspect
        if self.card is not None:
            out["card"] = self.card
        return out

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def is_dir(self) -> bool:
        return self.kind == "dir"

    @property
    def root_type(self) -> str:
        """The ``type`` its root object has: a tree for a folder, a file manifest for a file."""
        return "tree" if self.is_dir else "file"

    def tree(self, store: JsonStore) -> Tree:
        """The tree of a directory model."""
        return load(store, self.root, Tree.parse)

    def manifest_ids(self, store: JsonStore) -> list[str]:
        """The manifest of each of its files: its root, or its tree's manifests."""
        return self.tree(store).manifest_ids() if self.is_dir else [self.root]


def _check_record(obj: object) -> None:
    def bad(why: str) -> MalformedObjectError:
        return _malformed("version record", why)

    if not isinstance(obj, dict) or obj.get("type") != "version":
        raise bad("it is not a version record")
    try:
        names.check_family(str(obj.get("name")))
        names.check_version(str(obj.get("version")))
    except ModelregError:
        raise bad("its name or version is malformed") from None
    if obj.get("kind") not in ("file", "dir"):
        raise bad(f"its kind {obj.get('kind')!r:.40} is neither file nor dir")
    if not _oid(obj.get("root")):
        raise bad(f"its root {obj.get('root')!r:.80} is not an object id")
    if "card" in obj and not _oid(obj["card"]):
        raise bad(f"its card {obj.get('card')!r:.80} is not an object id")
    if not _whole(obj.get("size")):
        raise bad("its size is not a whole number")
    if not isinstance(obj.get("content_hash"), str) or not isinstance(obj.get("format"), str):
        raise bad("its content_hash or format is not text")
    source = obj.get("source")
    if (
        not isinstance(source, str)
        or source in ("", ".", "..")
        or any(c in source for c in "/\\\0")
        or _control(source)
    ):
        raise bad(f"its source {source!r:.80} is not a plain file or folder name")
    if _control(obj["format"]) or _control(obj["content_hash"]):
        raise bad("its content_hash or format holds a control character")
    parent = obj.get("parent")
    if parent is not None:
        try:
            names.check_version(names.parse_spec(str(parent))[1])
        except ModelregError:
            raise bad(f"its parent {parent!r:.80} is not NAME@vN") from None
        if parent == f"{obj['name']}@{obj['version']}":
            raise bad(f"its parent {parent} is the version itself")
    if "inspect" in obj and not isinstance(obj["inspect"], dict):  # absent: made before it
        raise bad("its inspect summary is not a mapping")
    when = obj.get("registered_at")
    if not isinstance(when, str):
        raise bad("its registered_at is not text")
    try:
        dt.datetime.fromisoformat(when)
    except ValueError:
        raise bad(f"its registered_at {when!r:.40} is not an ISO 8601 time") from None
    for key, kind in USER_FIELDS.items():
        if obj.get(key) is not None and not isinstance(obj[key], kind):
            raise bad(f"its {key} has the wrong type")
    metrics = obj.get("metrics") or {}
    if not all(
        isinstance(v, (int, float, str)) and not isinstance(v, bool) for v in metrics.values()
    ):
        raise bad("a metric is neither a number nor text")
    for key in USER_FIELDS:
        try:
            check_stored(key, obj.get(key))
        except ModelregError as e:
            raise bad(f"its {key} is invalid: {e.args[0]}") from None


def _control(text: str) -> bool:
    """Text holds a character that moves or restyles a terminal (C0 but tab and newline,
    DEL, C1): printed by ``show``, it could forge what the user sees."""
    return has_control(text, multiline=True)


def named(oid: str, parse: Callable[[object], T], obj: object) -> T:
    """``parse(obj)``, the JSON of object ``oid``: a MalformedObjectError names the object."""
    try:
        return parse(obj)
    except MalformedObjectError as e:
        raise MalformedObjectError(f"object {oid} is {e.args[0]}") from None


def load(store: JsonStore, oid: str, parse: Callable[[object], T]) -> T:
    """``parse`` of object ``oid`` as read from ``store``."""
    try:
        obj = store.get_json(oid)
    except ValueError:
        raise MalformedObjectError(f"object {oid} is not JSON") from None
    return named(oid, parse, obj)
