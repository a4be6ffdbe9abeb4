"""What a version's objects must look like, and agree on, before anything from elsewhere
is believed: the checks pull runs on what a remote sends and fsck runs on the whole store.

- *Well-formed*: a record, tree or manifest has the fields and types every reader assumes
  (``check_record`` here, ``files.check_manifest`` and ``files.check_tree``).
- *Consistent*: a record's size, content_hash, format and kind are those of the manifest or
  tree it names, each manifest's bytes hash to its ``hash``, and its ``inspect`` summary is the
  one computed here from the objects (``check_version``).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from . import files, names
from .errors import CorruptObjectError, MalformedObjectError, ModelregError
from .hashing import is_oid, new_hasher
from .metadata import USER_FIELDS, check_metadata, check_text, has_control
from .objects import Mapped, ObjectStore
from .repo import Repository


def check_record(obj: object) -> dict[str, Any]:
    """A version record whose fields have the types and forms every reader assumes.
    Raises MalformedObjectError saying what is wrong (the caller says where it came from)."""

    def bad(why: str) -> MalformedObjectError:
        return MalformedObjectError(f"not a well-formed version record: {why}")

    if not isinstance(obj, dict) or obj.get("type") != "version":
        raise bad("it is not a version record")
    try:
        names.check_family(str(obj.get("name")))
        names.check_version(str(obj.get("version")))
    except ModelregError:
        raise bad("its name or version is malformed") from None
    if obj.get("kind") not in ("file", "dir"):
        raise bad(f"its kind {obj.get('kind')!r:.40} is neither file nor dir")
    if not isinstance(obj.get("root"), str) or not is_oid(obj["root"]):
        raise bad(f"its root {obj.get('root')!r:.80} is not an object id")
    size = obj.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
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
            _check_field(key, obj.get(key))
        except ModelregError as e:
            raise bad(f"its {key} is invalid: {e.args[0]}") from None
    return obj


def _control(text: str) -> bool:
    """Text holds a character that moves or restyles a terminal (C0 but tab and newline,
    DEL, C1): printed by ``show``, it could forge what the user sees."""
    return has_control(text, multiline=True)


def _printable(what: str, text: str) -> None:
    check_text(what, text)
    if _control(text):
        raise MalformedObjectError(f"{what} holds a control character")


def _check_field(key: str, value: Any) -> None:
    """One metadata field of a record, checked as ``register`` checks what it is given
    (``metadata.check_metadata``), except that a metric may be text: modelreg once accepted
    text metrics, so records made then hold them."""
    if value is None:
        return
    if key == "metrics":
        # Text metrics: their names are checked as any metric's, their values as text.
        check_metadata({key: {k: 0 if isinstance(v, str) else v for k, v in value.items()}})
        for k, v in value.items():
            if isinstance(v, str):
                _printable(f"metric {k!r}", v)
        return
    check_metadata({key: value})
    if isinstance(value, str):
        _printable(key, value)
    elif key == "params":
        for k, v in value.items():
            if isinstance(v, str):
                _printable(f"param {k!r}", v)


class _UnverifiedMaps:
    """The same store, where ``get`` maps a chunk instead of reading it: recomputing a
    summary reads a few bytes of a file (a header, a pickle) and must not load a large chunk
    whole to do so. Only for objects verified just before; everything else is the store's."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store
        self._maps: list[Mapped] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def get_json(self, oid: str) -> Any:
        return self._store.get_json(oid)

    def get(self, oid: str) -> bytes:
        mapped = self._store.map_lazily(oid)
        self._maps.append(mapped)
        return cast(bytes, mapped.view)

    def close(self) -> None:
        for m in self._maps:
            with contextlib.suppress(BufferError):  # a view still held: the GC unmaps it
                m.close()


def _file_hash(store: ObjectStore, manifest: dict[str, Any]) -> str:
    whole = new_hasher()
    for part in manifest["parts"]:
        if "b" in part:
            whole.update(base64.b64decode(part["b"]))
            continue
        for block in store.read_blocks(part["o"]):
            whole.update(block)
    return whole.hexdigest()


