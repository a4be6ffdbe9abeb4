"""A remote in a plain folder (a shared drive, an NFS mount, another disk)."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from .. import _fs
from ..errors import NotFoundError, RemoteError, RemoteMovedError
from ..hashing import is_oid, oid_of
from ..refs import MAX_REFS_BYTES
from .base import BLOCK, MARKER, MARKER_BODY, Remote, object_key, ref_key, too_big


class FolderRemote(Remote):
    """Refs change under an exclusive ``flock`` on ``locks/<name>.lock`` in the remote folder,
    re-reading the refs inside the lock: that is the compare-and-swap. (On NFS this needs
    working NFSv4 locks.)"""

    def __init__(self, path: Path, lock_timeout: float = 60) -> None:
        self.root = path
        self.url = str(path)
        self.lock_timeout = lock_timeout

    def check(self, create: bool) -> None:
        marker = self.root / MARKER
        if marker.is_file():
            return
        if not create:
            raise RemoteError(
                f"{self.root} is not a modelreg remote",
                hint="check the path, or push to it first",
            )
        if self.root.exists() and not self.root.is_dir():
            raise RemoteError(f"{self.root} is not a folder", hint="choose a folder path")
        if self.root.is_dir() and any(self.root.iterdir()):
            raise RemoteError(
                f"{self.root} is not empty and not a modelreg remote",
                hint="choose an empty or new folder",
            )
        for sub in ("objects", "refs", "locks"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        _fs.atomic_write(marker, MARKER_BODY)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    def list_objects(self) -> set[str]:
        found: set[str] = set()
        objects = self.root / "objects"
        if not objects.is_dir():
            return found
        for fan in os.scandir(objects):
            if fan.is_dir() and len(fan.name) == 2:
                found.update(
                    fan.name + e.name
                    for e in os.scandir(fan.path)
                    if not e.name.startswith(_fs.TMP_PREFIX) and is_oid(fan.name + e.name)
                )
        return found

    def put_object(self, oid: str, data: bytes) -> None:
        final = self._path(object_key(oid))
        if final.exists():
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        _fs.atomic_write(final, data, mode=0o444)

    def put_file(self, oid: str, path: Path) -> None:
        final = self._path(object_key(oid))
        if final.exists():
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "rb") as src, _fs.atomic_writer(final, mode=0o444) as out:
            shutil.copyfileobj(src, out, BLOCK)

    def iter_object(self, oid: str) -> Iterator[bytes]:
        try:
            f = open(self._path(object_key(oid)), "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise NotFoundError(
                f"object {oid} is missing on remote {self.url}",
                hint="push it again from a registry that has it",
            ) from None
        return _blocks(f)

    def list_refs(self) -> list[str]:
        refs = self.root / "refs"
        if not refs.is_dir():
            return []
        return sorted(
            e.name[: -len(".yaml")]
            for e in os.scandir(refs)
            if e.name.endswith(".yaml") and not e.name.startswith(_fs.TMP_PREFIX)
        )

    def read_ref(self, name: str) -> tuple[bytes, str] | None:
        with contextlib.suppress(FileNotFoundError), open(self._path(ref_key(name)), "rb") as f:
            data = f.read(MAX_REFS_BYTES + 1)
            if len(data) > MAX_REFS_BYTES:
                raise too_big(self.url, name)
            return data, oid_of(data)
        return None

    def write_ref(self, name: str, data: bytes, token: str | None) -> None:
        (self.root / "locks").mkdir(exist_ok=True)
        lock = _fs.FileLock(
            self.root / "locks" / f"{name}.lock",
            f"the remote lock of model {name!r}",
            self.lock_timeout,
        )
        with lock:
            current = self.read_ref(name)
            if (current[1] if current else None) != token:
                raise RemoteMovedError(f"the remote {self.url} moved: refs of {name!r} changed")
            path = self._path(ref_key(name))
            path.parent.mkdir(exist_ok=True)
            _fs.atomic_write(path, data)


def _blocks(f: io.BufferedReader) -> Iterator[bytes]:
    with f:
        while block := f.read(BLOCK):
            yield block
