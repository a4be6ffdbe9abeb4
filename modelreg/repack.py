"""``gc --auto``: keep a registry packed without anyone asking, cheaply.

After each write, the loose objects and the packs are *counted* (folder listings, nothing
read); past a limit, the loose objects and the smaller packs are merged into one new pack,
compressing what the index says has a known item size. Nothing is pruned here: deciding
what is unreachable means reading every version, which is ``modelreg gc``'s job.

Packs are chosen geometrically, as Git's ``repack --geometric`` does: sorted by size, the
small ones are merged until every pack left is at least twice the size of all smaller ones
together, so each byte is rewritten about log2(store / pack) times over a registry's life,
not once per merge.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from . import _fs, packs
from .errors import LockTimeoutError
from .objects import ObjectStore

FACTOR = 2


@dataclass
class AutoReport:
    packs: list[str] = field(default_factory=list)  # packs merged
    loose: int = 0  # loose objects packed
    new_pack: str | None = None


def over_limits(store: ObjectStore, loose_limit: int, pack_limit: int) -> bool:
    if pack_limit and len(packs.index_names(store.pack_dir)) >= pack_limit:
        return True
    return bool(loose_limit) and store.count_loose(sample=True) >= loose_limit


def geometric(sizes: dict[str, int], factor: int = FACTOR) -> list[str]:
    """The packs to merge so that the rest form a progression of ``factor``."""
    ordered = sorted(sizes, key=lambda n: (sizes[n], n))
    split = 0
    for i in range(1, len(ordered)):
        if sizes[ordered[i]] < factor * sizes[ordered[i - 1]]:
            split = i + 1
    merged = sum(sizes[n] for n in ordered[:split])
    while split < len(ordered) and sizes[ordered[split]] < factor * merged:
        merged += sizes[ordered[split]]
        split += 1
    return ordered[:split] if split > 1 or merged else []


def auto(store: ObjectStore, lock: _fs.FileLock, limits: tuple[int, int]) -> AutoReport | None:
    """Repack when the store is past ``limits`` (loose objects, packs); None when not, or
    when ``lock`` (the exclusive gc lock) cannot be had at once."""
    if not over_limits(store, *limits):
        return None
    try:
        lock.acquire()
    except LockTimeoutError:
        return None  # a writer or a gc is running; the next write looks again
    try:
        if not over_limits(store, *limits):
            return None
        return _merge(store)
    finally:
        lock.release()


def _merge(store: ObjectStore) -> AutoReport:
    names = store.pack_names()
    sizes = {}
    for name in names:
        try:
            sizes[name] = os.stat(store.pack_dir / f"pack-{name}.pack").st_size
        except FileNotFoundError:
            continue
    chosen = geometric(sizes)
    if len(chosen) == 1 and not store.count_loose():
        chosen = []
    report = AutoReport(packs=chosen)
    wanted: dict[str, int | None] = {}
    loose: list[str] = []
    merging = {f"pack-{n}.pack" for n in chosen}
    for c in store.copies(only_packs=chosen):
        if c.kind == "loose":
            loose.append(c.oid)
            wanted.setdefault(c.oid, None)
        elif c.where in merging:
            wanted.setdefault(c.oid, c.itemsize or None)
    report.loose = len(loose)
    if not wanted:
        return report
    report.new_pack = store.write_pack(wanted.items())
    store.retire([n for n in chosen if n != report.new_pack], loose)
    return report
