"""Pack files: many objects in one file, found through a sorted, checksummed index.

::

    objects/pack/
      pack-<name>.pack   PACK_MAGIC, then each object's stored bytes, back to back
      pack-<name>.idx    header, 256-entry fan-out, sorted ids, entries, checksum

``<name>`` is the index's checksum (XXH3-128 of every byte before it), so two writers never
choose the same name unless they wrote the same index. An object is visible only through a
complete index: a writer fsyncs its pack, writes and fsyncs the index, renames the pack, then
the index, into place and fsyncs the folder. A pack without an index (a writer killed between
the two renames, or a gc killed between removing the two) is a leftover that no reader looks
at; ``gc`` removes it.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import mmap
import os
import secrets
import struct
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import _fs
from .errors import CorruptObjectError
from .hashing import new_hasher

PACK_MAGIC = b"MRPACK\x00\x01"
IDX_MAGIC = b"MRIDX\x00\x00\x01"
HEADER = struct.Struct("<8sIIQ")  # magic, object count, flags, size of the pack file
FANOUT = struct.Struct("<256I")  # objects whose first id byte is <= i
ENTRY = struct.Struct("<QQQBB6x")  # offset, stored length, raw size, encoding, item size
ID_LEN = 16
SUM_LEN = 16
FLAG_GC = 1  # written by gc: every object with a known item size was offered to the codec

# Encoding ids in an index; part of the format, never renumbered.
ENCODING_IDS = {"raw": 0, "zstd": 1, "shuffle2+zstd": 2, "shuffle4+zstd": 3, "shuffle8+zstd": 4}
ENCODING_NAMES = {v: k for k, v in ENCODING_IDS.items()}


@dataclass(frozen=True)
class Entry:
    offset: int
    stored: int  # bytes in the pack
    size: int  # raw bytes (what the id hashes)
    encoding: str
    itemsize: int  # byte-plane width the format gave (0: unknown)


def pack_paths(folder: Path, name: str) -> tuple[Path, Path]:
    return folder / f"pack-{name}.idx", folder / f"pack-{name}.pack"


def index_names(folder: Path) -> list[str]:
    """Names of the packs whose index is in place (the only visible ones)."""
    try:
        listed = os.listdir(folder)
    except FileNotFoundError:
        return []
    return sorted(n[5:-4] for n in listed if n.startswith("pack-") and n.endswith(".idx"))


def orphans(folder: Path) -> list[Path]:
    """Temporary files of killed writers and packs without an index."""
    try:
        listed = os.listdir(folder)
    except FileNotFoundError:
        return []
    found = [folder / n for n in listed if n.startswith(_fs.TMP_PREFIX)]
    indexed = {n[:-4] for n in listed if n.endswith(".idx")}
    found += [
        folder / n
        for n in listed
        if n.startswith("pack-") and n.endswith(".pack") and n[:-5] not in indexed
    ]
    return sorted(found)


class IndexTable:
    """A checked index held in memory: ids found by fan-out and binary search, entries
    bounded by the pack size the index gives. Nothing in it is believed unchecked: the
    checksum, the fan-out and every entry it hands out are verified (a remote's index is
    untrusted input)."""

    def __init__(self, raw: bytes, name: str) -> None:
        self.name = name
        self.count, self.flags, self.pack_size = _check_index(raw, name)
        self._ids = raw[HEADER.size + FANOUT.size : HEADER.size + FANOUT.size + self.count * ID_LEN]
        self._fan = FANOUT.unpack_from(raw, HEADER.size)
        self._entries = memoryview(raw)[HEADER.size + FANOUT.size + self.count * ID_LEN : -SUM_LEN]

    def find(self, oid: str) -> Entry | None:
        key = bytes.fromhex(oid)
        first = key[0]
        lo = self._fan[first - 1] if first else 0
        hi = self._fan[first]
        ids = _IdView(self._ids)
        i = bisect.bisect_left(ids, key, lo, hi)
        if i < hi and ids[i] == key:
            return self._entry(i)
        return None

    def _entry(self, i: int) -> Entry:
        off, stored, size, enc, itemsize = ENTRY.unpack_from(self._entries, i * ENTRY.size)
        if enc not in ENCODING_NAMES or off + stored > self.pack_size or off < len(PACK_MAGIC):
            raise CorruptObjectError(f"pack-{self.name}.idx: entry {i} is out of bounds")
        return Entry(off, stored, size, ENCODING_NAMES[enc], itemsize)

    def ids(self) -> Iterator[str]:
        for i in range(self.count):
            yield self._ids[i * ID_LEN : (i + 1) * ID_LEN].hex()

    def __iter__(self) -> Iterator[tuple[str, Entry]]:
        for i in range(self.count):
            yield self._ids[i * ID_LEN : (i + 1) * ID_LEN].hex(), self._entry(i)


class Pack(IndexTable):
    """One pack and its index. The index is read whole and checked on open (its checksum
    touches every byte anyway, so a mapping would save nothing); the pack stays open, read
    with ``pread`` or mapped region by region."""

    def __init__(self, folder: Path, name: str) -> None:
        idx_path, pack_path = pack_paths(folder, name)
        with open(idx_path, "rb") as f:
            super().__init__(f.read(), name)
        self.fd = os.open(pack_path, os.O_RDONLY)
        weakref.finalize(self, os.close, self.fd)
        self.size = os.fstat(self.fd).st_size
        if self.size != self.pack_size or os.pread(self.fd, len(PACK_MAGIC), 0) != PACK_MAGIC:
            raise CorruptObjectError(
                f"pack-{name}.pack is {self.size} bytes, its index says {self.pack_size}"
            )

    def read(self, entry: Entry) -> bytes:
        data = os.pread(self.fd, entry.stored, entry.offset)
        if len(data) != entry.stored:
            raise CorruptObjectError(f"pack-{self.name}.pack is shorter than its index says")
        return data

    def map(self, entry: Entry) -> tuple[mmap.mmap, memoryview]:
        """A mapping of the entry's bytes, read ahead (a checkout writes them next)."""
        start = entry.offset - entry.offset % mmap.ALLOCATIONGRANULARITY
        flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
        length = entry.offset - start + entry.stored
        mm = mmap.mmap(self.fd, length, flags=flags, prot=mmap.PROT_READ, offset=start)
        return mm, memoryview(mm)[entry.offset - start :]


