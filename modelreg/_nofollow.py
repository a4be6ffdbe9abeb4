"""Folders opened one level at a time without following links.

A path such as ``models/m/v1/sub/f`` is never handed to the kernel whole: each folder is
opened relative to its parent's descriptor with ``O_NOFOLLOW``, so a link planted anywhere
below the top folder is seen as a link, never gone through. The top folder itself is opened
normally (a user may make it a link on purpose).
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from types import TracebackType

from .hashing import READ_SIZE, new_hasher

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Tree:
    """Folders under ``root``, each opened once, relative to its parent. ``folder(parts,
    create=True)`` replaces a link or file standing where a folder belongs; ``create=False``
    reports it as absent instead."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._fds: dict[tuple[str, ...], int] = {}

    def __enter__(self) -> Tree:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def folder(self, parts: tuple[str, ...], create: bool) -> int | None:
        if parts in self._fds:
            return self._fds[parts]
        if not parts:
            if create:
                self.root.mkdir(parents=True, exist_ok=True)
            try:
                fd: int | None = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except (FileNotFoundError, NotADirectoryError):
                return None
        else:
            parent = self.folder(parts[:-1], create)
            fd = open_real_dir(parent, parts[-1], create) if parent is not None else None
        if fd is not None:
            self._fds[parts] = fd
        return fd


def open_real_dir(parent: int, name: str, create: bool) -> int | None:
    """The folder ``name`` in ``parent``; a link or file in its place is None, or with
    ``create`` is removed (the link itself, never its target) and a folder made instead."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=parent)
    except FileNotFoundError:
        if not create:
            return None
    except OSError as e:
        if e.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        if not create:
            return None
        os.unlink(name, dir_fd=parent)  # a link (never followed) or a file
    os.mkdir(name, 0o777, dir_fd=parent)
    return os.open(name, DIR_FLAGS, dir_fd=parent)


def lstat_at(fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def hash_at(fd: int, name: str) -> str:
    h = new_hasher()
    with open(os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd), "rb") as f:
        while block := f.read(READ_SIZE):
            h.update(block)
    return h.hexdigest()


def prune_empty(tree: Tree, base: tuple[str, ...]) -> None:
    """After a failed first checkout, drop the version and family folders it made (only if
    they are empty), so a refused version leaves no trace in the tree."""
    for depth in range(len(base), 0, -1):
        parent = tree.folder(base[: depth - 1], create=False)
        if parent is not None:
            with contextlib.suppress(OSError):
                os.rmdir(base[depth - 1], dir_fd=parent)


def remove_strays(folder: int, prefix: str, keep: set[str]) -> list[str]:
    """Entries in a directory checkout that the version does not hold (a user added them, or
    a link stands where a file was): removed, never followed."""
    removed = []
    with os.scandir(folder) as entries:
        found = list(entries)
    for entry in found:
        rel = prefix + entry.name
        if entry.is_dir(follow_symlinks=False):
            sub = os.open(entry.name, DIR_FLAGS, dir_fd=folder)
            try:
                removed.extend(remove_strays(sub, rel + "/", keep))
            finally:
                os.close(sub)
            with contextlib.suppress(OSError):
                os.rmdir(entry.name, dir_fd=folder)
        elif rel not in keep or not entry.is_file(follow_symlinks=False):
            os.unlink(entry.name, dir_fd=folder)
            removed.append(rel)
    return removed
