"""What an object store is, and its in-memory twin.

``Store`` is the contract every object store keeps (``tests/test_objects.py`` runs one suite
against each): blobs named by the XXH3-128 of their raw bytes, written once, verified on
every read, and a copy a read found corrupt never counts as present, so adding the same
bytes again repairs it. ``ObjectStore`` (objects.py) keeps objects on disk, loose or in
packs; ``MemoryObjectStore`` keeps them in a dict, as dulwich's ``MemoryObjectStore`` does
beside its disk store: for tests, and for work that only counts what would be stored.

The whole-store half (``copies``, ``verify_copy``, ``prune``, ``repack``...) is what
``fsck``, ``gc`` and ``stats`` use, so none of them needs to know where bytes live.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Collection, Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from . import codec
from .errors import CorruptObjectError, NotFoundError
from .hashing import READ_SIZE, is_oid, new_hasher, oid_of
from .objects import Copy, Mapped, ObjectStore, canonical_json, parse_json


class Store(Protocol):
    compress: bool  # encode objects as they are added (when their item size is given)
    added_bytes: int  # bytes this instance wrote

    # --- one object -----------------------------------------------------------------------
    def add(
        self,
        data: bytes | memoryview,
        oid: str | None = None,
        *,
        itemsize: int | None = None,
        loose: bool = False,
    ) -> str: ...
    def add_json(self, obj: Any, *, loose: bool = False) -> str: ...
    def add_stream(self, oid: str, blocks: Iterable[bytes | memoryview]) -> int: ...
    def exists(self, oid: str) -> bool: ...
    def get(self, oid: str) -> bytes: ...
    def get_json(self, oid: str) -> Any: ...
    def open_mapped(self, oid: str) -> Mapped: ...
    def map_lazily(self, oid: str) -> Mapped: ...
    def read_blocks(self, oid: str) -> Iterator[bytes]: ...
    def as_file(self, oid: str) -> AbstractContextManager[Path]: ...
    def stored_copy(self, oid: str) -> tuple[bytes, int, str, int]: ...
    def size(self, oid: str) -> int: ...
    def stored_size(self, oid: str) -> int: ...
    def verify(self, oid: str) -> int: ...
    def remove(self, oid: str) -> None: ...
    def sync(self) -> str | None: ...
    def abort(self) -> None: ...

    # --- the whole store ------------------------------------------------------------------
    def __iter__(self) -> Iterator[str]: ...
    def copies(self, only_packs: Iterable[str] | None = None) -> Iterator[Copy]: ...
    def verify_copy(self, c: Copy) -> None: ...
    def leftovers(self) -> Iterator[Path]: ...
    def pack_names(self) -> list[str]: ...
    def index_problems(self) -> list[str]: ...
    def is_compact(self) -> bool: ...
    def prune(self, live: Collection[str], among: Iterable[str] | None = None) -> list[str]: ...
    def repack(
        self, keep: Iterable[tuple[str, int | None]], merge: Iterable[str]
    ) -> str | None: ...


WHERE = "memory"


def _corrupt(oid: str) -> CorruptObjectError:
    return CorruptObjectError(f"object {oid} is corrupt (its bytes do not match its id) in memory")


class MemoryObjectStore:
    """Objects in a dict. ``blobs`` is what is stored, by id (tests damage it there); reads
    verify as the disk store's do, and an object a read found corrupt is replaced by the
    next ``add`` of its bytes. ``sync`` makes what was added permanent; ``abort`` drops it."""

    def __init__(self) -> None:
        self.compress = False
        self.added_bytes = 0
        self.blobs: dict[str, bytes] = {}
        self.bad: set[str] = set()  # ids a read found corrupt
        self._unsynced: set[str] = set()
        self._lock = threading.Lock()

    def _checked(self, oid: str) -> str:
        if not is_oid(oid):
            raise CorruptObjectError(f"malformed object id {oid!r}")
        return oid

    def _blob(self, oid: str) -> bytes:
        blob = self.blobs.get(self._checked(oid))
        if blob is None:
            raise NotFoundError(
                f"object {oid} is missing",
                hint="run 'modelreg fsck'; pull it from a remote or re-register",
            )
        return blob

    def _is_sound(self, oid: str) -> bool:
        try:
            self.get(oid)
        except (CorruptObjectError, NotFoundError):
            return False
        self.bad.discard(oid)
        return True

    # --- one object -----------------------------------------------------------------------
    def add(
        self,
        data: bytes | memoryview,
        oid: str | None = None,
        *,
        itemsize: int | None = None,
        loose: bool = False,
    ) -> str:
        oid = self._checked(oid or oid_of(data))
        with self._lock:
            if oid in self.blobs and (oid not in self.bad or self._is_sound(oid)):
                return oid
            self.blobs[oid] = bytes(data)
            self._unsynced.add(oid)
            self.added_bytes += len(data)
        return oid

    def add_json(self, obj: Any, *, loose: bool = False) -> str:
        return self.add(canonical_json(obj), loose=loose)

    def add_stream(self, oid: str, blocks: Iterable[bytes | memoryview]) -> int:
        self._checked(oid)
        hasher = new_hasher()
        parts = []
        for block in blocks:
            hasher.update(block)
            parts.append(bytes(block))
        if hasher.hexdigest() != oid:
            raise CorruptObjectError(f"object {oid} is corrupt (its bytes do not match its id)")
        data = b"".join(parts)
        self.add(data, oid)
        return len(data)

    def exists(self, oid: str) -> bool:
        return self._checked(oid) in self.blobs and (oid not in self.bad or self._is_sound(oid))

    def get(self, oid: str) -> bytes:
        blob = self._blob(oid)
        if oid_of(blob) != oid:
            self.bad.add(oid)
            raise _corrupt(oid)
        return blob

    def get_json(self, oid: str) -> Any:
        return parse_json(self.get(oid), oid)

    def open_mapped(self, oid: str) -> Mapped:
        return Mapped(memoryview(self.get(oid)))

    def map_lazily(self, oid: str) -> Mapped:
        return self.open_mapped(oid)

    def read_blocks(self, oid: str) -> Iterator[bytes]:
        data = self.get(oid)
        for start in range(0, len(data), READ_SIZE):
            yield data[start : start + READ_SIZE]

    @contextlib.contextmanager
    def as_file(self, oid: str) -> Iterator[Path]:
        data = self.get(oid)
        fd, name = tempfile.mkstemp(prefix=f"modelreg-{oid}-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            yield Path(name)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)

    def stored_copy(self, oid: str) -> tuple[bytes, int, str, int]:
        data = self.get(oid)
        return data, len(data), codec.RAW, 0

    def size(self, oid: str) -> int:
        return len(self._blob(oid))

    def stored_size(self, oid: str) -> int:
        return self.size(oid)

    def verify(self, oid: str) -> int:
        return len(self.get(oid))

    def remove(self, oid: str) -> None:
        with self._lock:
            self.blobs.pop(self._checked(oid), None)
            self.bad.discard(oid)

    def sync(self) -> str | None:
        self._unsynced.clear()
        return None

    def abort(self) -> None:
        with self._lock:
            for oid in self._unsynced:
                self.blobs.pop(oid, None)
            self._unsynced.clear()

    # --- the whole store ------------------------------------------------------------------
    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.blobs))

    def copies(self, only_packs: Iterable[str] | None = None) -> Iterator[Copy]:
        for oid, blob in sorted(self.blobs.items()):
            yield Copy(oid, WHERE, WHERE, len(blob), len(blob), codec.RAW)

    def verify_copy(self, c: Copy) -> None:
        if c.oid in self.blobs:
            self.get(c.oid)

    def leftovers(self) -> Iterator[Path]:
        return iter(())

    def pack_names(self) -> list[str]:
        return []

    def index_problems(self) -> list[str]:
        return []

    def is_compact(self) -> bool:
        return True

    def prune(self, live: Collection[str], among: Iterable[str] | None = None) -> list[str]:
        for oid in [oid for oid in self.blobs if oid not in live]:
            self.remove(oid)
        return []

    def repack(self, keep: Iterable[tuple[str, int | None]], merge: Iterable[str]) -> str | None:
        for oid, _itemsize in keep:
            self.get(oid)  # as the disk store's repack, a kept object must verify
        self.bad.clear()
        return None


if TYPE_CHECKING:  # both stores keep the contract (mypy checks these two lines)
    _disk: type[Store] = ObjectStore
    _memory: type[Store] = MemoryObjectStore
