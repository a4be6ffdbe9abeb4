"""File-system primitives: atomic writes, the writer lock, and safe path joins.

The rule behind every write here: the bytes go to a temporary file in the same folder, are
flushed to disk, and only then take their final name with ``os.replace``. A crash at any
instant leaves either the old file or the new one; a leftover temporary file is invisible to
readers (they never look at ``TMP_PREFIX`` names) and ``gc`` removes it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .errors import LockTimeoutError, UnsafePathError

TMP_PREFIX = ".tmp-"


def tmp_name(final: Path) -> Path:
    """A per-process, unguessable temporary name beside ``final``."""
    return final.with_name(f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}-{final.name}")


@functools.cache
def umask() -> int:
    """The process's umask, read once. Files get ``mode & ~umask`` like the folders do, so a
    registry in a shared group folder (umask 002) or a private one (077) is what its owner
    asked for."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", "rb") as f:
        for line in f:
            if line.startswith(b"Umask:"):
                return int(line.split()[1], 8)
    current = os.umask(0o022)  # no reader elsewhere: set and restore at once
    os.umask(current)
    return current


def syncfs(path: Path) -> bool:
    """Flush the whole file system holding ``path`` (Linux); False where not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        if fn(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)
    return True


_KEEP_SIZE = 1  # FALLOC_FL_KEEP_SIZE: the file grows as it is written, never holds zeros


@functools.cache
def _fallocate() -> Any:
    try:
        fn = ctypes.CDLL(None, use_errno=True).fallocate
    except (OSError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
    return fn


def preallocate(fd: int, size: int) -> None:
    """Reserve the blocks of a file about to be written whole: on ext4, writing into reserved
    blocks took 0.6 times as long as appending (docs/benchmarks.md), and a full disk fails
    here, before any writing. Skipped where the file system cannot reserve: Linux's
    ``fallocate``, not ``posix_fallocate``, whose fallback writes zeros."""
    fn = _fallocate()
    if fn is None or size <= 0:
        return
    if fn(fd, _KEEP_SIZE, 0, size) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            raise OSError(err, os.strerror(err))


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(final: Path, mode: int = 0o644, durable: bool = True) -> Iterator[IO[bytes]]:
    """Yield a binary file that becomes ``final`` only if the block finishes without error."""
    tmp = tmp_name(final)
    f = open(tmp, "xb")  # noqa: SIM115 - closed in finally, after fsync and before rename
    try:
        yield f
        f.flush()
        if durable:
            os.fsync(f.fileno())
        f.close()
        os.chmod(tmp, mode & ~umask())
        os.replace(tmp, final)
        if durable:
            fsync_dir(final.parent)
    finally:
        f.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def atomic_write(
    final: Path, data: bytes | memoryview, mode: int = 0o644, durable: bool = True
) -> None:
    with atomic_writer(final, mode=mode, durable=durable) as f:
        f.write(data)


class FileLock:
    """An advisory ``flock`` on a lock file, waited for up to ``timeout`` seconds.

    ``flock`` rather than an ``O_EXCL`` lock file because the kernel drops it when its holder
    dies, even by SIGKILL: a crashed writer never leaves a stale lock that blocks the next one.
    The lock only serializes writers; readers take none and rely on atomic renames.
    """

    def __init__(self, path: Path, what: str, timeout: float, shared: bool = False) -> None:
        self.path = path
        self.what = what
        self.timeout = timeout
        self.shared = shared
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        op = (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
        deadline = time.monotonic() + self.timeout
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, op)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
            if time.monotonic() >= deadline:
                os.close(fd)
                raise LockTimeoutError(
                    f"gave up after {self.timeout:g}s waiting for {self.what} ({self.path})",
                    hint="another modelreg process is writing; retry, or raise "
                    "MODELREG_LOCK_TIMEOUT",
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def check_relpath(relpath: str) -> str:
    """Refuse a relative path that could escape the folder it is joined to."""
    if not relpath or "\x00" in relpath or "\\" in relpath:
        raise UnsafePathError(f"unsafe path {relpath!r} in a directory model")
    if relpath.startswith("/") or (len(relpath) > 1 and relpath[1] == ":"):
        raise UnsafePathError(f"absolute path {relpath!r} in a directory model")
    parts = relpath.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise UnsafePathError(f"path {relpath!r} leaves its directory model")
    if any(ord(c) < 32 for c in relpath):
        raise UnsafePathError(f"path {relpath!r} holds a control character")
    return relpath


def safe_join(root: Path, relpath: str) -> Path:
    return root.joinpath(*check_relpath(relpath).split("/"))
