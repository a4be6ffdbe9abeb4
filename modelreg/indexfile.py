"""The bytes of one family's version index (index.py says when it is read and written;
docs/format.md draws the layout): the header, the table of entries, what an entry points at,
and ``FamilyIndex``, which answers from them and checks everything it hands out."""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from typing import Any, NamedTuple

import xxhash

from . import _fs, names
from .errors import ModelregError
from .hashing import oid_of
from .model import VersionRecord
from .objects import canonical_json
from .refs import FamilyRefs, RefsKey, resolve_ref
from .schema import FIELDS, SCHEMA, public_fields

Record = dict[str, Any]

INDEX_FORMAT = 2
MAGIC = b"MRVIDX01"
# Changes whenever what an entry holds would change: an index of another layout is rebuilt.
LAYOUT = xxhash.xxh3_128_digest(repr((INDEX_FORMAT, SCHEMA, tuple(FIELDS))).encode())
# magic, layout, refs size, mtime_ns, inode, stamp, count, meta length, data length, data
# token, meta sum, table sum; then the sum of all of that.
HEAD = struct.Struct("<8s16sQQQ16sIIQ8sQQ")
HEADER_SIZE = HEAD.size + 8
# number, record length, fields length, path length, offset, record id, sum
ENTRY = struct.Struct("<IIIIQ16sQ")


class IndexDamaged(Exception):
    """The index cannot be believed; internal, never shown to a user."""


def checksum(*parts: bytes) -> int:
    h = xxhash.xxh3_64()
    for part in parts:
        h.update(part)
    return h.intdigest()


class Entry(NamedTuple):
    num: int
    rec_len: int
    fields_len: int
    path_len: int
    offset: int
    oid: bytes
    check: int  # xxh3-64 of the public fields and the path

    @property
    def version(self) -> str:
        return f"v{self.num}"

    @property
    def size(self) -> int:
        return self.rec_len + self.fields_len + self.path_len


def public_piece(rec: Record) -> tuple[bytes, bytes]:
    """(public fields without tags, checkout path relative to the checkout root) of a record,
    as they are stored; the path is empty when the record's source is not a safe name (the
    slow path then raises what it raises today)."""
    fields = public_fields(rec)
    del fields["tags"]
    rel = f"{rec['name']}/{rec['version']}"
    try:
        typed = VersionRecord.of_view(rec)
        if not typed.is_dir:
            rel += "/" + _fs.check_relpath(str(typed.source))
        path = rel.encode()
    except (ModelregError, KeyError, TypeError):
        path = b""
    return canonical_json(fields), path


def make_entry(num: int, oid: str, raw: bytes, offset: int) -> tuple[Entry, bytes]:
    rec = json.loads(raw)
    if not isinstance(rec, dict) or rec.get("type") != "version":
        raise IndexDamaged
    fields, path = public_piece(rec)
    check = checksum(fields, path)
    return Entry(num, len(raw), len(fields), len(path), offset, bytes.fromhex(oid), check), (
        raw + fields + path
    )


class Source:
    """Bytes of an index file, from an open file (probing) or from memory (whole reads)."""

    def __init__(self, data: bytes | None = None, fd: int | None = None) -> None:
        self.data, self.fd = data, fd

    def read(self, offset: int, n: int) -> bytes:
        if self.data is not None:
            got = self.data[offset : offset + n]
        else:
            assert self.fd is not None
            got = os.pread(self.fd, n, offset)
        if len(got) != n:
            raise IndexDamaged
        return got


