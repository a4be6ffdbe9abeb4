"""The object store: immutable blobs named by the hash of their bytes.

Layout::

    objects/
      ab/
        cdef0123...      one object; read-only; its XXH3-128 is "ab" + its file name

Structured objects (file manifests, trees, version records) are canonical JSON: sorted keys,
no spaces, so the same content always gets the same id. Chunks are raw bytes.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from . import _fs
from .errors import CorruptObjectError, NotFoundError
from .hashing import READ_SIZE, is_oid, new_hasher, oid_of

# Past this many new objects, one syncfs (the whole file system, as `sync` does) is cheaper
# than an fsync per file and per folder.
SYNCFS_ABOVE = 16


class Mapped:
    """A read-only memory map of a file and a view of it; ``close`` releases both."""

    def __init__(self, fd: int) -> None:
        self._mm: mmap.mmap | None = None
        if os.fstat(fd).st_size == 0:
            self.view = memoryview(b"")
            return
        flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
        self._mm = mmap.mmap(fd, 0, flags=flags, prot=mmap.PROT_READ)
        self.view = memoryview(self._mm)

    def close(self) -> None:
        self.view.release()
        if self._mm is not None:
            self._mm.close()


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class ObjectStore:
    """Write-once, verify-on-read storage of blobs by id.

    Writes are made durable in batches: ``add`` leaves the new files in the page cache and
    remembers them; ``sync`` flushes them all. Callers must ``sync`` before publishing a ref
    that names any of them.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._pending: list[Path] = []
        self._fans: set[str] = set()  # fan-out folders known to exist
        self.added_bytes = 0  # bytes of the objects this instance wrote (what a register cost)

    def path(self, oid: str) -> Path:
        if not is_oid(oid):
            raise CorruptObjectError(f"malformed object id {oid!r}")
        return self.root / oid[:2] / oid[2:]

    def exists(self, oid: str) -> bool:
        return self.path(oid).exists()

    def add(self, data: bytes | memoryview, oid: str | None = None) -> str:
        oid = oid or oid_of(data)
        final = self.path(oid)
        try:
            if os.stat(final).st_size == len(data):
                return oid  # stored already; damage that keeps the size is fsck's to find
        except FileNotFoundError:
            pass
        # Absent, or present with the wrong size (truncated): write it, which repairs it.
        if final.parent.name not in self._fans:
            final.parent.mkdir(parents=True, exist_ok=True)
            self._fans.add(final.parent.name)
        try:
            _fs.atomic_write(final, data, mode=0o444, durable=False)
        except FileNotFoundError:  # a gc in another process removed the emptied folder
            final.parent.mkdir(parents=True, exist_ok=True)
            _fs.atomic_write(final, data, mode=0o444, durable=False)
        self._pending.append(final)
        self.added_bytes += len(data)
        return oid

    def add_stream(self, oid: str, blocks: Iterable[bytes | memoryview]) -> int:
        """Store an object arriving in blocks (from a remote) without holding it whole: the
        blocks go to a temporary file while they are hashed, and the file takes its name only
        if the hash is ``oid``. Returns its size; CorruptObjectError if the hash differs."""
        final = self.path(oid)
        final.parent.mkdir(parents=True, exist_ok=True)
        hasher = new_hasher()
        size = 0
        with _fs.atomic_writer(final, mode=0o444, durable=False) as out:
            for block in blocks:
                hasher.update(block)
                out.write(block)
                size += len(block)
            if hasher.hexdigest() != oid:
                raise CorruptObjectError(f"object {oid} is corrupt (its bytes do not match its id)")
        self._pending.append(final)
        return size

    def verify(self, oid: str) -> int:
        """Re-hash an object from disk in blocks (bounded memory); its size, or
        NotFoundError / CorruptObjectError."""
        hasher = new_hasher()
        size = 0
        try:
            with open(self.path(oid), "rb", buffering=0) as f:
                while block := f.read(READ_SIZE):
                    hasher.update(block)
                    size += len(block)
        except FileNotFoundError:
            raise NotFoundError(
                f"object {oid} is missing",
                hint="run 'modelreg fsck'; pull it from a remote or re-register",
            ) from None
        if hasher.hexdigest() != oid:
            raise CorruptObjectError(f"object {oid} is corrupt (its bytes do not match its id)")
        return size

    def add_json(self, obj: Any) -> str:
        return self.add(canonical_json(obj))

    def sync(self) -> None:
        """Make every object added since the last sync durable (data and folder entries)."""
        pending, self._pending = self._pending, []
        if len(pending) > SYNCFS_ABOVE and _fs.syncfs(self.root):
            return
        folders = set()
        for p in pending:
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            folders.add(p.parent)
        for folder in folders:
            _fs.fsync_dir(folder)
        if folders:
            _fs.fsync_dir(self.root)

    def get(self, oid: str) -> bytes:
        try:
            data = self.path(oid).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(
                f"object {oid} is missing",
                hint="run 'modelreg fsck'; pull it from a remote or re-register",
            ) from None
        if oid_of(data) != oid:
            raise CorruptObjectError(f"object {oid} is corrupt (its bytes do not match its id)")
        return data

    def open_mapped(self, oid: str) -> Mapped:
        """A verified, zero-copy view of an object, memory-mapped. Objects never change in
        place (they are only replaced or removed, which leaves a mapping intact)."""
        try:
            f = open(self.path(oid), "rb", buffering=0)  # noqa: SIM115 - closed just below
        except FileNotFoundError:
            raise NotFoundError(
                f"object {oid} is missing",
                hint="run 'modelreg fsck'; pull it from a remote or re-register",
            ) from None
        with f:
            mapped = Mapped(f.fileno())
        if oid_of(mapped.view) != oid:
            mapped.close()
            raise CorruptObjectError(f"object {oid} is corrupt (its bytes do not match its id)")
        return mapped

    def get_json(self, oid: str) -> Any:
        return json.loads(self.get(oid))

    def size(self, oid: str) -> int:
        return self.path(oid).stat().st_size

    def __iter__(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for fan in sorted(os.scandir(self.root), key=lambda e: e.name):
            if len(fan.name) != 2 or not fan.is_dir():
                continue
            for entry in sorted(os.scandir(fan.path), key=lambda e: e.name):
                if not entry.name.startswith(_fs.TMP_PREFIX):
                    yield fan.name + entry.name

    def leftovers(self) -> Iterator[Path]:
        """Temporary files a killed writer left behind."""
        if not self.root.is_dir():
            return
        for fan in os.scandir(self.root):
            if fan.is_dir():
                for entry in os.scandir(fan.path):
                    if entry.name.startswith(_fs.TMP_PREFIX):
                        yield Path(entry.path)

    def remove(self, oid: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(oid))