class _IdView:
    """The sorted 16-byte ids of an index as a sequence, for ``bisect``."""

    def __init__(self, ids: bytes) -> None:
        self.ids = ids

    def __len__(self) -> int:
        return len(self.ids) // ID_LEN

    def __getitem__(self, i: int) -> bytes:
        return self.ids[i * ID_LEN : (i + 1) * ID_LEN]


def _check_index(raw: bytes, name: str) -> tuple[int, int, int]:
    """(count, flags, pack size) of an index, refused unless every part of it adds up."""
    what = f"pack-{name}.idx"
    fixed = HEADER.size + FANOUT.size + SUM_LEN
    if len(raw) < fixed:
        raise CorruptObjectError(f"{what} is truncated")
    magic, count, flags, pack_size = HEADER.unpack_from(raw)
    if magic != IDX_MAGIC:
        raise CorruptObjectError(f"{what} is not a modelreg pack index")
    if len(raw) != fixed + count * (ID_LEN + ENTRY.size):
        raise CorruptObjectError(f"{what} is {len(raw)} bytes, not what {count} objects take")
    digest = new_hasher()
    digest.update(memoryview(raw)[:-SUM_LEN])
    if digest.digest() != raw[-SUM_LEN:] or digest.hexdigest() != name:
        raise CorruptObjectError(f"{what} is corrupt (its checksum does not match)")
    fan = FANOUT.unpack_from(raw, HEADER.size)
    if fan[-1] != count or any(a > b for a, b in itertools.pairwise(fan)):
        raise CorruptObjectError(f"{what} has a damaged fan-out table")
    return count, flags, pack_size


class PackWriter:
    """Appends objects to a temporary pack; ``finish`` makes it durable, then visible.

    Objects it holds can be read back before ``finish`` (a register inspects what it just
    stored), under its lock, from the open file."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.tmp = folder / f"{_fs.TMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}.pack"
        self.fd = os.open(self.tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o444 & ~_fs.umask())
        self.entries: dict[str, Entry] = {}
        self.lock = threading.Lock()
        self.closed = False
        self.sealed = False
        self._buf = bytearray(PACK_MAGIC)
        self._end = 0  # bytes written to the file; the buffer follows them
        self.stored_bytes = 0

    def add(self, oid: str, stored: bytes | memoryview, size: int, enc: str, itemsize: int) -> bool:
        """Append one object; False once ``finish`` has begun (add it to the next pack)."""
        with self.lock:
            if self.sealed:
                return False
            if oid in self.entries:
                return True
            offset = self._end + len(self._buf)
            if len(stored) >= 1 << 16:
                self._flush()
                _fs.write_all(self.fd, stored)
                self._end += len(stored)
            else:
                self._buf += stored
                if len(self._buf) >= 1 << 20:
                    self._flush()
            self.entries[oid] = Entry(offset, len(stored), size, enc, itemsize)
            self.stored_bytes += len(stored)
            return True

    def _flush(self) -> None:
        if self._buf:
            _fs.write_all(self.fd, self._buf)
            self._end += len(self._buf)
            self._buf = bytearray()

    def read(self, oid: str) -> tuple[Entry, bytes] | None:
        with self.lock:
            entry = self.entries.get(oid)
            if entry is None or self.closed:
                return None
            self._flush()
            return entry, os.pread(self.fd, entry.stored, entry.offset)

    def finish(self, flags: int = 0) -> str | None:
        """Durable, then visible: returns the pack's name (None when it holds nothing)."""
        with self.lock:  # no add comes after this; reads go on while the disk works
            self.sealed = True
            self._flush()
            entries = dict(self.entries)
        if not entries:
            return None
        os.fsync(self.fd)
        index = build_index(entries, flags, self._end)
        name = index[-SUM_LEN:].hex()
        idx_path, pack_path = pack_paths(self.folder, name)
        tmp_idx = self.tmp.with_suffix(".idx")
        try:
            with open(tmp_idx, "xb") as f:
                f.write(index)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp_idx, 0o444 & ~_fs.umask())
            os.rename(self.tmp, pack_path)
            os.rename(tmp_idx, idx_path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_idx)
        _fs.fsync_dir(self.folder)
        return name

    def close(self) -> None:
        """Release the file; a pack never finished is removed."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
            os.close(self.fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.tmp)


def build_index(entries: dict[str, Entry], flags: int, pack_size: int) -> bytes:
    ids = sorted(entries)
    fan = [0] * 256
    for oid in ids:
        fan[int(oid[:2], 16)] += 1
    for i in range(1, 256):
        fan[i] += fan[i - 1]
    parts = [HEADER.pack(IDX_MAGIC, len(ids), flags, pack_size), FANOUT.pack(*fan)]
    parts += [bytes.fromhex(oid) for oid in ids]
    for oid in ids:
        e = entries[oid]
        parts.append(ENTRY.pack(e.offset, e.stored, e.size, ENCODING_IDS[e.encoding], e.itemsize))
    body = b"".join(parts)
    digest = new_hasher()
    digest.update(body)
    return body + digest.digest()