def inspect_again(repo: Repository, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """What ``register`` recorded under ``inspect`` for these objects: ``Repository.inspect``
    itself (so the two never drift apart), run over a view of the store that maps chunks."""
    maps = _UnverifiedMaps(repo.objects)
    view = copy.copy(repo)
    view.objects = cast(ObjectStore, maps)  # inspect reads through get and get_json alone
    try:
        return view.inspect(kind, body)
    finally:
        maps.close()


# A manifest of a 100 GB file with 4 MiB chunks is about 3 MB, a tree of 100,000 files about
# 20 MB: a record, tree or manifest above this was not made by modelreg.
MAX_STRUCTURED_BYTES = 64 << 20


def _json(store: ObjectStore, oid: str) -> Any:
    if store.size(oid) > MAX_STRUCTURED_BYTES:
        raise MalformedObjectError(
            f"object {oid} is larger than {MAX_STRUCTURED_BYTES >> 20} MiB, too large for a "
            "record, tree or manifest"
        )
    try:
        return store.get_json(oid)
    except ValueError:
        raise MalformedObjectError(f"object {oid} is not JSON") from None


def version_objects(
    repo: Repository,
    record_oid: str,
    need: Callable[[str], bool],
    limits: dict[str, int] | None = None,
) -> None:
    """Call ``need`` on every object one version needs (record, manifest or tree, the tree's
    manifests, chunks), checking the shape of each structured one on the way: the one walk
    pull and fsck share. It descends only where ``need`` returns True (the object is here).
    A malformed object raises MalformedObjectError naming it; an unreadable one, the store's
    error. ``limits``, when given, learns the most bytes each object may have before ``need``
    is asked for it: a chunk's length in its manifest, ``MAX_STRUCTURED_BYTES`` for a
    record, tree or manifest (so pull can stop reading a remote's object past it)."""
    bounds = limits if limits is not None else {}

    def needs(oid: str, limit: int) -> bool:
        bounds[oid] = max(bounds.get(oid, 0), limit)
        return need(oid)

    if not needs(record_oid, MAX_STRUCTURED_BYTES):
        return
    try:
        rec = check_record(_json(repo.objects, record_oid))
        root = rec["root"]
        if not needs(root, MAX_STRUCTURED_BYTES):
            return
        body = _json(repo.objects, root)
        want = "tree" if rec["kind"] == "dir" else "file"
        if not isinstance(body, dict) or body.get("type") != want:
            shown = body.get("type") if isinstance(body, dict) else type(body).__name__
            raise MalformedObjectError(
                f"not a well-formed version record: its kind is {rec['kind']} but its root "
                f"{root} is a {shown!r:.20}, not a {want}"
            )
    except MalformedObjectError as e:
        raise MalformedObjectError(f"object {record_oid} is {e.args[0]}") from None
    if want == "tree":
        try:
            manifests = [e["manifest"] for e in files.check_tree(body)["entries"].values()]
        except MalformedObjectError as e:
            raise MalformedObjectError(f"object {root} is {e.args[0]}") from None
    else:
        manifests = [root]
    for m in manifests:
        if m != root and not needs(m, MAX_STRUCTURED_BYTES):
            continue
        try:
            manifest = files.check_manifest(_json(repo.objects, m))
        except MalformedObjectError as e:
            raise MalformedObjectError(f"object {m} is {e.args[0]}") from None
        for part in manifest["parts"]:
            if "o" in part:
                needs(part["o"], part["n"])


@dataclass
class Checked:
    """What one run has verified already, so versions that share objects cost it once."""

    manifests: set[str] = field(default_factory=set)
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)  # root -> inspect


def check_version(
    repo: Repository,
    record_oid: str,
    rehash: Callable[[str], bool] = lambda oid: True,
    checked: Checked | None = None,
) -> dict[str, Any]:
    """Record <-> manifest or tree <-> content: the record's size, content_hash, format and
    inspect summary are what its objects give, and every manifest ``rehash`` names hashes to
    its ``hash``. Every object must be here and well-formed (``version_objects``). Raises
    CorruptObjectError with the first mismatch."""
    done = checked or Checked()
    store = repo.objects
    rec = store.get_json(record_oid)
    root = rec["root"]
    body = store.get_json(root)
    if rec["kind"] == "file":
        manifests = {root: body}
        fmt = body["format"]
    else:
        manifests = {}
        for rel, entry in body["entries"].items():
            manifest = store.get_json(entry["manifest"])
            if (manifest["size"], manifest["hash"]) != (entry["size"], entry["hash"]):
                raise CorruptObjectError(f"its tree entry {rel!r} does not match its manifest")
            manifests[entry["manifest"]] = manifest
        fmt = "dir"
    claims = {"size": body["size"], "content_hash": body["hash"], "format": fmt}
    for key, value in claims.items():
        if rec[key] != value:
            raise CorruptObjectError(f"it claims {key} {rec[key]!r:.80}; its content has {value!r}")
    for oid, manifest in manifests.items():
        if oid in done.manifests or not rehash(oid):
            continue
        if _file_hash(store, manifest) != manifest["hash"]:
            raise CorruptObjectError(f"the bytes of manifest {oid} do not hash to its hash")
        done.manifests.add(oid)
    if "inspect" not in rec:
        return rec  # made before records had a summary: it claims none
    if root not in done.summaries:
        try:
            done.summaries[root] = inspect_again(repo, rec["kind"], body)
        except Exception as e:  # content from elsewhere must never become an internal error
            raise CorruptObjectError(
                f"its content cannot be summarized ({type(e).__name__})"
            ) from e
    found = done.summaries[root]
    if rec["inspect"] != found:
        raise CorruptObjectError(
            f"it claims inspect verdict {rec['inspect'].get('safety')!r:.40}; "
            f"its content gives {found.get('safety')!r} "
            f"({_first_difference(rec['inspect'], found)})"
        )
    return rec


def _first_difference(claimed: dict[str, Any], found: dict[str, Any]) -> str:
    for key in sorted(set(claimed) | set(found)):
        if claimed.get(key) != found.get(key):
            return f"{key} differs"
    return "same"
