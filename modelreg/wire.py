"""Objects on the wire: packs up, ranged reads down.

- ``send`` uploads objects as pack files with their indexes (docs/format.md), the pack
  first and its index after it, so an index on the remote names only bytes that are there.
  A pack is built in ``outgoing/`` beside the tracking refs before it goes up; one killed
  on the way up is uploaded from there by the next push (an S3 multipart upload resumes:
  only the parts the remote lacks are sent), before anything new is packed.
- ``fetch`` gets objects by id: from the remote's packs by ranged reads (neighbours in a
  pack coalesced into one read, a few reads at a time), else from loose keys (remotes
  written before packs). Every object is bounded before it is read and verified against
  its id before it is stored; nothing a remote's index says is believed unchecked.

Neither knows about versions or refs: ``modelreg.sync`` decides what moves.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import _fs, codec, packs
from .errors import CorruptObjectError
from .hashing import new_hasher
from .remotes.base import ObjectTooLargeError, Remote, pack_key
from .remotes.packed import RemotePacks
from .store_api import Store

Progress = Callable[[int], None]


def expect(progress: Progress | None, size: int) -> None:
    """Tell a progress callback that has an ``expect`` method how many more bytes are
    about to move (the CLI draws done/total from it)."""
    told = getattr(progress, "expect", None)
    if told is not None and size:
        told(size)


JOBS = 4  # ranged reads in flight
GAP = 256 << 10  # neighbours closer than this are read in one range
RANGE_MAX = 16 << 20  # a range holds at most this much (a larger object is streamed alone)
PACK_MAX = 512 << 20  # a push packs at most this much into one pack
STREAM_ABOVE = 8 << 20  # a larger object is copied into a pack in blocks, raw


def _slack(size: int) -> int:
    """The most stored bytes an encoded object of ``size`` raw bytes can take (zstd's own
    bound, rounded up): an index entry claiming more is refused unread."""
    return size + size // 64 + (64 << 10)


@dataclass
class Fetched:
    objects: int = 0
    bytes: int = 0  # bytes read from the remote
    oversized: dict[str, str] = field(default_factory=dict)  # oid -> why it was not read


def _corrupt(remote: Remote, oid: str) -> CorruptObjectError:
    return CorruptObjectError(
        f"object {oid} from remote {remote.url} is corrupt (its bytes do not match its id)",
        hint="nothing was changed locally; re-push it from a registry that has it",
    )


def _too_large(oid: str, limit: int, structured: int) -> str:
    if limit == structured:
        return (
            f"object {oid} is larger than {limit >> 20} MiB, too large for a record, "
            "tree or manifest"
        )
    return f"object {oid} is larger than the {limit} bytes its manifest gives it"


def fetch(
    store: Store,
    remote: Remote,
    remote_packs: RemotePacks,
    ids: Iterable[str],
    limits: dict[str, int],
    default_limit: int,
    progress: Progress | None = None,
) -> Fetched:
    """Fetch ``ids`` into ``store``, each bounded by ``limits`` (else ``default_limit``)
    and verified by id. An object larger than its bound is not read: it is named in
    ``oversized``. A corrupt one raises CorruptObjectError; one that is nowhere, the
    remote's NotFoundError. Objects added here still need ``store.sync()``."""
    wanted = sorted(set(ids))
    out = Fetched()
    if not wanted:
        return out
    remote_packs.ensure()
    by_pack: dict[str, list[tuple[str, packs.Entry]]] = {}
    loose: list[str] = []
    for oid in wanted:
        limit = limits.get(oid, default_limit)
        hit = remote_packs.find(oid)
        if hit is None:
            loose.append(oid)
            continue
        name, entry = hit
        if entry.size > limit:
            out.oversized[oid] = _too_large(oid, limit, default_limit)
            continue
        raw = entry.encoding == codec.RAW
        if (raw and entry.stored != entry.size) or entry.stored > _slack(entry.size):
            raise CorruptObjectError(
                f"{pack_key(name, 'idx')} on remote {remote.url} gives object {oid} "
                f"{entry.stored} stored bytes for {entry.size}",
                hint="it was not written by modelreg; remove it from the remote",
            )
        by_pack.setdefault(name, []).append((oid, entry))

    def read(job: tuple[str, int, int, list[tuple[str, packs.Entry]]]) -> tuple[int, int]:
        name, start, length, members = job
        key = pack_key(name, "pack")
        if len(members) == 1 and length > RANGE_MAX:  # one large object: streamed
            oid, entry = members[0]
            if entry.encoding == codec.RAW:
                try:
                    store.add_stream(oid, remote.read_range(key, start, length))
                except CorruptObjectError:
                    raise _corrupt(remote, oid) from None
                return 1, length
        data = b"".join(remote.read_range(key, start, length))
        for oid, entry in members:
            at = entry.offset - start
            try:
                raw_bytes = codec.decode_verified(
                    entry.encoding, memoryview(data)[at : at + entry.stored], entry.size, oid
                )
            except CorruptObjectError:
                raise _corrupt(remote, oid) from None
            store.add(raw_bytes, oid, itemsize=entry.itemsize or None)
        return len(members), length

    jobs = [job for name, members in sorted(by_pack.items()) for job in _ranges(name, members)]
    expect(progress, sum(job[2] for job in jobs))
    with ThreadPoolExecutor(JOBS) as pool:
        for count, size in pool.map(read, jobs):
            out.objects += count
            out.bytes += size
            if progress:
                progress(size)

    def receive(oid: str) -> int:
        limit = limits.get(oid, default_limit)
        try:
            return store.add_stream(oid, remote.iter_object(oid, limit))
        except ObjectTooLargeError:
            out.oversized[oid] = _too_large(oid, limit, default_limit)
            return -1
        except CorruptObjectError:
            raise _corrupt(remote, oid) from None

    with ThreadPoolExecutor(8) as pool:
        for size in pool.map(receive, loose):
            if size >= 0:
                out.objects += 1
                out.bytes += size
                if progress:
                    progress(size)
    return out


