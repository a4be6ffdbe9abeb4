"""The version index: what ``list``, ``log``, ``families``, ``summary`` and ``get NAME@REF``
read instead of parsing the refs YAML and opening one record file per version.

::

    .modelreg/index/
      <name>.idx             header, tags and removed versions (JSON), then one 48-byte
                             entry per version, sorted by number
      <name>.<token>.dat     what the entries point at, per version: the version record's
                             bytes, its public fields (compact JSON) and its checkout path

It is a cache, never the only copy of anything: every byte is derived from the refs and the
records, and it is rebuilt from them when missing, stale or damaged. Deleting the folder is
always safe.

- **Stale** is noticed by the key of the refs file it was built from (``refs.RefsKey``: the
  stamp line, size, mtime and inode), compared with one open, fstat and 80-byte read of the
  refs file.
- **Damaged** is noticed by checksums: the header, the JSON and the table carry xxh3-64
  sums, each entry's sum covers its own fields and its public fields, and a record read
  through it must hash to the id the entry gives. Whatever does not check out is never
  believed; the answer then comes from the refs and records, and the index is rebuilt.
- **Written only under the family's lock.** Writers update it after publishing the refs
  (append to the data file, replace the table); a reader that found it stale rebuilds it in
  memory and writes it only when the lock is free at once, so readers never wait. The table
  is written to a temporary file and renamed; the data file is only appended to (a killed
  writer's tail is referenced by nothing). Not fsynced: after a crash it is at worst stale
  or damaged, which is noticed, and rebuilt.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import _fs, names
from .errors import LockTimeoutError, ModelregError
from .indexfile import (
    ENTRY,
    HEAD,
    HEADER_SIZE,
    LAYOUT,
    MAGIC,
    Entry,
    FamilyIndex,
    IndexDamaged,
    Source,
    checksum,
    is_orphan,
    make_entry,
    meta_json,
)
from .objects import ObjectStore
from .refs import FamilyRefs, RefsKey, RefStore

__all__ = ["FamilyIndex", "IndexDamaged", "VersionIndex"]

_GARBAGE_SLACK = 1 << 16  # data bytes no entry names, tolerated before compaction


class VersionIndex:
    """The index of every family of one registry (``.modelreg/index/``)."""

    def __init__(self, root: Path, refs: RefStore, objects: ObjectStore) -> None:
        self.root = root
        self.refs = refs
        self.objects = objects

    def idx_path(self, name: str) -> Path:
        return self.root / f"{names.check_family(name)}.idx"

    def data_path(self, name: str, token: bytes) -> Path:
        return self.root / f"{name}.{token.decode()}.dat"

    # --- reading ------------------------------------------------------------------------
    def _parse(self, name: str, head: bytes, key: RefsKey | None) -> tuple[Any, ...]:
        if len(head) < HEADER_SIZE:
            raise IndexDamaged
        body, (total,) = head[: HEAD.size], struct.unpack("<Q", head[HEAD.size : HEADER_SIZE])
        if checksum(body) != total:
            raise IndexDamaged
        fields = HEAD.unpack(body)
        magic, layout, size, mtime, ino, stamp = fields[:6]
        if magic != MAGIC or layout != LAYOUT:
            raise IndexDamaged
        built_for = RefsKey(size, mtime, ino, stamp.hex())
        if key is not None and built_for != key:
            raise IndexDamaged
        return (built_for, *fields[6:])

    def _open(self, name: str, key: RefsKey, whole: bool) -> FamilyIndex:
        try:
            with open(self.idx_path(name), "rb") as f:
                if whole:
                    blob = f.read()
                    head = blob[:HEADER_SIZE]
                else:
                    head = f.read(HEADER_SIZE)
                built_for, count, meta_len, data_len, token, meta_sum, table_sum = self._parse(
                    name, head, key
                )
                if not re.fullmatch(rb"[0-9a-f]{8}", token):
                    raise IndexDamaged
                meta_raw = blob[HEADER_SIZE : HEADER_SIZE + meta_len] if whole else f.read(meta_len)
                if len(meta_raw) != meta_len or checksum(meta_raw) != meta_sum:
                    raise IndexDamaged
                meta = json.loads(meta_raw)
                table_at = HEADER_SIZE + meta_len
                end = table_at + count * ENTRY.size
                if whole:
                    if len(blob) != end or checksum(blob[table_at:]) != table_sum:
                        raise IndexDamaged
                    table = Source(blob)
                else:
                    if os.fstat(f.fileno()).st_size != end:
                        raise IndexDamaged
                    table = Source(fd=os.dup(f.fileno()))
            with open(self.data_path(name, token), "rb") as d:
                if whole:
                    data = Source(d.read(data_len))
                    if len(data.data or b"") != data_len:
                        raise IndexDamaged
                else:
                    if os.fstat(d.fileno()).st_size < data_len:
                        raise IndexDamaged
                    data = Source(fd=os.dup(d.fileno()))
        except (OSError, ValueError, KeyError, TypeError):  # unreadable is as good as damaged
            raise IndexDamaged from None
        return FamilyIndex(name, built_for, meta, count, table, table_at, data, data_len, token)

    @contextlib.contextmanager
    def probe(self, name: str) -> Iterator[FamilyIndex | None]:
        """The family's index for a few look-ups (files kept open meanwhile); None when the
        family has no refs. Built (and, if the lock is free, written) when not current."""
        key = self.refs.key(name)
        if key is None:
            yield None
            return
        try:
            found = self._open(name, key, whole=False)
        except IndexDamaged:
            yield self.rebuild(name)
            return
        try:
            yield found
        finally:
            for source in (found._table, found._data):
                if source.fd is not None:
                    os.close(source.fd)

    def load(self, name: str) -> FamilyIndex | None:
        """The whole family index in memory, checked; None when the family has no refs."""
        key = self.refs.key(name)
        if key is None:
            return None
        try:
            return self._open(name, key, whole=True)
        except IndexDamaged:
            return self.rebuild(name)

    def rebuild(self, name: str) -> FamilyIndex | None:
        """Build the index from the refs and the records; write it when nobody holds the
        family's lock (a writer then updates it itself)."""
        refs, key = self.refs.read_keyed(name)
        if refs is None or key is None:
            return None
        entries, blob = [], bytearray()
        for version in sorted(refs.versions, key=names.version_number):
            oid = refs.versions[version]
            raw = self.objects.get(oid)
            try:
                e, piece = make_entry(names.version_number(version), oid, raw, len(blob))
            except (IndexDamaged, ValueError):
                raise ModelregError(
                    f"{name}@{version}: object {oid} is not a version record"
                ) from None
            entries.append(e)
            blob += piece
        token = secrets.token_hex(4).encode()
        meta = meta_json(refs)
        table = b"".join(ENTRY.pack(*e) for e in entries)
        with contextlib.suppress(OSError, LockTimeoutError), self._try_lock(name) as locked:
            if locked and self.refs.key(name) == key:
                self._write(name, key, meta, table, len(blob), token, bytes(blob))
        header_meta = json.loads(meta)
        return FamilyIndex(
            name,
            key,
            header_meta,
            len(entries),
            Source(table),
            0,
            Source(bytes(blob)),
            len(blob),
            token,
        )

    @contextlib.contextmanager
    def _try_lock(self, name: str) -> Iterator[bool]:
        lock = _fs.FileLock(self.refs.locks / f"{name}.lock", "index", 0.0)
        try:
            lock.acquire()
        except LockTimeoutError:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    # --- writing (under the family's lock) ----------------------------------------------
    def _write(
        self,
        name: str,
        key: RefsKey,
        meta: bytes,
        table: bytes,
        data_len: int,
        token: bytes,
        new_data: bytes | None,
    ) -> None:
        """Write a fresh data file (``new_data``), then the table that names it."""
        self.root.mkdir(exist_ok=True)
        if new_data is not None:
            _fs.atomic_write(self.data_path(name, token), new_data, durable=False)
        body = HEAD.pack(
            MAGIC,
            LAYOUT,
            key.size,
            key.mtime_ns,
            key.ino,
            bytes.fromhex(key.stamp),
            len(table) // ENTRY.size,
            len(meta),
            data_len,
            token,
            checksum(meta),
            checksum(table),
        )
        head = body + struct.pack("<Q", checksum(body))
        _fs.atomic_write(self.idx_path(name), head + meta + table, durable=False)
        if new_data is not None:
            self._drop_data(name, keep=token)

    def _drop_data(self, name: str, keep: bytes | None) -> None:
        """Remove the family's data files other than ``keep``, and temporary files whose
        writer is dead (a killed process's); called under the family's lock."""
        mine = re.compile(re.escape(name) + r"\.([0-9a-f]{8})\.dat")
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.root):
                m = mine.fullmatch(entry.name)
                if (m and m.group(1).encode() != keep) or is_orphan(entry.name):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)

    def published(
        self, name: str, old_key: RefsKey | None, refs: FamilyRefs, new_key: RefsKey | None
    ) -> None:
        """Bring the index from ``old_key`` to ``refs`` (``new_key``) after a write. When it
        was not current for ``old_key`` it is left alone: readers rebuild it. Never fails:
        the refs are published already, and an index left stale is only slower."""
        with contextlib.suppress(OSError, IndexDamaged, ModelregError, ValueError):
            self._publish(name, old_key, refs, new_key)

    def _publish(
        self, name: str, old_key: RefsKey | None, refs: FamilyRefs, new_key: RefsKey | None
    ) -> None:
        if new_key is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.idx_path(name))
            self._drop_data(name, keep=None)
            return
        if old_key is None:
            return self._start(name, refs, new_key)
        try:
            current = self._open(name, old_key, whole=False)
        except IndexDamaged:
            return None
        try:
            self._advance(name, current, refs, new_key)
        except (IndexDamaged, ModelregError, ValueError):
            pass  # left for a reader to rebuild; the refs are published either way
        finally:
            for source in (current._table, current._data):
                if source.fd is not None:
                    os.close(source.fd)
        return None

    def _start(self, name: str, refs: FamilyRefs, key: RefsKey) -> None:
        """A new family: its index is built right away (it holds one or a few versions)."""
        if len(refs.versions) > 16:
            return
        with contextlib.suppress(IndexDamaged, ModelregError, ValueError):
            entries, blob = [], bytearray()
            for version in sorted(refs.versions, key=names.version_number):
                oid = refs.versions[version]
                e, piece = make_entry(
                    names.version_number(version), oid, self.objects.get(oid), len(blob)
                )
                entries.append(e)
                blob += piece
            table = b"".join(ENTRY.pack(*e) for e in entries)
            token = secrets.token_hex(4).encode()
            self._write(name, key, meta_json(refs), table, len(blob), token, bytes(blob))

    def _advance(self, name: str, current: FamilyIndex, refs: FamilyRefs, key: RefsKey) -> None:
        old = {e.num: e for e in current.entries()}
        wanted = sorted((int(v[1:]), oid) for v, oid in refs.versions.items())  # checked
        kept: list[Entry] = []
        added: list[tuple[int, str]] = []
        for num, oid in wanted:
            e = old.get(num)
            if e is not None and e.oid.hex() == oid:
                kept.append(e)
            else:
                added.append((num, oid))
        live = sum(e.size for e in kept)
        path = self.data_path(name, current.token)
        if current.data_len > 2 * live + _GARBAGE_SLACK:
            return None  # mostly garbage: leave it to a reader's rebuild, which compacts
        fresh: list[Entry] = []
        with open(path, "ab") as f:
            base = f.seek(0, os.SEEK_END)
            blob = bytearray()
            for num, oid in added:
                e, piece = make_entry(num, oid, self.objects.get(oid), base + len(blob))
                fresh.append(e)
                blob += piece
            f.write(blob)
        entries = sorted(kept + fresh, key=lambda e: e.num)
        nums = [e.num for e in entries]
        if nums != sorted(set(nums)):
            raise IndexDamaged
        table = b"".join(ENTRY.pack(*e) for e in entries)
        self._write(name, key, meta_json(refs), table, base + len(blob), current.token, None)
        return None
