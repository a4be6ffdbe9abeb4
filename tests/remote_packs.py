"""Test helpers that change what a remote holds, wherever it keeps an object (in a pack, or
loose as a remote written before packs): what a damaged or hostile remote looks like."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from modelreg import codec, packs
from modelreg.remotes import open_remote
from modelreg.remotes.base import MAX_INDEX_BYTES, Remote, object_key, pack_key


def _delete(url: str, remote: Remote, key: str) -> None:
    if url.startswith("s3://"):
        remote.client.delete_object(Bucket=remote.bucket, Key=remote.prefix + key)  # type: ignore[attr-defined]
    else:
        os.unlink(Path(url, *key.split("/")))


def _put(url: str, remote: Remote, key: str, data: bytes) -> None:
    if url.startswith("s3://"):
        remote.client.put_object(Bucket=remote.bucket, Key=remote.prefix + key, Body=data)  # type: ignore[attr-defined]
        return
    path = Path(url, *key.split("/"))
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.chmod(0o644)
    path.write_bytes(data)


def remote_objects(url: str) -> dict[str, bytes]:
    """Every packed object of the remote, raw (decoded), by id."""
    remote = open_remote(url)
    found: dict[str, bytes] = {}
    for name in remote.list_packs():
        raw = remote.read_key(pack_key(name, "idx"), MAX_INDEX_BYTES)
        assert raw is not None
        table = packs.IndexTable(raw, name)
        data = b"".join(remote.read_range(pack_key(name, "pack"), 0, table.pack_size))
        for oid, e in table:
            found[oid] = codec.decode(e.encoding, data[e.offset : e.offset + e.stored], e.size)
    return found


def packed_ids(url: str) -> set[str]:
    """Ids the remote's pack indexes name (what the remote holds, as push and pull see it)."""
    remote = open_remote(url)
    ids: set[str] = set()
    for name in remote.list_packs():
        raw = remote.read_key(pack_key(name, "idx"), MAX_INDEX_BYTES)
        if raw is not None:
            ids.update(packs.IndexTable(raw, name).ids())
    return ids


def rewrite_remote(url: str, replace: dict[str, bytes]) -> None:
    """Put the remote's packed objects into one new pack, with ``replace``'s bytes (raw, any
    length) filed under those ids instead: the remote's copy of each is now that. The old
    packs go. An id in ``replace`` kept loose on the remote is overwritten in place."""
    remote = open_remote(url)
    objects = remote_objects(url)
    for oid, body in replace.items():
        if oid not in objects:
            _put(url, remote, object_key(oid), body)
    objects.update({oid: body for oid, body in replace.items() if oid in objects})
    old = remote.list_packs()
    entries: dict[str, packs.Entry] = {}
    body = bytearray(packs.PACK_MAGIC)
    for oid, data in sorted(objects.items()):
        entries[oid] = packs.Entry(len(body), len(data), len(data), codec.RAW, 0)
        body += data
    index = packs.build_index(entries, 0, len(body))
    name = index[-packs.SUM_LEN :].hex()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "p")
        path.write_bytes(bytes(body))
        remote.put_key_file(pack_key(name, "pack"), path)
    _put(url, remote, pack_key(name, "idx"), index)
    for gone in old:
        if gone != name:
            _delete(url, remote, pack_key(gone, "idx"))
            _delete(url, remote, pack_key(gone, "pack"))


def corrupt_remote_object(url: str, oid: str) -> None:
    """Flip one byte of the remote's copy of ``oid`` (its length and index entry stay)."""
    data = bytearray(remote_objects(url)[oid])
    data[len(data) // 2] ^= 0xFF
    rewrite_remote(url, {oid: bytes(data)})


def unpack_remote(url: str) -> None:
    """Turn the remote into one as modelreg wrote before packs: every object loose at
    ``objects/ab/cdef...``, no ``packs/``."""
    remote = open_remote(url)
    for oid, data in remote_objects(url).items():
        _put(url, remote, object_key(oid), data)
    for name in remote.list_packs():
        _delete(url, remote, pack_key(name, "idx"))
        _delete(url, remote, pack_key(name, "pack"))
