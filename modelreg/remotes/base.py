"""What a remote is: a place that holds objects and refs, with compare-and-swap on refs.

Layout, the same in a folder and under an S3 prefix::

    <remote>/
      modelreg-remote.yaml      format marker, written on first push
      packs/pack-<name>.pack    objects, as a local pack holds them (docs/format.md)
      packs/pack-<name>.idx     its index; uploaded after the pack, so it names only bytes there
      objects/ab/cdef...        loose objects, as remotes written before packs hold them
      refs/<name>.yaml          the family's refs, in the local format
      signatures/<name>.json    the family's signatures file, in the local format

A remote is deliberately dumb: it stores bytes under keys. Verifying objects, merging refs
and renumbering are the job of ``modelreg.sync``, so the folder and S3 remotes stay twins that
pass one contract suite.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import RemoteError
from ..refs import MAX_REFS_BYTES

MARKER = "modelreg-remote.yaml"
MARKER_BODY = b"format: 1\nhash: xxh3-128\n"
BLOCK = 1 << 20
PACK_NAME_RE = re.compile(r"[0-9a-f]{32}")
MAX_INDEX_BYTES = 256 << 20  # a remote pack index (5.5 million objects) is read up to this


def pack_key(name: str, ext: str) -> str:
    """``packs/pack-<name>.pack`` or ``.idx``."""
    return f"packs/pack-{name}.{ext}"


def pack_names(keys: Iterator[str]) -> list[str]:
    """Names of the packs whose index is among ``keys`` (file names under ``packs/``)."""
    found = []
    for key in keys:
        if key.startswith("pack-") and key.endswith(".idx") and PACK_NAME_RE.fullmatch(key[5:-4]):
            found.append(key[5:-4])
    return sorted(found)


def object_key(oid: str) -> str:
    return f"objects/{oid[:2]}/{oid[2:]}"


def ref_key(name: str) -> str:
    return f"refs/{name}.yaml"


def signatures_key(name: str) -> str:
    """A family's signatures file (modelreg/signatures.py), beside its refs."""
    return f"signatures/{name}.json"


def too_big(url: str, name: str) -> RemoteError:
    return RemoteError(
        f"refs file {ref_key(name)} on remote {url} is larger than {MAX_REFS_BYTES >> 20} MiB",
        hint="it was not written by modelreg; remove it from the remote",
    )


class NotRegularFileError(RemoteError):
    """What a folder remote holds under a key is not a regular file (a FIFO, a link, a
    folder...): never read. ``kind`` says what it is."""

    def __init__(self, message: str, kind: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.kind = kind


class ObjectTooLargeError(RemoteError):
    """A remote's object holds more bytes than the caller said it may: reading stopped there."""


def too_large(url: str, oid: str, limit: int) -> ObjectTooLargeError:
    return ObjectTooLargeError(
        f"object {oid} on remote {url} is larger than the {limit} bytes it may have; "
        "it was not read further",
        hint="it was not written by modelreg; remove it from the remote",
    )


def bounded(blocks: Iterator[bytes], url: str, oid: str, limit: int | None) -> Iterator[bytes]:
    """``blocks``, stopped with ObjectTooLargeError as soon as they pass ``limit`` bytes."""
    seen = 0
    try:
        for block in blocks:
            seen += len(block)
            if limit is not None and seen > limit:
                raise too_large(url, oid, limit)
            yield block
    finally:
        close = getattr(blocks, "close", None)
        if close is not None:
            close()  # the file or the HTTP body, now rather than when collected


class Remote(ABC):
    url: str

    @abstractmethod
    def check(self, create: bool) -> None:
        """Fail clearly if the remote cannot be used; with ``create``, mark it as a remote."""

    @abstractmethod
    def list_objects(self) -> set[str]:
        """Ids of every loose object on the remote (``objects/``: remotes written before
        packs). Lists the whole prefix: push and pull never call it."""

    # --- packs (modelreg.wire reads and writes them) ----------------------------------------
    @abstractmethod
    def list_packs(self) -> list[str]:
        """Names of the packs whose index is on the remote (one listing of ``packs/``)."""

    @abstractmethod
    def read_key(self, key: str, limit: int) -> bytes | None:
        """A small key's bytes, or None when it is absent; ObjectTooLargeError, unread, when
        it holds more than ``limit`` bytes."""

    @abstractmethod
    def read_range(self, key: str, start: int, length: int) -> Iterator[bytes]:
        """Exactly ``length`` bytes of ``key`` from ``start``, in blocks; a RemoteError
        (before the first block when it can tell) if the key is absent or shorter."""

    @abstractmethod
    def put_key_file(
        self,
        key: str,
        path: Path,
        journal: Path | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Upload a file to ``key``, streamed; visible whole or not at all. A large file goes
        in parts (S3 multipart upload) whose upload id is kept in ``journal``, so a rerun
        after a kill sends only the parts the remote lacks. ``progress`` gets bytes sent."""

    @abstractmethod
    def put_object(self, oid: str, data: bytes) -> None:
        """Store an object (idempotent: the same id always means the same bytes)."""

    @abstractmethod
    def put_file(self, oid: str, path: Path) -> None:
        """Store an object from a file, streamed: a large object is never held whole."""

    @abstractmethod
    def iter_object(self, oid: str, limit: int | None = None) -> Iterator[bytes]:
        """The object's bytes as stored, in blocks of at most ``BLOCK``; the caller verifies
        them. Raises NotFoundError before the first block when the object is absent, and
        ObjectTooLargeError (before reading when the size is known, else as soon as it shows)
        when it holds more than ``limit`` bytes: a remote decides nothing about how much we
        read. A folder remote's object that is not a regular file is a RemoteError."""

    def get_object(self, oid: str, limit: int | None = None) -> bytes:
        """The whole object (for small ones; large ones go through ``iter_object``)."""
        return b"".join(self.iter_object(oid, limit))

    # --- retention (modelreg.remote_gc) ----------------------------------------------------
    @abstractmethod
    def list_keys(self, prefix: str) -> dict[str, tuple[int, float]]:
        """Every finished key under ``prefix`` (``packs/`` or ``objects/``): key -> (size,
        last modified as seconds since the epoch). A file still being written is not one."""

    @abstractmethod
    def delete_key(self, key: str) -> None:
        """Delete ``key``; a key already gone is no error."""

    @abstractmethod
    def list_refs(self) -> list[str]:
        """Family names that have a refs file."""

    @abstractmethod
    def read_ref(self, name: str) -> tuple[bytes, str] | None:
        """(content, token) of a family's refs, or None. The token is what ``write_ref``
        compares against. A refs file over ``MAX_REFS_BYTES`` raises RemoteError unread."""

    @abstractmethod
    def write_ref(self, name: str, data: bytes, token: str | None) -> None:
        """Replace the refs only if they are still at ``token`` (None: only if absent);
        otherwise raise RemoteMovedError."""

    @abstractmethod
    def read_side(self, key: str) -> tuple[bytes, str] | None:
        """(content, token) of a small file kept beside the refs (``signatures_key``), or
        None; over ``MAX_REFS_BYTES`` it is a RemoteError, unread."""

    @abstractmethod
    def write_side(self, key: str, data: bytes, token: str | None) -> None:
        """Replace that file only if it is still at ``token`` (None: only if absent);
        otherwise raise RemoteMovedError, as ``write_ref`` does."""