class FamilyIndex:
    """One family's versions, tags and removed numbers as the index holds them."""

    def __init__(
        self,
        name: str,
        key: RefsKey,
        meta: dict[str, Any],
        count: int,
        table: Source,
        table_at: int,
        data: Source,
        data_len: int,
        token: bytes,
    ) -> None:
        self.name = name
        self.key = key
        self.tags: dict[str, str] = meta["tags"]
        self.removed: list[str] = meta["removed"]
        self.removed_at: dict[str, str] = meta["removed_at"]
        self.count = count
        self._table, self._table_at = table, table_at
        self._data, self.data_len, self.token = data, data_len, token
        self._latest: str | None = None

    # --- the refs side, as refs.resolve_ref wants it -----------------------------------
    def entry_at(self, i: int) -> Entry:
        return Entry(*ENTRY.unpack(self._table.read(self._table_at + i * ENTRY.size, ENTRY.size)))

    def find(self, num: int) -> Entry | None:
        lo, hi = 0, self.count
        while lo < hi:
            mid = (lo + hi) // 2
            e = self.entry_at(mid)
            if e.num == num:
                return e
            if e.num < num:
                lo = mid + 1
            else:
                hi = mid
        return None

    def latest(self) -> str | None:
        if not self.count:
            return None
        if self._latest is None:
            e = self.entry_at(self.count - 1)
            self._record(e)  # its record names its number
            self._latest = e.version
        return self._latest

    def has(self, version: str) -> bool:
        return self.find(names.version_number(version)) is not None

    def resolve(self, ref: str) -> str:
        return resolve_ref(self, ref)

    def tags_of(self, version: str) -> list[str]:
        tags = sorted(t for t, v in self.tags.items() if v == version)
        return [names.LATEST, *tags] if version == self.latest() else tags

    # --- the records --------------------------------------------------------------------
    def _bytes(self, e: Entry) -> bytes:
        if e.offset + e.size > self.data_len:
            raise IndexDamaged
        blob = self._data.read(e.offset, e.size)
        if checksum(blob[e.rec_len :]) != e.check:
            raise IndexDamaged
        return blob

    def _record(self, e: Entry) -> Record:
        """The entry's record; its bytes must hash to the entry's id and name the entry's
        family and number, so an entry damaged in any field is caught here."""
        raw = self._bytes(e)[: e.rec_len]
        if bytes.fromhex(oid_of(raw)) != e.oid:
            raise IndexDamaged
        rec: Record = json.loads(raw)
        if rec.get("version") != e.version or rec.get("name") != self.name:
            raise IndexDamaged
        return rec

    def record_with_id(self, version: str) -> tuple[str, Record]:
        """The version's record id and record, verified, with its tags."""
        e = self.find(names.version_number(version))
        if e is None:
            raise IndexDamaged
        rec = self._record(e)
        rec["tags"] = self.tags_of(version)
        return e.oid.hex(), rec

    def entries(self) -> list[Entry]:
        table = self._table.read(self._table_at, self.count * ENTRY.size)
        return [Entry(*t) for t in ENTRY.iter_unpack(table)]

    def pieces(self) -> Iterator[tuple[int, bytes, bytes]]:
        """(number, public fields JSON, escaped checkout path) of every version, in order;
        for whole reads, whose table was checked as a whole."""
        table = self._table.read(self._table_at, self.count * ENTRY.size)
        data = self._data.read(0, self.data_len)
        view = memoryview(data)
        last = 0
        for num, rec_len, fields_len, path_len, offset, _oid, check in ENTRY.iter_unpack(table):
            start = offset + rec_len
            mid = start + fields_len
            end = mid + path_len
            if (
                end > self.data_len
                or num <= last
                or xxhash.xxh3_64_intdigest(view[start:end]) != check
            ):
                raise IndexDamaged
            last = num
            yield num, data[start:mid], data[mid:end]

    def views(self) -> Iterator[Record]:
        """Every version in the public shape (without file_path and checked_out)."""
        latest = self.latest()
        by_version: dict[str, list[str]] = {}
        for tag, version in sorted(self.tags.items()):
            by_version.setdefault(version, []).append(tag)
        for num, fields, _path in self.pieces():
            rec: Record = json.loads(fields)
            version = f"v{num}"
            tags = by_version.get(version, [])
            rec["tags"] = [names.LATEST, *tags] if version == latest else tags
            yield rec


def is_orphan(filename: str) -> bool:
    """A temporary file (``_fs.tmp_name``) of a process that no longer runs."""
    if not filename.startswith(_fs.TMP_PREFIX):
        return False
    pid = filename[len(_fs.TMP_PREFIX) :].partition("-")[0]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def meta_json(refs: FamilyRefs) -> bytes:
    return canonical_json(
        {
            "tags": refs.tags,
            "removed": sorted(refs.removed, key=names.version_number),
            "removed_at": refs.removed_at,
        }
    )
