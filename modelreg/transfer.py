"""Which objects a push sends and a pull receives, and through what: the transfer half of
``modelreg.sync`` (which decides versions and refs).

A push never lists the remote's objects. What the remote holds, it learns from
- the refs: every object of a version the remote's refs name is there (objects go up
  before the refs that name them), as far as this registry has that version to walk; the
  remote's refs of the families pushed are read anyway. The tracking refs of other
  families are not believed: a version removed there may have been collected;
- the remote's pack indexes, listed (one request per 1,000 packs) and fetched only when
  something is left after that, each once: they are cached beside the tracking refs.
An object only a remote written before packs holds loose, outside every version its refs
name (what a push killed before its refs leaves), is sent again, once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from . import wire
from .cache import shared_for
from .errors import ModelregError
from .refs import FamilyRefs
from .remotes import Remote
from .remotes.packed import RemotePacks
from .repo import Repository
from .walk import needed_objects

Progress = Callable[[int], None]


def remote_dir(repo: Repository, remote_name: str) -> Path:
    return repo.dir / "remotes" / remote_name


def remote_packs(repo: Repository, remote_name: str, remote: Remote) -> RemotePacks:
    return RemotePacks(remote, remote_dir(repo, remote_name) / "packs")


def held_by_refs(repo: Repository, theirs: Iterable[FamilyRefs]) -> set[str]:
    """Objects the remote holds for sure: those of every version its refs name (``theirs``,
    just read) that this registry can walk. Tracking refs are not enough: a version removed
    there since (``rm --remote``) may have had its packs deleted by ``gc --remote``."""
    held: set[str] = set()
    cache = shared_for(repo.objects)  # a lazy clone's chunks are there

    def here(oid: str) -> bool:
        if oid in held:
            return False  # walked already
        if not repo.objects.exists(oid) and not cache.exists(oid):
            return False
        held.add(oid)
        return True

    for refs in theirs:
        for oid in refs.versions.values():
            with contextlib.suppress(ModelregError, OSError):  # not walkable here: not counted
                needed_objects(repo.objects, oid, here)
    return held


@dataclass
class PushPlan:
    objects: int = 0
    bytes: int = 0  # uploaded
    total_bytes: int = 0  # raw bytes of every object the pushed versions need
    skipped_bytes: int = 0  # of those, already on the remote: not sent


def send_missing(
    repo: Repository,
    remote_name: str,
    remote: Remote,
    need: set[str],
    theirs: Iterable[FamilyRefs],
    progress: Progress | None = None,
) -> PushPlan:
    plan = PushPlan()
    sizes = {oid: repo.objects.size(oid) for oid in need}
    plan.total_bytes = sum(sizes.values())
    todo = need - held_by_refs(repo, theirs)
    sent_ids: set[str] = set()
    if todo:
        view = remote_packs(repo, remote_name, remote)
        outgoing = remote_dir(repo, remote_name) / "outgoing"
        sent = wire.send(repo.objects, remote, view, todo, outgoing, progress)
        plan.objects, plan.bytes = sent.objects, sent.bytes
        sent_ids = {oid for oid in todo if _in_packs(view, oid, sent.packs)}
    plan.skipped_bytes = sum(size for oid, size in sizes.items() if oid not in sent_ids)
    return plan


def _in_packs(view: RemotePacks, oid: str, names: list[str]) -> bool:
    return any(view.tables[name].find(oid) is not None for name in names)
