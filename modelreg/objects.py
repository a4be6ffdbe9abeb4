"""The object store: immutable blobs named by the hash of their raw bytes.

Layout::

    objects/
      ab/
        cdef0123...          a loose object; read-only; its XXH3-128 is "ab" + its file name
      pack/
        pack-<name>.pack     many objects, each raw or encoded (codec.py)
        pack-<name>.idx      id -> offset, stored length, raw size, encoding (packs.py)
      damaged/<id>           a read found a copy of <id> corrupt (marks.py)

An id names the raw bytes whatever way they are kept, so the same object may sit loose and
in packs at once (a gc that was interrupted): every copy is as good as another, and a read
that finds a damaged copy tries the next. This class is the only code that knows where an
object's bytes live.

Structured objects (file manifests, trees, version records) are canonical JSON: sorted keys,
no spaces, so the same content always gets the same id. Chunks are raw bytes.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import threading
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _fs, codec, packs
from .errors import CorruptObjectError, MalformedObjectError, NotFoundError
from .hashing import READ_SIZE, is_oid, new_hasher, oid_of
from .marks import DamageMarks

# Past this many new loose objects, one syncfs (the whole file system, as `sync` does) is
# cheaper than an fsync per file and per folder.
SYNCFS_ABOVE = 16
MAP_ABOVE = 1 << 16  # raw packed objects this large are mapped rather than read
PACK_ROLL = 64 << 20  # a writer publishes its pack and starts another past this many bytes


class Mapped:
    """A read-only view of an object's bytes; ``close`` releases the view and its mapping
    (or hands its buffer back for the next object)."""

    def __init__(
        self,
        view: memoryview,
        mm: mmap.mmap | None = None,
        done: Callable[[], None] | None = None,
    ) -> None:
        self.view = view
        self._mm = mm
        self._done = done

    @classmethod
    def of_file(cls, fd: int) -> Mapped:
        if os.fstat(fd).st_size == 0:
            return cls(memoryview(b""))
        flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
        mm = mmap.mmap(fd, 0, flags=flags, prot=mmap.PROT_READ)
        return cls(memoryview(mm), mm)

    def close(self) -> None:
        self.view.release()
        if self._mm is not None:
            self._mm.close()
        if self._done is not None:
            self._done()
            self._done = None


class _Buffers:
    """Decode buffers reused from one object to the next: a fresh 4 MiB buffer costs a page
    fault per 4 KiB, more than decoding it. A buffer comes back only when nothing still
    holds a view of it (a resize, refused while a view exists, is the test), so a reader
    that kept a slice of a piece never sees it overwritten."""

    KEEP = 6

    def __init__(self) -> None:
        self._free: list[bytearray] = []
        self._lock = threading.Lock()
        self._local = threading.local()

    def take(self, size: int) -> bytearray:
        with self._lock:
            for i, buf in enumerate(self._free):
                if len(buf) >= size and not _exported(buf):
                    return self._free.pop(i)
        return bytearray(size)

    def give(self, buf: bytearray) -> None:
        with self._lock:
            if len(self._free) < self.KEEP:
                self._free.append(buf)

    def scratch(self, size: int, use: str = "planes") -> bytearray:
        """This thread's own buffer for ``use`` (never handed out)."""
        buf: bytearray | None = getattr(self._local, use, None)
        if buf is None or len(buf) < size:
            buf = bytearray(size)
            setattr(self._local, use, buf)
        return buf


def _loose_size_if_sound(path: Path, oid: str) -> int | None:
    """The size of a loose object file whose bytes hash to ``oid`` (read in blocks)."""
    hasher = new_hasher()
    size = 0
    try:
        with open(path, "rb", buffering=0) as f:
            while block := f.read(READ_SIZE):
                hasher.update(block)
                size += len(block)
    except FileNotFoundError:
        return None
    return size if hasher.hexdigest() == oid else None


def _exported(buf: bytearray) -> bool:
    try:
        buf.append(0)
    except BufferError:
        return True
    buf.pop()
    return False


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


