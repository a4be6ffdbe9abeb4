"""Retention on a remote: ``rm --remote`` drops a version from the remote's refs;
``gc --remote`` deletes what no remote ref reaches any more.

The rule that makes gc safe beside pushes (git's ``gc.pruneExpire``): nothing modified
less than ``grace`` ago is deleted or rewritten. A push uploads its packs before the refs
that name them, so a pack it is still sending is always newer than the grace period.

Order of work (a reader that lists the remote meanwhile sees a whole pack or none):

1. read every refs file and signatures file, and walk the versions they name through the
   remote's packs (records, trees, manifests are fetched into memory; chunks never are);
2. plan: per pack, dead (no live object: delete it), mixed (copy its live objects into a
   new pack, uploaded pack first, index last, then delete the old) or live (kept); loose
   objects (remotes written before packs) nobody reaches are deleted;
3. read the refs again: if they moved, the live set is walked again and the plan spares
   whatever it now reaches;
4. delete, index before pack, so no new reader picks a pack that is going away.

Anything the walk cannot read (a record missing on the remote, a refused index) stops gc
before it deletes anything: an incomplete picture of what is live is never acted on.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import codec, names, packs, remote_config, transfer, wire
from .errors import (
    CorruptObjectError,
    InvalidInputError,
    ModelregError,
    NotFoundError,
    RemoteMovedError,
)
from .hashing import is_oid, new_hasher
from .refs import FamilyRefs
from .remotes import Remote
from .remotes.base import pack_key, signatures_key
from .remotes.packed import RemotePacks
from .repo import Repository, drop_version
from .store_api import MemoryObjectStore
from .walk import MAX_STRUCTURED_BYTES, needed_objects

DEFAULT_GRACE = 3600.0
CAS_ATTEMPTS = 5
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")


def parse_duration(text: str) -> float:
    """``90``, ``30s``, ``15m``, ``1h``, ``2d``, ``1w`` -> seconds."""
    m = _DURATION.fullmatch(text.strip())
    if m is None:
        raise InvalidInputError(
            f"{text!r} is not a duration",
            hint="give a number with a unit: 30s, 15m, 1h, 2d, 1w (0 spares nothing)",
        )
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


# --- rm --remote ----------------------------------------------------------------------


def remove(
    repo: Repository, remote_name: str | None, spec: str, force: bool = False
) -> tuple[str, str, list[str]]:
    """Drop ``NAME@REF`` from the remote's refs by compare-and-swap (its number is never
    reused there). Returns (remote name, vN, tags dropped). Its bytes stay until
    ``gc --remote``."""
    if "@" not in spec:
        raise InvalidInputError(
            f"say which version of {spec!r} to remove from the remote",
            hint=f"e.g. 'modelreg rm --remote origin {spec}@v1'",
        )
    family, ref = names.parse_spec(spec)
    name, remote = remote_config.resolve(repo, remote_name)
    remote.check(create=False)
    for _ in range(CAS_ATTEMPTS):
        current = remote.read_ref(family)
        if current is None:
            raise ModelregError(f"remote {name} has no model named {family!r}")
        refs = FamilyRefs.from_yaml(family, current[0], f"refs/{family}.yaml on remote {name}")
        try:
            version, tags = drop_version(refs, ref, force)
        except NotFoundError as e:
            raise NotFoundError(
                f"remote {name}: {e.args[0]}",
                hint=f"'modelreg pull', then 'modelreg log {family}', shows its versions",
            ) from None
        try:
            remote.write_ref(family, refs.to_yaml(), current[1])
        except RemoteMovedError:
            continue
        return name, version, tags
    raise RemoteMovedError(f"the refs of {family} on remote {name} kept changing", hint="try again")


# --- gc --remote: what is live --------------------------------------------------------


def _stop(label: str, what: str) -> CorruptObjectError:
    return CorruptObjectError(
        f"remote {label}: {what}; gc --remote deleted nothing",
        hint="remove or repair that file on the remote, then run gc --remote again",
    )


def _remote_refs(remote: Remote, label: str) -> dict[str, bytes]:
    """Every refs file's bytes: one that cannot be read stops gc (its versions' objects
    would look dead)."""
    found: dict[str, bytes] = {}
    for family in remote.list_refs():
        try:
            names.check_family(family)
            current = remote.read_ref(family)
        except ModelregError as e:
            raise _stop(label, f"refs/{family}.yaml: {e.args[0]}") from None
        if current is not None:
            found[family] = current[0]
    return found


def _bundles(raw: Any) -> Iterable[str]:
    """Every ``bundle`` id anywhere in a signatures file (kept whatever version it is for)."""
    if isinstance(raw, dict):
        for key, value in raw.items():
            if key == "bundle" and isinstance(value, str) and is_oid(value):
                yield value
            else:
                yield from _bundles(value)
    elif isinstance(raw, list):
        for value in raw:
            yield from _bundles(value)


def live_objects(
    remote: Remote, view: RemotePacks, label: str
) -> tuple[set[str], dict[str, bytes]]:
    """Every object a remote ref or signature reaches, and the refs files read."""
    refs_text = _remote_refs(remote, label)
    records: set[str] = set()
    live: set[str] = set()
    for family, text in refs_text.items():
        refs = FamilyRefs.from_yaml(family, text, f"refs/{family}.yaml on remote {label}")
        records.update(refs.versions.values())
        side = remote.read_side(signatures_key(family))
        if side is not None:
            try:
                live.update(_bundles(json.loads(side[0])))
            except ValueError:
                raise _stop(label, f"{signatures_key(family)} is not JSON") from None
    store = MemoryObjectStore()
    limits: dict[str, int] = {}
    missing: set[str] = set()

    def need(oid: str) -> bool:
        live.add(oid)
        if limits.get(oid) != MAX_STRUCTURED_BYTES:
            return False  # a chunk or a card: never fetched
        if store.exists(oid):
            return True
        missing.add(oid)
        return False

    while True:
        missing.clear()
        for oid in sorted(records):
            needed_objects(store, oid, need, limits)
        if not missing:
            return live, refs_text
        got = wire.fetch(store, remote, view, missing, limits, MAX_STRUCTURED_BYTES)
        if got.oversized:
            raise _stop(label, next(iter(got.oversized.values())))


# --- the plan -------------------------------------------------------------------------


@dataclass
class RemoteGcPlan:
    remote: str
    live_objects: int = 0
    dead_packs: list[str] = field(default_factory=list)
    mixed_packs: list[str] = field(default_factory=list)
    orphan_keys: list[str] = field(default_factory=list)  # packs without index, loose objects
    young_packs: int = 0  # spared: newer than the grace period
    objects: int = 0  # dead objects whose bytes go
    bytes: int = 0  # stored bytes freed (after repacking)
    new_packs: list[str] = field(default_factory=list)
    done: bool = False


def _plan(
    remote: Remote, view: RemotePacks, live: set[str], grace: float, label: str
) -> RemoteGcPlan:
    plan = RemoteGcPlan(remote=label, live_objects=len(live))
    cutoff = time.time() - grace
    keys = remote.list_keys("packs/")
    for name in sorted(view.tables):
        table = view.tables[name]
        idx, pack = pack_key(name, "idx"), pack_key(name, "pack")
        times = [keys[k][1] for k in (idx, pack) if k in keys]
        if not times or max(times) > cutoff:
            plan.young_packs += 1
            continue
        dead = [(oid, e) for oid, e in table if oid not in live]
        if not dead:
            continue
        plan.objects += len(dead)
        if len(dead) == table.count:
            plan.dead_packs.append(name)
            plan.bytes += sum(keys.get(k, (0, 0.0))[0] for k in (idx, pack))
        else:
            plan.mixed_packs.append(name)
            plan.bytes += sum(e.stored for _, e in dead)
    known = {pack_key(n, ext) for n in view.tables for ext in ("idx", "pack")}
    for key, (size, modified) in sorted(keys.items()):
        lone = key.endswith(".pack") and key[:-5] + ".idx" not in keys
        if lone and key not in known and modified <= cutoff:
            plan.orphan_keys.append(key)  # a pack whose index never went up
            plan.bytes += size
    for key, (size, modified) in sorted(remote.list_keys("objects/").items()):
        oid = key[len("objects/") :].replace("/", "")
        if is_oid(oid) and oid not in live and modified <= cutoff:
            plan.orphan_keys.append(key)
            plan.objects += 1
            plan.bytes += size
    return plan


def plan_gc(
    repo: Repository, remote_name: str | None, grace: float = DEFAULT_GRACE
) -> tuple[RemoteGcPlan, Remote, RemotePacks, set[str], dict[str, bytes]]:
    label, remote = remote_config.resolve(repo, remote_name)
    remote.check(create=False)
    view = transfer.remote_packs(repo, label, remote)  # the indexes push and pull cached
    view.load()
    if view.refused:
        raise _stop(label, next(iter(view.refused.values())))
    live, refs_text = live_objects(remote, view, label)
    return _plan(remote, view, live, grace, label), remote, view, live, refs_text


def gc(
    repo: Repository,
    remote_name: str | None,
    grace: float = DEFAULT_GRACE,
    dry_run: bool = False,
    on_plan: Callable[[RemoteGcPlan], None] | None = None,
) -> RemoteGcPlan:
    """Plan, tell ``on_plan``, then (unless ``dry_run``) act on the plan."""
    plan, remote, view, live, refs_text = plan_gc(repo, remote_name, grace)
    if on_plan is not None:
        on_plan(plan)
    if dry_run or not (plan.dead_packs or plan.mixed_packs or plan.orphan_keys):
        return plan
    if _remote_refs(remote, plan.remote) != refs_text:
        # a push or rm landed meanwhile: what it reaches is spared (plan again)
        plan, remote, view, live, _ = plan_gc(repo, remote_name, grace)
    with tempfile.TemporaryDirectory(prefix="modelreg-gc-") as tmp:
        for name in plan.mixed_packs:
            plan.new_packs.append(_repack(remote, view, name, live, Path(tmp)))
    for name in [*plan.dead_packs, *plan.mixed_packs]:
        remote.delete_key(pack_key(name, "idx"))
        remote.delete_key(pack_key(name, "pack"))
        if view.cache is not None:
            with contextlib.suppress(FileNotFoundError):
                (view.cache / f"pack-{name}.idx").unlink()
    for key in plan.orphan_keys:
        remote.delete_key(key)
    plan.done = True
    return plan


def _reads(members: list[tuple[str, packs.Entry]]) -> list[list[tuple[str, packs.Entry]]]:
    """Live objects in pack order, grouped into ranged reads of at most ``wire.RANGE_MAX``
    bytes that skip no more than ``wire.GAP`` dead bytes (an object larger goes alone)."""
    groups: list[list[tuple[str, packs.Entry]]] = []
    for oid, e in members:
        last = groups[-1] if groups else None
        if last is not None:
            first, (_, prev) = last[0][1], last[-1]
            near = e.offset - (prev.offset + prev.stored) <= wire.GAP
            if near and e.offset + e.stored - first.offset <= wire.RANGE_MAX:
                last.append((oid, e))
                continue
        groups.append([(oid, e)])
    return groups


def _repack(remote: Remote, view: RemotePacks, name: str, live: set[str], tmp: Path) -> str:
    """Copy the live objects of pack ``name`` into a new pack on the remote, each verified
    against its id on the way, kept as it is encoded; returns the new pack's name."""
    key = pack_key(name, "pack")
    members = sorted(
        ((oid, e) for oid, e in view.tables[name] if oid in live), key=lambda m: m[1].offset
    )
    entries: dict[str, packs.Entry] = {}
    path = tmp / f"{name}.pack"
    with open(path, "wb") as out:
        out.write(packs.PACK_MAGIC)
        offset = len(packs.PACK_MAGIC)
        for group in _reads(members):
            start = group[0][1].offset
            end = group[-1][1].offset + group[-1][1].stored
            if len(group) == 1 and group[0][1].encoding == codec.RAW:
                oid, e = group[0]  # streamed: it may be larger than a range
                hasher = new_hasher()
                for block in remote.read_range(key, e.offset, e.stored):
                    hasher.update(block)
                    out.write(block)
                if hasher.hexdigest() != oid:
                    raise _corrupt(remote, name, oid)
            else:
                data = memoryview(b"".join(remote.read_range(key, start, end - start)))
                for oid, e in group:
                    stored = data[e.offset - start : e.offset - start + e.stored]
                    try:
                        codec.decode_verified(e.encoding, stored, e.size, oid)
                    except CorruptObjectError:
                        raise _corrupt(remote, name, oid) from None
                    out.write(stored)
            for oid, e in group:
                entries[oid] = packs.Entry(offset, e.stored, e.size, e.encoding, e.itemsize)
                offset += e.stored
        out.flush()
        os.fsync(out.fileno())
    index = packs.build_index(entries, 0, offset)
    new = index[-packs.SUM_LEN :].hex()
    idx_path = tmp / f"{new}.idx"
    idx_path.write_bytes(index)
    remote.put_key_file(pack_key(new, "pack"), path)
    remote.put_key_file(pack_key(new, "idx"), idx_path)
    return new


def _corrupt(remote: Remote, name: str, oid: str) -> CorruptObjectError:
    return CorruptObjectError(
        f"object {oid} in {pack_key(name, 'pack')} on remote {remote.url} is corrupt",
        hint="gc --remote deleted nothing; re-push the version from a registry that has it",
    )