def _ranges(
    name: str, members: list[tuple[str, packs.Entry]]
) -> list[tuple[str, int, int, list[tuple[str, packs.Entry]]]]:
    """Coalesce a pack's wanted entries into reads: (pack, start, length, entries)."""
    out: list[tuple[str, int, int, list[tuple[str, packs.Entry]]]] = []
    start = end = 0
    group: list[tuple[str, packs.Entry]] = []
    for oid, e in sorted(members, key=lambda m: m[1].offset):
        top = max(end, e.offset + e.stored)
        if group and e.offset - end <= GAP and top - start <= RANGE_MAX:
            group.append((oid, e))
            end = top
            continue
        if group:
            out.append((name, start, end - start, group))
        start, end, group = e.offset, e.offset + e.stored, [(oid, e)]
    if group:
        out.append((name, start, end - start, group))
    return out


# --- sending ------------------------------------------------------------------------------


@dataclass
class Sent:
    objects: int = 0
    bytes: int = 0  # bytes uploaded (packs and indexes)
    packs: list[str] = field(default_factory=list)


def send(
    store: Store,
    remote: Remote,
    remote_packs: RemotePacks,
    ids: Iterable[str],
    outgoing: Path,
    progress: Progress | None = None,
) -> Sent:
    """Upload the objects of ``ids`` the remote's packs lack, as packs. First any pack a
    killed push left in ``outgoing`` goes up (what it holds counts as sent)."""
    out = Sent()
    outgoing.mkdir(parents=True, exist_ok=True)
    for leftover in outgoing.iterdir():
        if leftover.name.startswith(_fs.TMP_PREFIX):
            leftover.unlink()  # a pack that was being built: built again below if needed
    remote_packs.ensure()
    leftovers = packs.index_names(outgoing)
    todo = [oid for oid in sorted(set(ids)) if remote_packs.find(oid) is None]
    expect(
        progress,
        sum(store.stored_size(oid) for oid in todo)
        + sum(packs.pack_paths(outgoing, name)[1].stat().st_size for name in leftovers),
    )
    for name in leftovers:
        out.objects += _upload(remote, remote_packs, outgoing, name, progress, out)
    todo = [oid for oid in todo if remote_packs.find(oid) is None]
    batch: list[str] = []
    size = 0
    for oid in todo:
        batch.append(oid)
        size += store.size(oid)
        if size >= PACK_MAX:
            out.objects += _pack_and_upload(
                store, remote, remote_packs, outgoing, batch, progress, out
            )
            batch, size = [], 0
    if batch:
        out.objects += _pack_and_upload(store, remote, remote_packs, outgoing, batch, progress, out)
    return out


def _pack_and_upload(
    store: Store,
    remote: Remote,
    remote_packs: RemotePacks,
    outgoing: Path,
    ids: list[str],
    progress: Progress | None,
    out: Sent,
) -> int:
    name = _build(store, outgoing, ids)
    return _upload(remote, remote_packs, outgoing, name, progress, out)


def _build(store: Store, outgoing: Path, ids: list[str]) -> str:
    """Write ``ids`` into a pack in ``outgoing`` (each read from a verified copy, kept
    encoded as it is here) and its index; returns its name. The index is renamed into
    place last: a pack in ``outgoing`` counts only once its index is there."""
    tmp = _fs.tmp_name(outgoing / "outgoing.pack")
    entries: dict[str, packs.Entry] = {}
    try:
        with open(tmp, "xb") as f:
            f.write(packs.PACK_MAGIC)
            offset = len(packs.PACK_MAGIC)
            for oid in ids:
                size = store.size(oid)
                if size > STREAM_ABOVE:
                    hasher = new_hasher()
                    stored = 0
                    for block in store.read_blocks(oid):
                        hasher.update(block)
                        f.write(block)
                        stored += len(block)
                    if hasher.hexdigest() != oid or stored != size:
                        raise CorruptObjectError(f"object {oid} changed while it was packed")
                    entries[oid] = packs.Entry(offset, stored, size, codec.RAW, 0)
                else:
                    data, size, encoding, itemsize = store.stored_copy(oid)
                    f.write(data)
                    stored = len(data)
                    entries[oid] = packs.Entry(offset, stored, size, encoding, itemsize)
                offset += stored
            f.flush()
            os.fsync(f.fileno())
        index = packs.build_index(entries, 0, offset)
        name = index[-packs.SUM_LEN :].hex()
        idx_path, pack_path = packs.pack_paths(outgoing, name)
        os.replace(tmp, pack_path)
        _fs.atomic_write(idx_path, index)
        return name
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _upload(
    remote: Remote,
    remote_packs: RemotePacks,
    outgoing: Path,
    name: str,
    progress: Progress | None,
    out: Sent,
) -> int:
    """Put one pack from ``outgoing`` on the remote, pack then index, and forget it here.
    Returns how many objects it holds."""
    idx_path, pack_path = packs.pack_paths(outgoing, name)
    journal = outgoing / f"pack-{name}.upload"
    index = idx_path.read_bytes()
    count = 0
    if name not in remote_packs.tables:
        count = packs.IndexTable(index, name).count
        remote.put_key_file(pack_key(name, "pack"), pack_path, journal, progress)
        remote.put_key_file(pack_key(name, "idx"), idx_path)
        out.bytes += pack_path.stat().st_size + len(index)
        out.packs.append(name)
        remote_packs.remember(name, index)
    for path in (idx_path, pack_path, journal):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return count