MAX_NESTING = 32  # modelreg nests a record's inspect summary a few levels deep, no more
_WALKED = 1 << 16  # parse_json walks objects this small, and records, for their depth


def nested_within(value: Any, levels: int = MAX_NESTING) -> bool:
    """Whether lists and mappings inside ``value`` go at most ``levels`` deep (walked
    without recursion: a value nested too deep for Python's stack is what it looks for)."""
    stack = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if depth > levels:
            return False
        for x in v.values() if isinstance(v, dict) else v if isinstance(v, list) else ():
            if isinstance(x, (dict, list)):
                stack.append((x, depth + 1))
    return True


def parse_json(data: bytes, oid: str) -> Any:
    """Object ``oid``'s JSON; MalformedObjectError naming it when it is not JSON that
    modelreg could have written, including JSON nested past what a reader can walk
    (RecursionError otherwise) or holding text that is not valid Unicode (an escaped lone
    surrogate, which no UTF-8 output can print). modelreg writes raw UTF-8, so only bytes
    that hold a ``\\u`` escape need the second look. Nor is JSON nested past
    ``MAX_NESTING`` levels."""
    try:
        obj = json.loads(data)
        if b"\\u" in data:
            json.dumps(obj, ensure_ascii=False).encode()
    except (ValueError, RecursionError):  # UnicodeError is a ValueError
        raise MalformedObjectError(f"object {oid} is not JSON") from None
    # Deep nesting passes json.loads up to Python's recursion limit, then fails whatever
    # walks it later (YAML, reports). Records are walked whole (small, and read raw by
    # show and the index); a large tree or manifest has its unknown fields walked (model).
    small = len(data) <= _WALKED or (isinstance(obj, dict) and obj.get("type") == "version")
    if small and not nested_within(obj):
        raise MalformedObjectError(f"object {oid} nests deeper than {MAX_NESTING} levels")
    return obj


@dataclass(frozen=True)
class Copy:
    """One stored copy of an object: loose, in a pack, or in this process's unfinished pack."""

    oid: str
    kind: str  # "loose", "packed", "pending" (or "memory": store_api.MemoryObjectStore)
    where: str  # the loose file's path, or the pack's file name
    stored: int  # bytes it takes
    size: int  # raw bytes
    encoding: str
    itemsize: int = 0
    offset: int = 0  # where its bytes start in that file


def _missing(oid: str, why: str = "") -> NotFoundError:
    return NotFoundError(
        f"object {oid} is missing{why}",
        hint="run 'modelreg fsck'; pull it from a remote or re-register",
    )


def _corrupt(oid: str, where: str) -> CorruptObjectError:
    return CorruptObjectError(f"object {oid} is corrupt (its bytes do not match its id) in {where}")


