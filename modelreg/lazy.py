"""Lazy clones: a version's chunks come from the remote when the version is first read.

A lazy clone (``clone`` without ``--full``) holds refs, records, trees and manifests; its
origin is marked ``lazy: true`` in ``config.yaml``. Before ``get``, ``checkout`` or
``load`` reads a version, ``ensure`` fetches the chunks it lacks (neither in the registry
nor in the shared cache) in one batch of ranged reads into the remote's packs
(``wire.fetch``: verified by id), into the shared cache so that every registry on the
machine finds them, and then checks the record against its data as ``pull`` does (size,
hashes, the inspect summary recomputed here). ``modelreg fetch`` does the same into the
registry itself, for offline work.

What a record says about data not fetched yet is the remote's word: ``not_fetched`` tells
whether the version's data is here to back it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _fs, remote_config, transfer, verify, wire
from .cache import Cache, shared_for
from .errors import CorruptObjectError, ModelregError, NotFoundError
from .model import VersionRecord
from .repo import Record, Repository
from .store_api import Store
from .walk import MAX_STRUCTURED_BYTES, needed_objects


class NotFetchedError(ModelregError):
    """A version's data is not here and its lazy remote cannot give it now."""


@dataclass
class Ensured:
    remote: str | None = None
    objects: int = 0
    bytes: int = 0
    versions: list[str] = field(default_factory=list)  # the versions that needed data


def shared_cache(repo: Repository) -> Cache:
    return shared_for(repo.objects)


def record_oid(repo: Repository, rec: Record) -> tuple[str, str]:
    """The version's label and the id of its record, from the refs."""
    typed = VersionRecord.of_view(rec)
    refs = repo.refs.read(typed.name)
    oid = refs.versions.get(typed.version) if refs is not None else None
    if oid is None:
        raise NotFoundError(f"{typed.label} is not a version here")
    return typed.label, oid


def absent(
    repo: Repository, record_oid: str, limits: dict[str, int] | None = None, cache: bool = True
) -> set[str]:
    """The objects the version needs that neither this registry (nor, with ``cache``, the
    shared cache) holds; ``limits`` learns each one's bound."""
    shared = shared_cache(repo) if cache else None
    out: set[str] = set()

    def need(oid: str) -> bool:
        if repo.objects.exists(oid) or (shared is not None and shared.exists(oid)):
            return True
        out.add(oid)
        return False

    needed_objects(repo.objects, record_oid, need, limits)
    return out


def _unchecked_file(repo: Repository) -> Path:
    return repo.dir / "lazy-unchecked"  # beside remotes/, whose names are remotes


def unchecked(repo: Repository) -> set[str]:
    """The records a lazy pull took on the remote's word: their data was not here to check
    them against (``ensure`` checks them when it is)."""
    try:
        return set(_unchecked_file(repo).read_text().split())
    except FileNotFoundError:
        return set()


def _mark(repo: Repository, add: Iterable[str] = (), drop: Iterable[str] = ()) -> None:
    with repo.config_lock():
        now = (unchecked(repo) | set(add)) - set(drop)
        path = _unchecked_file(repo)
        path.parent.mkdir(parents=True, exist_ok=True)
        _fs.atomic_write(path, "".join(f"{oid}\n" for oid in sorted(now)).encode())


def mark_unchecked(repo: Repository, oids: Iterable[str]) -> None:
    wanted = set(oids) - unchecked(repo)
    if wanted:
        _mark(repo, add=wanted)


def not_fetched(repo: Repository, rec: Record) -> bool:
    """A lazy clone's version whose record was not checked against its data here, or
    whose data is not here: what its record claims is the remote's word."""
    if remote_config.lazy_remote(repo) is None:
        return False
    try:
        oid = record_oid(repo, rec)[1]
        return oid in unchecked(repo) or bool(absent(repo, oid))
    except ModelregError:
        return True


