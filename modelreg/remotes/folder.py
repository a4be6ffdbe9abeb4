"""A remote in a plain folder (a shared drive, an NFS mount, another disk).

Anyone who can write to the folder can put anything there, so every file is opened without
blocking and without following links below the remote's own folder (which may itself be a
link), and only a regular file is read: a FIFO would hang the reader, a link could lead to
``/dev/zero`` or to a file outside the remote. modelreg never writes links there.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from .. import _fs, _nofollow
from ..errors import NotFoundError, RemoteError, RemoteMovedError
from ..hashing import is_oid, oid_of
from ..refs import MAX_REFS_BYTES
from .base import (
    BLOCK,
    MARKER,
    MARKER_BODY,
    NotRegularFileError,
    Remote,
    bounded,
    object_key,
    pack_names,
    ref_key,
    too_big,
    too_large,
)

OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC


class NotRegularError(Exception):
    """What stands at a key is not a regular file; ``args[0]`` says what it is."""


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
        for sub in ("packs", "refs", "locks"):
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

    def _open(self, key: str) -> io.BufferedReader:
        """The regular file at ``key``: FileNotFoundError when nothing is there (or a folder
        on the way is not a real folder), NotRegularError when something else is."""
        *folders, name = key.split("/")
        with _nofollow.Tree(self.root) as tree:
            parent = tree.folder(tuple(folders), create=False)
            if parent is None:
                raise FileNotFoundError(errno.ENOENT, "not found", key)
            try:
                fd = os.open(name, OPEN_FLAGS, dir_fd=parent)
            except OSError as e:
                if e.errno == errno.ELOOP:
                    raise NotRegularError("a symbolic link") from None
                raise
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            raise NotRegularError(_kind(mode))
        return open(fd, "rb")

    def iter_object(self, oid: str, limit: int | None = None) -> Iterator[bytes]:
        try:
            f = self._open(object_key(oid))
        except FileNotFoundError:
            raise NotFoundError(
                f"object {oid} is missing on remote {self.url}",
                hint="push it again from a registry that has it",
            ) from None
        except NotRegularError as e:
            raise NotRegularFileError(
                f"object {oid} on remote {self.url} is {e.args[0]}, not a regular file",
                e.args[0],
                hint="it was not written by modelreg; remove it from the remote and push the "
                "object again from a registry that has it",
            ) from None
        if limit is not None and os.fstat(f.fileno()).st_size > limit:
            f.close()
            raise too_large(self.url, oid, limit)
        return bounded(_blocks(f), self.url, oid, limit)

    def _open_key(self, key: str, what: str = "") -> io.BufferedReader | None:
        """``key`` opened for reading, None when absent; ``what`` names it in the error."""
        try:
            return self._open(key)
        except FileNotFoundError:
            return None
        except NotRegularError as e:
            named = f"{what} {key}" if what else key
            raise NotRegularFileError(
                f"{named} on remote {self.url} is {e.args[0]}, not a regular file",
                e.args[0],
                hint="it was not written by modelreg; remove it from the remote",
            ) from None

    def list_packs(self) -> list[str]:
        with _nofollow.Tree(self.root) as tree:
            folder = tree.folder(("packs",), create=False)
            if folder is None:
                return []
            return pack_names(iter(os.listdir(folder)))

    def read_key(self, key: str, limit: int) -> bytes | None:
        f = self._open_key(key)
        if f is None:
            return None
        with f:
            if os.fstat(f.fileno()).st_size > limit:
                raise too_large(self.url, key, limit)
            data = f.read(limit + 1)
        if len(data) > limit:
            raise too_large(self.url, key, limit)
        return data

    def read_range(self, key: str, start: int, length: int) -> Iterator[bytes]:
        f = self._open_key(key)
        if f is None or os.fstat(f.fileno()).st_size < start + length:
            if f is not None:
                f.close()
            raise RemoteError(
                f"{key} on remote {self.url} is missing or shorter than its index says",
                hint="push again from a registry that has its objects",
            )
        return _range(f, start, length)

    def put_key_file(
        self,
        key: str,
        path: Path,
        journal: Path | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        final = self._path(key)
        if final.exists():
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "rb") as src, _fs.atomic_writer(final, mode=0o444) as out:
            while block := src.read(BLOCK):
                out.write(block)
                if progress:
                    progress(len(block))

    def list_keys(self, prefix: str) -> dict[str, tuple[int, float]]:
        found: dict[str, tuple[int, float]] = {}
        top = self._path(prefix.rstrip("/"))
        if top.is_symlink() or not top.is_dir():
            return found
        for folder, _dirs, files in os.walk(top, followlinks=False):
            rel = Path(folder).relative_to(self.root).as_posix()
            for name in files:
                if name.startswith(_fs.TMP_PREFIX):
                    continue  # a write under way
                st = os.lstat(os.path.join(folder, name))
                if stat.S_ISREG(st.st_mode):
                    found[f"{rel}/{name}"] = (st.st_size, st.st_mtime)
        return found

    def delete_key(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        _fs.fsync_dir(path.parent)

    def list_refs(self) -> list[str]:
        """Names under ``refs/``, a real folder (a link there is no refs folder, as for
        ``read_ref``)."""
        with _nofollow.Tree(self.root) as tree:
            refs = tree.folder(("refs",), create=False)
            if refs is None:
                return []
            with os.scandir(refs) as entries:
                return sorted(
                    e.name[: -len(".yaml")]
                    for e in entries
                    if e.name.endswith(".yaml") and not e.name.startswith(_fs.TMP_PREFIX)
                )

    def read_ref(self, name: str) -> tuple[bytes, str] | None:
        try:
            return self._read_small(ref_key(name), "refs file")
        except ValueError:
            raise too_big(self.url, name) from None

    def read_side(self, key: str) -> tuple[bytes, str] | None:
        try:
            return self._read_small(key, "file")
        except ValueError:
            raise RemoteError(
                f"{key} on remote {self.url} is larger than {MAX_REFS_BYTES >> 20} MiB",
                hint="it was not written by modelreg; remove it from the remote",
            ) from None

    def _read_small(self, key: str, what: str) -> tuple[bytes, str] | None:
        """(content, token) of a small regular file, None when absent; ValueError when it
        holds more than MAX_REFS_BYTES."""
        f = self._open_key(key, what)
        if f is None:
            return None
        with f:
            data = f.read(MAX_REFS_BYTES + 1)
        if len(data) > MAX_REFS_BYTES:
            raise ValueError(key)
        return data, oid_of(data)

    def write_ref(self, name: str, data: bytes, token: str | None) -> None:
        self._swap(ref_key(name), f"{name}.lock", f"model {name!r}", data, token)

    def write_side(self, key: str, data: bytes, token: str | None) -> None:
        lock = key.replace("/", ".") + ".lock"  # signatures/m.json -> signatures.m.json.lock
        self._swap(key, lock, key, data, token)

    def _swap(self, key: str, lock_name: str, what: str, data: bytes, token: str | None) -> None:
        (self.root / "locks").mkdir(exist_ok=True)
        lock = _fs.FileLock(
            self.root / "locks" / lock_name, f"the remote lock of {what}", self.lock_timeout
        )
        with lock:
            try:
                current = self._read_small(key, "file")
            except ValueError:
                current = (b"", "too large")  # never a token we handed out: it moved
            if (current[1] if current else None) != token:
                raise RemoteMovedError(f"the remote {self.url} moved: {key} changed")
            path = self._path(key)
            path.parent.mkdir(exist_ok=True)
            _fs.atomic_write(path, data)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def _range(f: io.BufferedReader, start: int, length: int) -> Iterator[bytes]:
    with f:
        f.seek(start)
        while length > 0:
            block = f.read(min(BLOCK, length))
            if not block:
                raise RemoteError(f"{f.name} ended before the range its index gives")
            length -= len(block)
            yield block


def _blocks(f: io.BufferedReader) -> Iterator[bytes]:
    with f:
        while block := f.read(BLOCK):
            yield block