class ObjectStore:
    """Write-once, verify-on-read storage of blobs by id.

    Writes are made durable in batches: ``add`` appends to this instance's pack (or writes a
    loose file) and remembers it; ``sync`` makes everything durable and then visible to other
    processes. Callers must ``sync`` before publishing a ref that names any of it.

    ``packed=False`` keeps every object loose (the format-1 layout). ``compress`` encodes an
    object as it is added when the caller knows its item size; otherwise gc does it.
    ``before_pack`` runs once before the first pack is published (the registry records that
    its format now has packs).
    """

    def __init__(
        self,
        root: Path,
        *,
        packed: bool = True,
        compress: bool = False,
        before_pack: Callable[[], None] | None = None,
    ) -> None:
        self.root = root
        self.pack_dir = root / "pack"
        self.packed = packed
        self.compress = compress
        self.before_pack = before_pack
        self._pending: list[Path] = []
        self._fans: set[str] = set()  # fan-out folders known to exist
        self._new_fans = False  # one was created since the last sync
        self.added_bytes = 0  # bytes of the objects this instance wrote (what a register cost)
        self._lock = threading.RLock()
        self._writer: packs.PackWriter | None = None
        self._finishing: list[packs.PackWriter] = []
        self._packs: dict[str, packs.Pack] = {}
        self.damaged: dict[str, str] = {}  # pack name -> why its index was refused
        self.marks = DamageMarks(root / "damaged")  # ids a read found corrupt (marks.py)
        self._buffers = _Buffers()

    # --- where objects live ---------------------------------------------------------------
    def path(self, oid: str) -> Path:
        """Where ``oid`` is or would be kept loose."""
        if not is_oid(oid):
            raise CorruptObjectError(f"malformed object id {oid!r}")
        return self.root / oid[:2] / oid[2:]

    def refresh(self) -> None:
        """Notice packs other processes published (and forget removed ones)."""
        names = set(packs.index_names(self.pack_dir))
        self.marks.load()
        with self._lock:
            for gone in set(self._packs) - names:
                del self._packs[gone]
            for name in names - set(self._packs) - set(self.damaged):
                try:
                    self._packs[name] = packs.Pack(self.pack_dir, name)
                except FileNotFoundError:
                    continue  # removed by a gc meanwhile
                except CorruptObjectError as e:
                    self.damaged[name] = str(e)

    def pack_names(self) -> list[str]:
        self.refresh()
        return sorted(self._packs)

    def pack_flags(self, name: str) -> int:
        return self._packs[name].flags

    def _copies(self, oid: str, rescan: bool = True) -> list[Copy]:
        found = list(self._each_copy(oid))
        if not found and rescan:
            self.refresh()
            return list(self._each_copy(oid))
        return found

    def _each_copy(self, oid: str) -> Iterator[Copy]:
        """The copies of ``oid`` this store knows, lazily: this process's unfinished packs,
        the packs, then the loose file (a reader stops at the first that verifies)."""
        if not is_oid(oid):
            raise CorruptObjectError(f"malformed object id {oid!r}")
        with self._lock:
            writers = [w for w in (self._writer, *self._finishing) if w is not None]
            known = list(self._packs.values())
        for w in writers:
            e = w.entries.get(oid)
            if e is not None:
                where = w.tmp.name
                yield Copy(
                    oid, "pending", where, e.stored, e.size, e.encoding, e.itemsize, e.offset
                )
        for p in known:
            e = p.find(oid)
            if e is not None:
                where = f"pack-{p.name}.pack"
                yield Copy(oid, "packed", where, e.stored, e.size, e.encoding, e.itemsize, e.offset)
        path = self.root / oid[:2] / oid[2:]
        with contextlib.suppress(FileNotFoundError):
            st = os.stat(path)
            yield Copy(oid, "loose", str(path), st.st_size, st.st_size, codec.RAW)

    def exists(self, oid: str) -> bool:
        """A copy is kept; for an id a read found corrupt (marked), one that verifies."""
        found = next(self._each_copy(oid), None) is not None or bool(self._copies(oid))
        return found and (oid not in self.marks or self._is_sound(oid))

    def _is_sound(self, oid: str) -> bool:
        """Whether a copy verifies; one that does lifts the object's damage mark."""
        try:
            self._first_sound(oid)
        except (CorruptObjectError, NotFoundError):
            return False
        self.marks.clear([oid])
        return True

    def size(self, oid: str) -> int:
        """Raw size of the object."""
        copies = self._copies(oid)
        if not copies:
            raise _missing(oid)
        return copies[0].size

    def stored_size(self, oid: str) -> int:
        copies = self._copies(oid)
        if not copies:
            raise _missing(oid)
        return copies[0].stored

    # --- writing --------------------------------------------------------------------------
    def add(
        self,
        data: bytes | memoryview,
        oid: str | None = None,
        *,
        itemsize: int | None = None,
        loose: bool = False,
    ) -> str:
        """Store ``data`` unless an object of that id is kept already. ``itemsize`` is the
        byte-plane width the file's format gives (never guessed); ``loose`` keeps a small
        object out of the pack (a version record written right before its ref)."""
        oid = oid or oid_of(data)
        final = self.path(oid)
        with self._lock:
            if self._writer is None and self.packed and not loose:
                self.refresh()  # once per operation: objects others packed meanwhile
            present = self._in_packs(oid)
        if present and oid in self.marks and not self._is_sound(oid):
            present, loose = False, True  # every copy is damaged: a fresh one repairs it
        if present:
            return oid
        try:
            if os.stat(final).st_size == len(data) and (
                oid not in self.marks or self._is_sound(oid)
            ):
                return oid  # stored already; damage that keeps the size is fsck's to find
            loose = True  # present with the wrong size (truncated): rewriting repairs it
        except FileNotFoundError:
            pass
        if loose or not self.packed:
            self._add_loose(final, data)
            return oid
        encoding, stored = codec.RAW, data
        if self.compress and itemsize:
            encoding, stored = codec.encode(data, itemsize)
        while True:
            with self._lock:
                if self._writer is None:
                    self._writer = packs.PackWriter(self.pack_dir)
                writer = self._writer
            if writer.add(oid, stored, len(data), encoding, itemsize or 0):
                break  # else another thread began publishing that pack: use the next one
        self.added_bytes += len(stored)
        if writer.stored_bytes >= PACK_ROLL:
            self._roll(writer)
        return oid

    def _roll(self, writer: packs.PackWriter) -> None:
        """Publish a full pack mid-operation and start the next: a long pull killed midway
        keeps what it published (its ref still comes last)."""
        with self._lock:
            if self._writer is not writer:
                return  # another thread rolled it
            self._writer = None
            self._finishing.append(writer)
        self._publish(writer)

    def _in_packs(self, oid: str) -> bool:
        for w in (self._writer, *self._finishing):
            if w is not None and oid in w.entries:
                return True
        return any(p.find(oid) is not None for p in self._packs.values())

    def _add_loose(self, final: Path, data: bytes | memoryview) -> None:
        if final.parent.name not in self._fans:
            try:
                final.parent.mkdir(parents=True)
                self._new_fans = True  # the objects folder itself must be flushed too
            except FileExistsError:
                pass
            self._fans.add(final.parent.name)
        try:
            _fs.atomic_write(final, data, mode=0o444, durable=False)
        except FileNotFoundError:  # a gc in another process removed the emptied folder
            final.parent.mkdir(parents=True, exist_ok=True)
            self._new_fans = True
            _fs.atomic_write(final, data, mode=0o444, durable=False)
        with self._lock:
            self._pending.append(final)
            self.added_bytes += len(data)

    def add_json(self, obj: Any, *, loose: bool = False) -> str:
        return self.add(canonical_json(obj), loose=loose)

    def add_stream(self, oid: str, blocks: Iterable[bytes | memoryview]) -> int:
        """Store an object arriving in blocks (from a remote) without holding it whole: the
        blocks go to a temporary file while they are hashed, and the file takes its name only
        if the hash is ``oid``. Returns its size; CorruptObjectError if the hash differs.

        It is kept loose (a pack cannot take back bytes that failed their hash while other
        threads append to it); ``gc --auto`` after the pull packs it."""
        final = self.path(oid)
        if final.parent.name not in self._fans:
            final.parent.mkdir(parents=True, exist_ok=True)
            self._new_fans = True
            self._fans.add(final.parent.name)
        hasher = new_hasher()
        size = 0
        with _fs.atomic_writer(final, mode=0o444, durable=False) as out:
            for block in blocks:
                hasher.update(block)
                out.write(block)
                size += len(block)
            if hasher.hexdigest() != oid:
                raise CorruptObjectError(f"object {oid} is corrupt (its bytes do not match its id)")
        with self._lock:
            self._pending.append(final)
            self.added_bytes += size
        return size

    def verify(self, oid: str) -> int:
        """Re-hash an object (a loose one in blocks, bounded memory); its size, or
        NotFoundError / CorruptObjectError."""
        size = _loose_size_if_sound(self.path(oid), oid)
        if size is not None:
            return size
        return len(self.get(oid))  # a packed copy, or another sound one; else this raises

    @contextlib.contextmanager
    def as_file(self, oid: str) -> Iterator[Path]:
        """A file holding the object's raw bytes, for a remote that uploads from a path: the
        loose file itself when it is sound, else a verified temporary copy (removed after;
        ``gc`` removes it if the process dies first)."""
        loose = self.path(oid)
        if _loose_size_if_sound(loose, oid) is not None:
            yield loose
            return
        data = self.get(oid)
        self.pack_dir.mkdir(parents=True, exist_ok=True)
        tmp = _fs.tmp_name(self.pack_dir / f"{oid}.upload")
        try:
            with open(tmp, "xb") as f:
                f.write(data)
            yield tmp
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def sync(self) -> str | None:
        """Make every object added since the last sync durable, then visible: loose files
        and their folders are flushed; the pack is flushed, then its index written, flushed
        and renamed into place. Returns the new pack's name, if one was written."""
        with self._lock:
            pending, self._pending = self._pending, []
            writer, self._writer = self._writer, None
            if writer is not None:
                self._finishing.append(writer)
        self._sync_loose(pending)
        return None if writer is None else self._publish(writer)

    def _publish(self, writer: packs.PackWriter) -> str | None:
        try:
            if writer.entries and self.before_pack is not None:
                self.before_pack()
                self.before_pack = None
            name = writer.finish()
            if name is not None:
                pack = packs.Pack(self.pack_dir, name)
                with self._lock:
                    self._packs[name] = pack
            return name
        finally:
            with self._lock:
                self._finishing.remove(writer)
            writer.close()

    def _sync_loose(self, pending: list[Path]) -> None:
        if not pending:
            return
        if len(pending) > SYNCFS_ABOVE and _fs.syncfs(self.root):
            return
        folders = set()
        for p in pending:
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            folders.add(p.parent)
        for folder in folders:
            _fs.fsync_dir(folder)
        if self._new_fans:
            self._new_fans = False
            _fs.fsync_dir(self.root)

    def abort(self) -> None:
        """Drop this instance's unfinished pack (nothing in it was ever visible)."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    # --- reading --------------------------------------------------------------------------
    def _load(self, c: Copy) -> bytes | None:
        """The stored bytes of one copy, or None if it went away meanwhile."""
        if c.kind == "loose":
            try:
                with open(c.where, "rb") as f:
                    return f.read()
            except FileNotFoundError:
                return None
        if c.kind == "pending":
            with self._lock:
                writers = [w for w in (self._writer, *self._finishing) if w is not None]
            for w in writers:
                got = w.read(c.oid)
                if got is not None:
                    return got[1]
            return self._load_packed(c.oid)
        return self._load_packed(c.oid, c.where)

    def _load_packed(self, oid: str, where: str | None = None) -> bytes | None:
        with self._lock:
            known = list(self._packs.values())
        for p in known:
            if where is None or f"pack-{p.name}.pack" == where:
                e = p.find(oid)
                if e is not None:
                    return p.read(e)
        return None

    def _candidates(self, oid: str) -> Iterator[Copy]:
        """Every copy of ``oid``; once those known are used up, packs published since."""
        tried = set()
        for c in self._each_copy(oid):
            tried.add((c.kind, c.where))
            yield c
        self.refresh()  # packs other processes published since this store last looked
        for c in self._each_copy(oid):
            if (c.kind, c.where) not in tried:
                yield c

    def get(self, oid: str) -> bytes:
        return self._first_sound(oid)[2]

    def _first_sound(self, oid: str) -> tuple[Copy, bytes, bytes]:
        """(copy, stored bytes, raw bytes) of the first copy that verifies."""
        failure: CorruptObjectError | None = None
        for c in self._candidates(oid):
            stored = self._load(c)
            if stored is None:
                continue
            try:
                return c, stored, codec.decode_verified(c.encoding, stored, c.size, oid)
            except CorruptObjectError:
                failure = _corrupt(oid, c.where)
        if failure is not None:
            self.marks.add(oid)
        raise failure or _missing(oid, self._damage_note())

    def _damage_note(self) -> str:
        if not self.damaged:
            return ""
        return f" (a pack index is damaged: {next(iter(self.damaged.values()))})"

    def open_mapped(self, oid: str) -> Mapped:
        """A verified view of an object: zero-copy (memory-mapped) for a loose object or a
        large raw one in a pack. Objects never change in place (they are only replaced or
        removed, which leaves a mapping intact)."""
        failure: CorruptObjectError | None = None
        for c in self._candidates(oid):
            mapped = self._map(c)
            if mapped is None:
                continue
            if len(mapped.view) == c.size and oid_of(mapped.view) == oid:
                return mapped
            mapped.close()
            failure = _corrupt(oid, c.where)
        if failure is not None:
            self.marks.add(oid)
            raise failure
        raise _missing(oid, self._damage_note())

    def _map(self, c: Copy) -> Mapped | None:
        if c.kind == "loose":
            try:
                f = open(c.where, "rb", buffering=0)  # noqa: SIM115 - closed just below
            except FileNotFoundError:
                return None
            with f:
                return Mapped.of_file(f.fileno())
        if c.kind == "packed" and c.encoding == codec.RAW and c.stored >= MAP_ABOVE:
            with self._lock:
                pack = next(
                    (p for p in self._packs.values() if f"pack-{p.name}.pack" == c.where), None
                )
            entry = pack.find(c.oid) if pack is not None else None
            if pack is not None and entry is not None:
                mm, view = pack.map(entry)
                return Mapped(view, mm)
        if c.kind == "packed" and c.size >= MAP_ABOVE:
            return self._decode_packed(c)
        stored = self._load(c)
        if stored is None:
            return None
        if c.size < MAP_ABOVE:
            try:
                return Mapped(memoryview(codec.decode(c.encoding, stored, c.size)))
            except CorruptObjectError:
                return Mapped(memoryview(b""))  # fails the caller's check, naming the copy
        out = self._buffers.take(c.size)
        try:
            codec.decode_into(c.encoding, stored, out, c.size, self._buffers.scratch(c.size))
        except CorruptObjectError:
            self._buffers.give(out)
            return Mapped(memoryview(b""))
        return Mapped(memoryview(out)[: c.size], done=lambda: self._buffers.give(out))

    def map_lazily(self, oid: str) -> Mapped:
        """A view of an object for reading a few bytes of it (a header, a pickle) without
        loading it: a loose file is mapped unpopulated and not re-hashed (for objects verified
        just before, as fsck and pull do); a packed one is read and verified as usual."""
        try:
            f = open(self.path(oid), "rb", buffering=0)  # noqa: SIM115 - closed just below
        except FileNotFoundError:
            return self.open_mapped(oid)
        with f:
            if os.fstat(f.fileno()).st_size == 0:
                return Mapped(memoryview(b""))
            mm = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
        return Mapped(memoryview(mm), mm)

    def read_blocks(self, oid: str) -> Iterator[bytes]:
        """A sound copy's raw bytes in blocks: a loose object is hashed, then read, in
        ``READ_SIZE`` blocks, so a large one never sits in memory whole."""
        loose = self.path(oid)
        if _loose_size_if_sound(loose, oid) is not None:
            try:
                f = open(loose, "rb", buffering=0)  # noqa: SIM115 - closed below
            except FileNotFoundError:
                f = None  # packed by a gc meanwhile
            if f is not None:
                with f:
                    while block := f.read(READ_SIZE):
                        yield block
                return
        yield self.get(oid)

    def _decode_packed(self, c: Copy) -> Mapped | None:
        """Decode a large packed object into a reused buffer, read into another one."""
        with self._lock:
            pack = next((p for p in self._packs.values() if f"pack-{p.name}.pack" == c.where), None)
        entry = pack.find(c.oid) if pack is not None else None
        if pack is None or entry is None:
            return None
        stored = memoryview(self._buffers.scratch(entry.stored, "stored"))[: entry.stored]
        out = self._buffers.take(c.size)
        try:
            if os.preadv(pack.fd, [stored], entry.offset) != entry.stored:
                raise CorruptObjectError(f"{c.where} is shorter than its index says")
            codec.decode_into(c.encoding, stored, out, c.size, self._buffers.scratch(c.size))
        except CorruptObjectError:
            self._buffers.give(out)
            return Mapped(memoryview(b""))  # fails the caller's check, naming the copy
        finally:
            stored.release()
        return Mapped(memoryview(out)[: c.size], done=lambda: self._buffers.give(out))

    def get_json(self, oid: str) -> Any:
        return parse_json(self.get(oid), oid)

    # --- the whole store ------------------------------------------------------------------
    def copies(self, only_packs: Iterable[str] | None = None) -> Iterator[Copy]:
        """Every stored copy of every object: loose files, then each pack's entries (of the
        packs named in ``only_packs``, when given)."""
        for oid in self._loose_ids():
            with contextlib.suppress(FileNotFoundError):
                size = os.stat(self.path(oid)).st_size
                yield Copy(oid, "loose", str(self.path(oid)), size, size, codec.RAW)
        self.refresh()
        with self._lock:
            known = sorted(self._packs.items())
        if only_packs is not None:
            wanted = set(only_packs)
            known = [(name, pack) for name, pack in known if name in wanted]
        for name, pack in known:
            for oid, e in pack:
                where = f"pack-{name}.pack"
                yield Copy(oid, "packed", where, e.stored, e.size, e.encoding, e.itemsize, e.offset)

    def verify_copy(self, c: Copy) -> None:
        """Read one copy and check it against its id; raises CorruptObjectError."""
        try:
            stored = self._load(c)
        except OSError as e:
            self.marks.add(c.oid)
            raise CorruptObjectError(f"object {c.oid} in {c.where} cannot be read: {e}") from e
        if stored is None:
            return  # removed meanwhile (a gc)
        try:
            codec.decode_verified(c.encoding, stored, c.size, c.oid)
        except CorruptObjectError:
            self.marks.add(c.oid)
            raise _corrupt(c.oid, c.where) from None

    def __iter__(self) -> Iterator[str]:
        """Every object id once, sorted."""
        return iter(sorted({c.oid for c in self.copies()}))

    def _loose_ids(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for fan in sorted(os.scandir(self.root), key=lambda e: e.name):
            if len(fan.name) != 2 or not fan.is_dir():
                continue
            for entry in sorted(os.scandir(fan.path), key=lambda e: e.name):
                if not entry.name.startswith(_fs.TMP_PREFIX):
                    yield fan.name + entry.name

    def count_loose(self, sample: bool = False) -> int:
        """Loose objects, counted from folder listings alone. With ``sample`` and more than 16
        fan-out folders, folders 00..0f are counted and scaled up, as ``git gc --auto`` does
        with one: ids are uniform, and gc --auto runs after every register."""
        try:
            fans = [name for name in os.listdir(self.root) if len(name) == 2]
        except FileNotFoundError:
            return 0
        scale = 1
        if sample and len(fans) > 16:
            fans, scale = [f"{i:02x}" for i in range(16)], 16
        total = 0
        for fan in fans:
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                listed = os.listdir(self.root / fan)
                total += sum(not n.startswith(_fs.TMP_PREFIX) for n in listed)
        return total * scale

    def leftovers(self) -> Iterator[Path]:
        """Temporary files a killed writer left behind, and packs that have no index."""
        if not self.root.is_dir():
            return
        for fan in os.scandir(self.root):
            if len(fan.name) == 2 and fan.is_dir():
                for entry in os.scandir(fan.path):
                    if entry.name.startswith(_fs.TMP_PREFIX):
                        yield Path(entry.path)
        yield from packs.orphans(self.pack_dir)

    def remove(self, oid: str) -> None:
        """Remove every copy: the loose file, and each pack holding it is rewritten without
        it (the rest copied to a new pack first). Costs a pack's size; gc is the bulk way."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(oid))
        self.refresh()
        with self._lock:
            holding = [p for p in self._packs.values() if p.find(oid) is not None]
        for pack in holding:
            rest = [(o, e.itemsize or None) for o, e in pack if o != oid]
            self.write_pack(rest, flags=pack.flags)
            self.retire([pack.name], [])

    def index_problems(self) -> list[str]:
        """Why each refused pack index was refused (its objects are unreadable meanwhile)."""
        self.refresh()
        return [f"pack-{name}.idx: {why}" for name, why in sorted(self.damaged.items())]

    def is_compact(self) -> bool:
        """Kept as ``gc`` leaves a store: one pack, written by gc, and nothing else."""
        names = self.pack_names()
        return (
            len(names) == 1
            and bool(self._packs[names[0]].flags & packs.FLAG_GC)
            and not self.count_loose()
        )

    def prune(self, live: Collection[str], among: Iterable[str] | None = None) -> list[str]:
        """Remove what holds nothing in ``live``: loose objects not in it, and the packs
        (of ``among``, when given) none of whose objects is in it. Returns those packs.
        Only under gc's exclusive lock: a writer's unpublished objects are not in ``live``."""
        holding_live: set[str] = set()
        dead_loose: list[str] = []
        for c in self.copies(only_packs=among):
            if c.kind == "loose":
                if c.oid not in live:
                    dead_loose.append(c.oid)
            elif c.oid in live:
                holding_live.add(c.where)
        names = self.pack_names() if among is None else list(among)
        dead = [name for name in names if f"pack-{name}.pack" not in holding_live]
        self.retire(dead, dead_loose)
        return dead

    def repack(self, keep: Iterable[tuple[str, int | None]], merge: Iterable[str]) -> str | None:
        """``gc``'s rewrite: the ``keep`` objects (id, item size) into one new pack, read
        from verified copies; then the packs in ``merge`` and every loose object go. Clears
        the damage marks it saw: each kept object was just read from a copy that verified."""
        marked = self.marks.load()
        loose = list(self._loose_ids())
        name = self.write_pack(keep, flags=packs.FLAG_GC)
        self.retire([n for n in merge if n != name], loose)
        self.marks.clear(marked)
        return name

    # --- repacking (gc) -------------------------------------------------------------------
    def write_pack(self, wanted: Iterable[tuple[str, int | None]], flags: int = 0) -> str | None:
        """Copy the objects into one new pack, each read from a verified copy, encoded where
        an item size is given (an already encoded copy is kept as it is). Durable and
        visible on return; nothing is removed here."""
        writer = packs.PackWriter(self.pack_dir)
        try:
            for oid, itemsize in wanted:
                if oid in writer.entries:
                    continue
                stored, size, encoding, width = self._best_copy(oid)
                width = itemsize or width
                if encoding == codec.RAW and width:
                    encoding, stored = codec.encode(stored, width)
                writer.add(oid, stored, size, encoding, width)
            if writer.entries and self.before_pack is not None:
                self.before_pack()
                self.before_pack = None
            name = writer.finish(flags)
        finally:
            writer.close()
        if name is not None:
            with self._lock:
                self._packs[name] = packs.Pack(self.pack_dir, name)
        return name

    def stored_copy(self, oid: str) -> tuple[bytes, int, str, int]:
        """(stored bytes, raw size, encoding, item size) of the first copy that verifies:
        what a push puts in the pack it uploads, encoded as here."""
        return self._best_copy(oid)

    def _best_copy(self, oid: str) -> tuple[bytes, int, str, int]:
        """(stored bytes, raw size, encoding, item size) of the first copy that verifies."""
        c, stored, raw = self._first_sound(oid)
        return (raw if c.encoding == codec.RAW else stored), c.size, c.encoding, c.itemsize

    def retire(self, pack_names: Iterable[str], loose: Iterable[str]) -> None:
        """Remove packs (index first: invisible before its data goes) and loose copies.
        Only for what is kept elsewhere already (gc, under its exclusive lock)."""
        for name in pack_names:
            idx, pack = packs.pack_paths(self.pack_dir, name)
            for path in (idx, pack):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            with self._lock:
                self._packs.pop(name, None)
                self.damaged.pop(name, None)
        fans = set()
        for oid in loose:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path(oid))  # the loose copy only: the new pack holds it
            fans.add(self.path(oid).parent)
        with contextlib.suppress(FileNotFoundError):
            _fs.fsync_dir(self.pack_dir)
        for fan in fans:
            with contextlib.suppress(OSError):
                os.rmdir(fan)  # only an emptied fan-out folder goes
        self._fans.clear()
