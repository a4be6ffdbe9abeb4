"""What a version's objects must look like, and agree on, before anything from elsewhere
is believed: the checks pull runs on what a remote sends and fsck runs on the whole store.

- *Well-formed*: a record, tree or manifest has the fields and types every reader assumes
  (the ``parse`` of each class in ``model``, run by the walk ``walk.needed_objects``).
- *Consistent*: a record's size, content_hash, format and kind are those of the manifest or
  tree it names, each manifest's bytes hash to its ``hash``, and its ``inspect`` summary is the
  one computed here from the objects (``check_version``).
"""

from __future__ import annotations

import base64
import contextlib
import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from .errors import CorruptObjectError, ModelregError
from .hashing import new_hasher
from .metadata import check_text
from .model import FileManifest, Inline, Tree, VersionRecord, load, named
from .objects import Mapped, ObjectStore
from .repo import Repository


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


def _file_hash(store: ObjectStore, manifest_oid: str, manifest: FileManifest) -> str:
    whole = new_hasher()
    for part in manifest.parts:
        if isinstance(part, Inline):
            whole.update(base64.b64decode(part.b64))
            continue
        got = 0
        for block in store.read_blocks(part.oid):
            whole.update(block)
            got += len(block)
        if got != part.length:  # the file it rebuilds would not be the size it says
            raise CorruptObjectError(
                f"manifest {manifest_oid} gives its chunk {part.oid} {part.length} bytes; "
                f"the chunk has {got}"
            )
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
    content: bool = True,
) -> VersionRecord:
    """Record <-> manifest or tree <-> content: the record's size, content_hash, format and
    inspect summary are what its objects give, and every manifest ``rehash`` names hashes to
    its ``hash``. Every object must be here and well-formed (``walk.needed_objects``). Without
    ``content`` (a lazy clone, whose chunks are not here yet), only the records, trees and
    manifests are checked: the hashes and the inspect summary wait for the data. Raises
    CorruptObjectError with the first mismatch."""
    done = checked or Checked()
    store = repo.objects
    rec = repo.version_record(record_oid)
    body = store.get_json(rec.root)
    manifests: dict[str, FileManifest] = {}
    if rec.is_dir:
        tree = named(rec.root, Tree.parse, body)
        for rel, entry in tree.entries.items():
            manifest = load(store, entry.manifest, FileManifest.parse)
            if (manifest.size, manifest.hash) != (entry.size, entry.hash):
                raise CorruptObjectError(f"its tree entry {rel!r} does not match its manifest")
            manifests[entry.manifest] = manifest
        claims = {"size": tree.size, "content_hash": tree.hash, "format": "dir"}
    else:
        manifest = named(rec.root, FileManifest.parse, body)
        manifests[rec.root] = manifest
        claims = {"size": manifest.size, "content_hash": manifest.hash, "format": manifest.format}
    for key, value in claims.items():
        claimed = getattr(rec, key)
        if claimed != value:
            raise CorruptObjectError(f"it claims {key} {claimed!r:.80}; its content has {value!r}")
    if rec.card is not None:
        try:
            check_text("its model card", store.get(rec.card).decode("utf-8"), multiline=True)
        except (UnicodeDecodeError, ModelregError):
            raise CorruptObjectError("its model card is not printable UTF-8 text") from None
    if not content:
        return rec
    for oid, manifest in manifests.items():
        if oid in done.manifests or not rehash(oid):
            continue
        if _file_hash(store, oid, manifest) != manifest.hash:
            raise CorruptObjectError(f"the bytes of manifest {oid} do not hash to its hash")
        done.manifests.add(oid)
    if rec.inspect is None:
        return rec  # made before records had a summary: it claims none
    if rec.root not in done.summaries:
        try:
            done.summaries[rec.root] = inspect_again(repo, rec.kind, body)
        except Exception as e:  # content from elsewhere must never become an internal error
            raise CorruptObjectError(
                f"its content cannot be summarized ({type(e).__name__})"
            ) from e
    found = done.summaries[rec.root]
    if rec.inspect != found:
        raise CorruptObjectError(
            f"it claims inspect verdict {rec.inspect.get('safety')!r:.40}; "
            f"its content gives {found.get('safety')!r} "
            f"({_first_difference(rec.inspect, found)})"
        )
    return rec


def _first_difference(claimed: Mapping[str, Any], found: dict[str, Any]) -> str:
    for key in sorted(set(claimed) | set(found)):
        if claimed.get(key) != found.get(key):
            return f"{key} differs"
    return "same"
