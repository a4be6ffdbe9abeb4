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
    ENTRY_SIZE,
    HEAD,
    HEADER_SIZE,
    LAYOUT,
    MAGIC,
    Entry,
    FamilyIndex,
    IndexDamaged,
    IndexedRefs,
    Source,
    checksum,
    is_orphan,
    make_entry,
    meta_json,
)
from .objects import ObjectStore
from .refs import RefsKey
from .refstore import RefStore

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
    def _parse(self, head: bytes, key: RefsKey | None) -> tuple[Any, ...]:
        if len(head) < HEADER_SIZE:
            raise IndexDamaged
        body, (total,) = head[: HEAD.size], struct.unpack("<Q", head[HEAD.size : HEADER_SIZE])
        if checksum(body) != total:
            raise IndexDamaged
        fields = HEAD.unpack(body)
        magic, layout, size, mtime, ino, stamp, jsize, jns, jino = fields[:9]
        if magic != MAGIC or layout != LAYOUT:
            raise IndexDamaged
        built_for = RefsKey(size, mtime, ino, stamp.hex(), jsize, jns, jino)
        if key is not None and built_for != key:
            raise IndexDamaged
        return (built_for, *fields[9:])

    def _open(self, name: str, key: RefsKey, whole: bool) -> FamilyIndex:
        """The index for ``key``. Its header is rewritten in place by writers (after the
        entries it counts): a read that met a half-written one tries once more."""
        try:
            return self._open_once(name, key, whole)
        except IndexDamaged:
            return self._open_once(name, key, whole)

    def _open_once(self, name: str, key: RefsKey, whole: bool) -> FamilyIndex:
        try:
            with open(self.idx_path(name), "rb") as f:
                blob = f.read() if whole else f.read(HEADER_SIZE)
                built_for, count, meta_len, meta_off, data_len, token, meta_sum = self._parse(
                    blob[:HEADER_SIZE], key
                )
                if not re.fullmatch(rb"[0-9a-f]{8}", token) or meta_off + meta_len > data_len:
                    raise IndexDamaged
                end = HEADER_SIZE + count * ENTRY_SIZE
                if whole:
                    if len(blob) < end:
                        raise IndexDamaged
                    table = Source(blob[:end])
                else:
                    if os.fstat(f.fileno()).st_size < end:
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
            meta_raw = data.read(meta_off, meta_len)
            if checksum(meta_raw) != meta_sum:
                raise IndexDamaged
            return FamilyIndex(
                name,
                built_for,
                meta_raw,
                count,
                table,
                HEADER_SIZE,
                data,
                data_len,
                token,
                meta_off,
            )
        except (OSError, ValueError, KeyError, TypeError):  # unreadable is as good as damaged
            raise IndexDamaged from None

    @staticmethod
    def _close(index: FamilyIndex) -> None:
        for source in (index._table, index._data):
            if source.fd is not None:
                os.close(source.fd)
                source.fd = None

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
            self._close(found)

    @contextlib.contextmanager
    def view(self, name: str, key: RefsKey) -> Iterator[IndexedRefs | None]:
        """A stand-in for the family's refs when the index is current for ``key`` (the
        writer holds the family's lock); None when it is not."""
        try:
            found = self._open(name, key, whole=False)
        except IndexDamaged:
            yield None
            return
        try:
            try:
                view = IndexedRefs(found, None)
            except (IndexDamaged, ModelregError, ValueError):
                view = None
            yield view
        finally:
            self._close(found)

    def load(self, name: str) -> FamilyIndex | None:
        """The whole family index in memory, checked; None when the family has no refs."""
        key = self.refs.key(name)
        if key is None:
            return None
        try:
            return self._open(name, key, whole=True)
        except IndexDamaged:
            return self.rebuild(name)

    def _entries(self, name: str, versions: dict[str, str]) -> tuple[list[Entry], bytes]:
        entries, blob = [], bytearray()
        for version in sorted(versions, key=names.version_number):
            oid = versions[version]
            raw = self.objects.get(oid)
            try:
                e, piece = make_entry(names.version_number(version), oid, raw, len(blob))
            except (IndexDamaged, ValueError):
                raise ModelregError(
                    f"{name}@{version}: object {oid} is not a version record"
                ) from None
            entries.append(e)
            blob += piece
        return entries, bytes(blob)

    def rebuild(self, name: str) -> FamilyIndex | None:
        """Build the index from the refs and the records; write it when nobody holds the
        family's lock (a writer then updates it itself)."""
        refs, key = self.refs.read_keyed(name)
        if refs is None or key is None:
            return None
        entries, blob = self._entries(name, refs.versions)
        token = secrets.token_hex(4).encode()
        meta = meta_json(refs)
        table = b"".join(e.pack() for e in entries)
        with contextlib.suppress(OSError, LockTimeoutError), self._try_lock(name) as locked:
            if locked and self.refs.key(name) == key:
                self._write(name, key, meta, table, blob, token)
        data = Source(blob + meta)
        return FamilyIndex(
            name,
            key,
            meta,
            len(entries),
            Source(table),
            0,
            data,
            len(blob) + len(meta),
            token,
            len(blob),
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
    @staticmethod
    def _header(
        key: RefsKey, count: int, meta: bytes, meta_off: int, data_len: int, token: bytes
    ) -> bytes:
        body = HEAD.pack(
            MAGIC,
            LAYOUT,
            key.size,
            key.mtime_ns,
            key.ino,
            bytes.fromhex(key.stamp),
            key.journal_size,
            key.journal_ns,
            key.journal_ino,
            count,
            len(meta),
            meta_off,
            data_len,
            token,
            checksum(meta),
        )
        return body + struct.pack("<Q", checksum(body))

    def _write(
        self, name: str, key: RefsKey, meta: bytes, table: bytes, blob: bytes, token: bytes
    ) -> None:
        """Write a fresh data file (the records' pieces, then the meta), then the table."""
        self.root.mkdir(exist_ok=True)
        _fs.atomic_write(self.data_path(name, token), blob + meta, durable=False)
        count = len(table) // ENTRY_SIZE
        head = self._header(key, count, meta, len(blob), len(blob) + len(meta), token)
        _fs.atomic_write(self.idx_path(name), head + table, durable=False)
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
        self,
        name: str,
        old_key: RefsKey | None,
        refs: Any,
        new_key: RefsKey | None,
        ops: list[Any] | None,
    ) -> None:
        """Bring the index from ``old_key`` to ``new_key`` by the ops of a change. When it
        was not current for ``old_key``, or the change is not known, it is left alone:
        readers rebuild it. Never fails: the refs are published already, and an index left
        stale is only slower."""
        with contextlib.suppress(OSError, IndexDamaged, ModelregError, ValueError):
            if new_key is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.idx_path(name))
                self._drop_data(name, keep=None)
            elif old_key is None:
                self._start(name, refs, new_key)
            elif ops is not None:
                current = self._open(name, old_key, whole=False)
                try:
                    self._advance(name, current, refs, new_key, ops)
                finally:
                    self._close(current)

    def _start(self, name: str, refs: Any, key: RefsKey) -> None:
        """A new family: its index is built right away (it holds one or a few versions)."""
        if len(refs.versions) > 16:
            return
        with contextlib.suppress(IndexDamaged, ModelregError, ValueError):
            entries, blob = self._entries(name, refs.versions)
            table = b"".join(e.pack() for e in entries)
            token = secrets.token_hex(4).encode()
            self._write(name, key, meta_json(refs), table, blob, token)

    def _advance(
        self, name: str, current: FamilyIndex, refs: Any, key: RefsKey, ops: list[Any]
    ) -> None:
        sets = {names.version_number(op[1]): op[2] for op in ops if op[0] == "set"}
        drops = {names.version_number(op[1]) for op in ops if op[0] == "drop"}
        last = current.entry_at(current.count - 1).num if current.count else 0
        if not drops and all(num > last for num in sets):
            return self._append(name, current, refs, key, sorted(sets.items()))
        old = {e.num: e for e in current.entries()}
        wanted = {num: e.oid.hex() for num, e in old.items() if num not in drops}
        wanted.update(sets)
        kept: list[Entry] = []
        added: list[tuple[int, str]] = []
        for num, oid in sorted(wanted.items()):
            e = old.get(num)
            if e is not None and e.oid.hex() == oid:
                kept.append(e)
            else:
                added.append((num, oid))
        live = sum(e.size for e in kept)
        if current.data_len > 2 * live + _GARBAGE_SLACK:
            return None  # mostly garbage: leave it to a reader's rebuild, which compacts
        fresh, meta_off, data_len = self._add_data(name, current, added, meta_json(refs))
        entries = sorted(kept + fresh, key=lambda e: e.num)
        table = b"".join(e.pack() for e in entries)
        meta = meta_json(refs)
        head = self._header(key, len(entries), meta, meta_off, data_len, current.token)
        _fs.atomic_write(self.idx_path(name), head + table, durable=False)
        return None

    def _add_data(
        self, name: str, current: FamilyIndex, added: list[tuple[int, str]], meta: bytes
    ) -> tuple[list[Entry], int, int]:
        """Append the pieces of ``added`` and the meta (when it changed) to the data file,
        after what the index counts (a killed writer's tail is overwritten); returns the
        new entries, where the meta is and the new data length."""
        base = current.data_len
        blob = bytearray()
        fresh: list[Entry] = []
        for num, oid in added:
            e, piece = make_entry(num, oid, self.objects.get(oid), base + len(blob))
            fresh.append(e)
            blob += piece
        if meta == current.meta_raw:
            meta_off = current.meta_at
        else:
            meta_off = base + len(blob)
            blob += meta
        if blob:
            fd = os.open(self.data_path(name, current.token), os.O_WRONLY)
            try:
                os.pwrite(fd, bytes(blob), base)
            finally:
                os.close(fd)
        return fresh, meta_off, base + len(blob)

    def _append(
        self,
        name: str,
        current: FamilyIndex,
        refs: Any,
        key: RefsKey,
        added: list[tuple[int, str]],
    ) -> None:
        """New versions above every one the index holds: their entries go after the table
        and the header is rewritten in place, so a register costs the same at any size."""
        meta = meta_json(refs)
        fresh, meta_off, data_len = self._add_data(name, current, added, meta)
        count = current.count + len(fresh)
        head = self._header(key, count, meta, meta_off, data_len, current.token)
        fd = os.open(self.idx_path(name), os.O_WRONLY)
        try:
            if fresh:
                table = b"".join(e.pack() for e in fresh)
                os.pwrite(fd, table, HEADER_SIZE + current.count * ENTRY_SIZE)
            os.pwrite(fd, head, 0)  # after the entries it counts
        finally:
            os.close(fd)