def ensure(
    repo: Repository,
    records: Iterable[Record],
    progress: wire.Progress | None = None,
    into_cache: bool = True,
) -> Ensured:
    """Make every version's data readable here: fetch what is missing from the lazy remote
    (into the shared cache, or with ``into_cache=False`` into this registry), then check
    each fetched version's record against its data. Raises NotFetchedError (one line
    naming ``modelreg fetch``) when the remote cannot be reached, CorruptObjectError when
    its data disagrees with the record."""
    name = remote_config.lazy_remote(repo)
    if name is None and into_cache:
        return Ensured()  # not a lazy clone: its objects are all here, or fsck says so
    limits: dict[str, int] = {}
    todo: set[str] = set()
    wanting: list[tuple[str, str]] = []  # (label, record oid)
    doubted = unchecked(repo)
    for rec in records:
        label, oid = record_oid(repo, rec)
        missing = absent(repo, oid, limits, cache=into_cache)
        if missing or oid in doubted:
            todo |= missing
            wanting.append((label, oid))
    done = Ensured(versions=[label for label, _oid in wanting])
    if not wanting:
        return done
    if name is None and todo:
        raise NotFoundError(
            f"{wanting[0][0]}: {len(todo)} of its objects are missing",
            hint="run 'modelreg fsck --repair'",
        )
    labels = " ".join(label for label, _oid in wanting)
    done.remote = name
    cache = shared_cache(repo)
    store: Store = cache.store if into_cache else repo.objects
    with repo.gc_lock(shared=True):
        if not into_cache:  # what the shared cache holds is copied, not fetched again
            for oid in sorted(o for o in todo if cache.exists(o)):
                with contextlib.suppress(NotFoundError):  # damaged there: fetched below
                    repo.objects.add(cache.get(oid), oid)
                    todo.discard(oid)
            repo.objects.sync()
        if todo and name is not None:
            got = _fetch(repo, name, store, todo, limits, labels, progress)
            done.objects, done.bytes = got.objects, got.bytes
            store.sync()
    checked = verify.Checked()
    for label, oid in wanting:
        try:
            verify.check_version(repo, oid, checked=checked)
        except CorruptObjectError as e:
            raise CorruptObjectError(
                f"{label}: its data from remote {name} does not bear out its record: {e.args[0]}",
                hint="nothing was changed locally; the registry that pushed it can replace "
                "the remote's copy with 'modelreg push --force'",
            ) from None
    settled = [oid for _label, oid in wanting if oid in doubted]
    if settled:
        _mark(repo, drop=settled)
    return done


def _fetch(
    repo: Repository,
    name: str,
    store: Store,
    todo: set[str],
    limits: dict[str, int],
    labels: str,
    progress: wire.Progress | None,
) -> wire.Fetched:
    try:
        _name, remote = remote_config.resolve(repo, name)
        remote.check(create=False)
        view = transfer.remote_packs(repo, name, remote)
        got = wire.fetch(store, remote, view, todo, limits, MAX_STRUCTURED_BYTES, progress)
    except CorruptObjectError:
        raise
    except (ModelregError, OSError) as e:
        why = e.args[0] if e.args else type(e).__name__
        raise NotFetchedError(
            f"the data of {labels} is not here and remote {name} cannot give it ({why})",
            hint=f"run 'modelreg fetch {labels}' while the remote is reachable",
        ) from None
    if got.oversized:
        raise CorruptObjectError(f"remote {name}: {next(iter(got.oversized.values()))}")
    return got


def chunk_source(repo: Repository, rec: Record) -> Callable[[Store], Any] | None:
    """For partial tensor reads of a lazy clone's version: a ``tensors.FetchingSource``
    maker that fetches just the chunks a read needs (into the shared cache); None when the
    version's data is all here."""
    name = remote_config.lazy_remote(repo)
    if name is None:
        return None
    label, oid = record_oid(repo, rec)
    limits: dict[str, int] = {}
    if not absent(repo, oid, limits):
        return None
    from .tensors import FetchingSource  # only for a lazy clone's partial reads

    cache = shared_cache(repo)

    def fetch(store: Store, ids: list[str]) -> wire.Fetched:
        return _fetch(repo, name, store, set(ids), limits, label, None)

    return lambda store: FetchingSource(store, fetch, cache)


def fetchable(repo: Repository, oids: Iterable[str]) -> dict[str, str]:
    """Which of ``oids`` (missing here) the lazy remote's packs hold, as far as its indexes
    tell (read again when reachable, else as kept here): oid -> remote name."""
    wanted = set(oids)
    name = remote_config.lazy_remote(repo)
    if name is None or not wanted:
        return {}
    try:
        _name, remote = remote_config.resolve(repo, name)
    except ModelregError:
        return {}
    view = transfer.remote_packs(repo, name, remote)
    try:
        view.load()  # the packs it holds now (a gc --remote may have dropped some)
    except (ModelregError, OSError):
        view.load_cached()  # offline: as last read
    return {oid: name for oid in sorted(wanted) if view.find(oid) is not None}


__all__ = [
    "Ensured",
    "NotFetchedError",
    "absent",
    "chunk_source",
    "ensure",
    "fetchable",
    "mark_unchecked",
    "not_fetched",
    "unchecked",
]
