"""Damage marks: the ids of objects a read found corrupt, remembered across processes.

::

    objects/damaged/<id>     an empty file: a copy of <id> failed its hash when last read

An object id names bytes, so a store that holds a copy under that id normally skips a new
write of it: that is what makes registering the same file again cheap. A mark is what makes
that skip unsafe for one id: ``ObjectStore.add`` and ``exists`` re-read a marked object
before they trust that it is present, and a register of the same bytes writes a fresh copy
when no copy verifies. A mark is only a hint (a stale one costs one verified read); a
``gc``, which reads every kept object from a verified copy, clears the marks it saw, and a
mark whose object is found to have a sound copy is lifted.

Readers take no lock and may write a mark: creating an empty file is atomic and idempotent,
and a store on a read-only file system just remembers it for the process.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from .hashing import is_oid


def _is_mark(entry: os.DirEntry[str]) -> bool:
    """Only a regular file is a mark: a folder or a link put there (which ``clear`` cannot
    unlink, or which points elsewhere) would make every write of its id re-read it for good."""
    try:
        return entry.is_file(follow_symlinks=False)
    except OSError:
        return False


class DamageMarks:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._ids: set[str] | None = None
        self._lock = threading.Lock()

    def load(self) -> set[str]:
        """Read the marks other processes left (one folder listing)."""
        try:
            with os.scandir(self.folder) as listed:
                found = {e.name for e in listed if is_oid(e.name) and _is_mark(e)}
        except (FileNotFoundError, NotADirectoryError):
            found = set()
        with self._lock:
            self._ids = found | (self._ids or set())
            return set(self._ids)

    def __contains__(self, oid: str) -> bool:
        ids = self._ids if self._ids is not None else self.load()
        return oid in ids

    def add(self, oid: str) -> None:
        with self._lock:
            if self._ids is None:
                self._ids = set()
            if oid in self._ids:
                return
            self._ids.add(oid)
        with contextlib.suppress(OSError):
            self.folder.mkdir(exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW  # never through a link
            os.close(os.open(self.folder / oid, flags, 0o444))

    def clear(self, ids: Iterable[str]) -> None:
        for oid in ids:
            with self._lock:
                if self._ids is not None:
                    self._ids.discard(oid)
            with contextlib.suppress(OSError):
                os.unlink(self.folder / oid)
        with contextlib.suppress(OSError):
            os.rmdir(self.folder)  # only when empty
