"""What a remote is: a place that holds objects and refs, with compare-and-swap on refs.

Layout, the same in a folder and under an S3 prefix::

    <remote>/
      modelreg-remote.yaml      format marker, written on first push
      objects/ab/cdef...        the same objects as .modelreg/objects, byte for byte
      refs/<name>.yaml          the family's refs, in the local format

A remote is deliberately dumb: it stores bytes under keys. Verifying objects, merging refs
and renumbering are the job of ``modelreg.sync``, so the folder and S3 remotes stay twins that
pass one contract suite.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

from ..errors import RemoteError
from ..refs import MAX_REFS_BYTES

MARKER = "modelreg-remote.yaml"
MARKER_BODY = b"format: 1\nhash: xxh3-128\n"
BLOCK = 1 << 20


def object_key(oid: str) -> str:
    return f"objects/{oid[:2]}/{oid[2:]}"


def ref_key(name: str) -> str:
    return f"refs/{name}.yaml"


def too_big(url: str, name: str) -> RemoteError:
    return RemoteError(
        f"refs file {ref_key(name)} on remote {url} is larger than {MAX_REFS_BYTES >> 20} MiB",
        hint="it was not written by modelreg; remove it from the remote",
    )


class Remote(ABC):
    url: str

    @abstractmethod
    def check(self, create: bool) -> None:
        """Fail clearly if the remote cannot be used; with ``create``, mark it as a remote."""

    @abstractmethod
    def list_objects(self) -> set[str]:
        """Ids of every object on the remote."""

    @abstractmethod
    def put_object(self, oid: str, data: bytes) -> None:
        """Store an object (idempotent: the same id always means the same bytes)."""

    @abstractmethod
    def put_file(self, oid: str, path: Path) -> None:
        """Store an object from a file, streamed: a large object is never held whole."""

    @abstractmethod
    def iter_object(self, oid: str) -> Iterator[bytes]:
        """The object's bytes as stored, in blocks of at most ``BLOCK``; the caller verifies
        them. Raises NotFoundError before the first block when the object is absent."""

    def get_object(self, oid: str) -> bytes:
        """The whole object (for small ones; large ones go through ``iter_object``)."""
        return b"".join(self.iter_object(oid))

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
