"""The per-user object cache that every registry on the machine shares.

Objects fetched lazily from a remote land here, so a second project that clones the same
remote and asks for the same version downloads nothing. A registry reads through to it when
its own store lacks an object (``CachedObjectStore``)::

    $MODELREG_CACHE             (else $XDG_CACHE_HOME/modelreg, else ~/.cache/modelreg)
      objects/ab/cdef...        loose objects named by their id, read-only, verified on read
      objects/ab/.tmp-*         a writer's temporary file, renamed into place when complete

It is an ``ObjectStore`` that keeps every object loose, so each object is one file that can
be dropped on its own. Its rules, as in the huggingface_hub cache:

- A write is a temporary file renamed into place: two processes adding the same object
  both rename a complete file over the name, and a reader sees the old file or the new one.
- Every read verifies the bytes against the id. A damaged copy is removed and counts as
  missing (it is a cache: the object can be fetched again).
- A read stamps the file's modification time (``os.utime``): that is the "last used" time
  ``prune`` goes by, least recently used first (atime is unreliable under ``relatime``).
- ``prune`` only unlinks whole files. A reader that opened one keeps reading all of it; one
  that comes after finds it missing, never a part of it. No lock is needed.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from .errors import CorruptObjectError, NotFoundError
from .hashing import is_oid
from .objects import Mapped, ObjectStore

ENV = "MODELREG_CACHE"
T = TypeVar("T")
STALE_TMP_S = 3600  # a temporary file older than this was left by a killed writer


def cache_root() -> Path:
    """Where the cache is: ``$MODELREG_CACHE``, else ``$XDG_CACHE_HOME/modelreg``, else
    ``~/.cache/modelreg``."""
    explicit = os.environ.get(ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "modelreg"


@dataclass
class Entry:
    oid: str
    path: Path
    size: int
    used: float  # last read or write, seconds since the epoch


@dataclass
class Stats:
    path: str
    objects: int
    bytes: int
    oldest_use: float | None
    newest_use: float | None


@dataclass
class PrunePlan:
    removed: list[Entry] = field(default_factory=list)
    leftovers: list[Path] = field(default_factory=list)
    kept_objects: int = 0
    kept_bytes: int = 0

    @property
    def freed(self) -> int:
        return sum(e.size for e in self.removed)


class Cache:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else cache_root()
        self.store = ObjectStore(self.root / "objects", packed=False)

    def is_present(self) -> bool:
        return self.store.root.is_dir()

    # --- objects --------------------------------------------------------------------------
    def add(self, data: bytes | memoryview, oid: str | None = None) -> str:
        """Keep an object (durable at the next ``sync``); it is written as a whole file."""
        oid = self.store.add(data, oid, loose=True)
        self._touch(oid)
        return oid

    def sync(self) -> None:
        self.store.sync()

    def exists(self, oid: str) -> bool:
        return self.store.path(oid).is_file()

    def get(self, oid: str) -> bytes:
        with self._reading(oid):
            return self.store.get(oid)

    def open_mapped(self, oid: str) -> Mapped:
        with self._reading(oid):
            return self.store.open_mapped(oid)

    def size(self, oid: str) -> int:
        return self.store.size(oid)

    @contextlib.contextmanager
    def _reading(self, oid: str) -> Iterator[None]:
        try:
            yield
        except CorruptObjectError:
            self.remove(oid)  # a cache copy is never repaired in place: fetch it again
            raise NotFoundError(f"object {oid} was damaged in the cache {self.root}") from None
        self._touch(oid)

    def _touch(self, oid: str) -> None:
        with contextlib.suppress(OSError):  # removed meanwhile, or another user's file
            os.utime(self.store.path(oid))

    def remove(self, oid: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.store.path(oid))

    # --- the whole cache ------------------------------------------------------------------
    def entries(self) -> Iterator[Entry]:
        root = self.store.root
        if not root.is_dir():
            return
        for fan in os.scandir(root):
            if len(fan.name) != 2 or not fan.is_dir(follow_symlinks=False):
                continue
            for item in os.scandir(fan.path):
                oid = fan.name + item.name
                if not is_oid(oid):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    st = item.stat(follow_symlinks=False)
                    yield Entry(oid, Path(item.path), st.st_size, st.st_mtime)

    def stats(self) -> Stats:
        found = list(self.entries())
        return Stats(
            str(self.root),
            len(found),
            sum(e.size for e in found),
            min((e.used for e in found), default=None),
            max((e.used for e in found), default=None),
        )

    def prune(self, max_size: int = 0, dry_run: bool = False) -> PrunePlan:
        """Remove least recently used objects until the cache holds at most ``max_size``
        bytes (0 empties it), and temporary files killed writers left."""
        plan = PrunePlan()
        found = sorted(self.entries(), key=lambda e: e.used)
        total = sum(e.size for e in found)
        for e in found:
            if total <= max_size:
                break
            plan.removed.append(e)
            total -= e.size
        plan.kept_objects, plan.kept_bytes = len(found) - len(plan.removed), total
        now = time.time()
        for tmp in self.store.leftovers():
            with contextlib.suppress(FileNotFoundError):
                if now - tmp.stat().st_mtime > STALE_TMP_S:
                    plan.leftovers.append(tmp)
        if not dry_run:
            for e in plan.removed:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(e.path)
            for tmp in plan.leftovers:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        return plan


class CachedObjectStore(ObjectStore):
    """A registry's object store that reads through to the shared cache: an object this
    store lacks is read, verified, from the cache; everything else (writes, listing, gc) is
    this store's alone. Where neither has the object, the error is this store's own."""

    shared: Cache | None = None  # None: the cache of this process's environment

    def cache(self) -> Cache | None:
        """The shared cache, when one exists (reading never creates it)."""
        cache = self.shared if self.shared is not None else Cache()
        return cache if cache.is_present() else None

    def _through(
        self, oid: str, local: Callable[[str], T], cached: Callable[[Cache], Callable[[str], T]]
    ) -> T:
        try:
            return local(oid)
        except NotFoundError as missing:
            cache = self.cache()
            if cache is None or not cache.exists(oid):
                raise
            try:
                return cached(cache)(oid)
            except NotFoundError:
                raise missing from None

    def get(self, oid: str) -> bytes:
        return self._through(oid, super().get, lambda c: c.get)

    def open_mapped(self, oid: str) -> Mapped:
        return self._through(oid, super().open_mapped, lambda c: c.open_mapped)

    def size(self, oid: str) -> int:
        return self._through(oid, super().size, lambda c: c.size)


def shared_for(store: ObjectStore) -> Cache:
    """The shared cache a registry's store reads through to (present or not)."""
    shared = store.shared if isinstance(store, CachedObjectStore) else None
    return shared if shared is not None else Cache()


__all__ = [
    "ENV",
    "Cache",
    "CachedObjectStore",
    "PrunePlan",
    "Stats",
    "cache_root",
    "shared_for",
]
