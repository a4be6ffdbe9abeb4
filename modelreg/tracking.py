"""Tracking refs and the merges push and pull make with them.

``.modelreg/remotes/<remote>/<name>.yaml`` keeps a family's refs as the remote had them at the
last sync, like Git's ``origin/main``. With them each merge is three-way:

- a local version counts as *published* only when the remote held that very record then;
  one the remote numbers differently is renumbered, never one that was published;
- a tag is compared as (here, there, remembered): moved on one side only, it follows that
  side; moved or deleted on both, it is a conflict. The remembered value of a tag advances
  only when both sides agree on it, so a conflict stays one until someone settles it.
- the tag history of both sides merges as the union of their events (by id): nothing is
  lost, and which tags are protected follows from the merged history (taghistory.py). A
  push that would move or delete a tag protected on the remote needs ``force``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from . import _fs, names, taghistory
from .errors import ProtectedTagError, RemoteError, RemoteMovedError
from .refs import FamilyRefs
from .repo import Repository


@dataclass
class TransferReport:
    remote: str
    objects: int = 0
    bytes: int = 0  # bytes moved over the wire
    seconds: float = 0.0
    total_bytes: int = 0  # push: raw bytes of every object the pushed versions need
    skipped_bytes: int = 0  # push: of those, what the remote held already (dedup): not sent
    versions: list[str] = field(default_factory=list)
    replaced: list[str] = field(
        default_factory=list
    )  # push --force: the remote's copy was not ours
    renumbered: list[tuple[str, str]] = field(default_factory=list)
    reparented: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # pull: removed on the remote, so here


def _tracking_path(repo: Repository, remote: str, family: str) -> Path:
    return repo.dir / "remotes" / remote / f"{names.check_family(family)}.yaml"


def read_tracking(repo: Repository, remote: str, family: str) -> FamilyRefs | None:
    path = _tracking_path(repo, remote, family)
    with contextlib.suppress(FileNotFoundError):
        return FamilyRefs.from_yaml(family, path.read_bytes(), path)
    return None


def write_tracking(repo: Repository, remote: str, refs: FamilyRefs) -> None:
    path = _tracking_path(repo, remote, refs.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    _fs.atomic_write(path, refs.to_yaml())


def copy_refs(refs: FamilyRefs) -> FamilyRefs:
    return FamilyRefs(
        refs.name,
        dict(refs.versions),
        dict(refs.tags),
        list(refs.removed),
        protected=list(refs.protected),
        history=list(refs.history),
    )


def merge_history(into: FamilyRefs, other: FamilyRefs) -> bool:
    """Add ``other``'s tag events to ``into`` (a union by id) and derive its protected tags
    from the result; True when ``into`` gained an event."""
    merged = taghistory.union(into.history, other.history)
    grew = len(merged) > len(into.history)
    if grew:
        into.history = merged
        into.protected = taghistory.protected_from(merged)
    return grew


def advance(base: FamilyRefs | None, theirs: FamilyRefs, local: dict[str, str]) -> FamilyRefs:
    """The tracking refs after a sync: the remote's versions, and for each tag the remote's
    value where both sides now agree, the value remembered before where they do not (so an
    unresolved difference is still seen as one next time)."""
    was = base.tags if base else {}
    tags: dict[str, str] = {}
    for tag in set(theirs.tags) | set(was):
        value = theirs.tags.get(tag) if local.get(tag) == theirs.tags.get(tag) else was.get(tag)
        if value is not None:
            tags[tag] = value
    return FamilyRefs(theirs.name, dict(theirs.versions), tags, list(theirs.removed))


def _shown(version: str | None) -> str:
    return version or "deleted"


def merged_for_push(
    local: FamilyRefs,
    theirs: FamilyRefs,
    tracking: FamilyRefs | None,
    chosen: set[str],
    whole: bool,
    force: bool,
    remote_name: str,
) -> tuple[FamilyRefs, list[str], list[str]]:
    """The remote's refs with the chosen versions and the tags moved here; (refs, versions
    added, tag changes). Raises RemoteMovedError on a taken number or a tag conflict.

    A version this registry published (the remote held this very record at the last sync)
    that the remote now holds differently was changed there by someone else: a version
    number never changes, so its copy is damaged or forged. ``force`` puts this registry's
    record back; a version published from elsewhere is never replaced."""
    family = local.name
    merged = copy_refs(theirs)
    merge_history(merged, local)
    added = []
    seen = tracking.versions if tracking else {}
    for v in sorted(chosen, key=names.version_number):
        if v in theirs.versions and theirs.versions[v] != local.versions[v]:
            if seen.get(v) != local.versions[v]:
                raise RemoteMovedError(f"the remote moved: it has a different {family}@{v}")
            if not force:
                raise RemoteMovedError(
                    f"the remote's copy of {family}@{v} differs from yours, which you pushed "
                    "there; version numbers never change, so it is damaged or forged",
                    hint="'modelreg push --force' replaces it with yours",
                )
            merged.versions[v] = local.versions[v]
            added.append(f"{family}@{v}")
            continue
        if v in theirs.removed:
            raise RemoteMovedError(f"the remote moved: {family}@{v} was removed there")
        if v not in theirs.versions:
            merged.versions[v] = local.versions[v]
            added.append(f"{family}@{v}")
    was = tracking.tags if tracking else {}
    candidates = set(local.tags) | (set(was) | set(theirs.tags) if whole else set())
    changes: list[str] = []
    conflicts: list[tuple[str, str | None, str | None]] = []
    for tag in sorted(candidates):
        mine, there, base = local.tags.get(tag), theirs.tags.get(tag), was.get(tag)
        if (mine is not None and mine not in chosen) or mine in (there, base):
            continue  # not pushed, already there, or not moved here
        if tag in theirs.protected and not force:
            raise ProtectedTagError(
                f"tag {tag!r} of {family} is protected on {remote_name} (it points at "
                f"{_shown(there)} there)",
                hint="'modelreg push --force' moves it anyway (the history records it)",
            )
        if there != base and not force:
            conflicts.append((tag, mine, there))
        elif mine is None:
            del merged.tags[tag]
            changes.append(f"{family}:-{tag}")
        else:
            merged.tags[tag] = mine
            changes.append(f"{family}@{mine}:{tag}")
    if conflicts:
        said = "; ".join(
            f"tag {tag!r} of {family} is {_shown(mine)} here and {_shown(there)} on {remote_name}"
            for tag, mine, there in conflicts
        )
        tag, _mine, there = conflicts[0]
        take = (
            f"modelreg tag {family}@{there} {tag}" if there else f"modelreg tag -d {family} {tag}"
        )
        raise RemoteMovedError(
            f"{said} (both moved since the last sync)",
            hint=f"take the remote's value ('{take}') and push, or publish yours with "
            "'modelreg push --force'",
        )
    return merged, added, changes


def merge_pulled(
    repo: Repository,
    local: FamilyRefs,
    theirs: FamilyRefs,
    tracking: FamilyRefs | None,
    remote_name: str,
    report: TransferReport,
) -> FamilyRefs:
    """Bring the remote's versions and tag moves into ``local``; return the new tracking."""
    family = local.name
    merge_history(local, theirs)
    seen = tracking.versions if tracking else {}
    published = {v for v, oid in local.versions.items() if seen.get(v) == oid}
    clashes = [
        v for v, oid in theirs.versions.items() if v in local.versions and local.versions[v] != oid
    ]
    for v in clashes:
        if v in published:
            raise RemoteError(
                f"{family}@{v} differs from the copy on the remote, which it was pushed to",
                hint="published versions never change: if yours is the right one, "
                "'modelreg push --force' replaces the remote's copy with yours",
            )
    if clashes:
        _renumber(repo, local, theirs, published, report)
    for v, oid in theirs.versions.items():
        if v not in local.versions and v not in local.removed:
            local.versions[v] = oid
            report.versions.append(f"{family}@{v}")
    was = tracking.tags if tracking else {}
    for tag in sorted(set(theirs.tags) | set(local.tags) | set(was)):
        mine, there, base = local.tags.get(tag), theirs.tags.get(tag), was.get(tag)
        if mine == there or there == base:
            continue  # the same, or moved here only: the next push publishes it
        if mine != base:
            report.conflicts.append(
                f"tag {tag!r} of {family} is {_shown(mine)} here and {_shown(there)} on "
                f"{remote_name}"
            )
        elif there is None:
            del local.tags[tag]
            report.tags.append(f"{family}:-{tag}")
        elif there in local.versions:
            local.tags[tag] = there
            report.tags.append(f"{family}@{there}:{tag}")
    _drop_removed(repo, local, theirs, seen, remote_name, report)
    return advance(tracking, theirs, local.tags)


def _drop_removed(
    repo: Repository,
    local: FamilyRefs,
    theirs: FamilyRefs,
    seen: dict[str, str],
    remote_name: str,
    report: TransferReport,
) -> None:
    """Versions removed on the remote (``rm --remote``) that this registry got from it go
    here too, unless a local change needs them: a tag here, or a version never published
    to this remote that names it as parent. Those are kept, with one warning (said once:
    the tracking refs forget the version)."""
    family = local.name
    for v in sorted(theirs.removed, key=names.version_number):
        oid = local.versions.get(v)
        if oid is None or seen.get(v) != oid:
            continue  # not here, or not the copy the remote had
        why = _needed_here(repo, local, f"{family}@{v}", seen, remote_name)
        if why:
            report.warnings.append(
                f"kept {family}@{v}: it was removed on {remote_name}, but {why} needs it; "
                f"it cannot be pushed again: 'modelreg rm {family}@{v}' before pushing {family}"
            )
            continue
        del local.versions[v]
        local.removed.append(v)
        local.removed_at[v] = dt.datetime.now(dt.timezone.utc).isoformat()
        report.dropped.append(f"{family}@{v}")


def _needed_here(
    repo: Repository, local: FamilyRefs, spec: str, seen: dict[str, str], remote_name: str
) -> str:
    """What local change needs version ``spec`` ('' when nothing does)."""
    version = spec.partition("@")[2]
    tags = sorted(t for t, v in local.tags.items() if v == version)
    if tags:
        return f"tag {tags[0]!r} here"
    for family in repo.families():
        if family == local.name:
            refs: FamilyRefs | None = local
            published = seen
        else:
            refs = repo.refs.read(family)
            tracked = read_tracking(repo, remote_name, family)
            published = tracked.versions if tracked else {}
        for v, oid in sorted(refs.versions.items() if refs else []):
            if published.get(v) == oid or (refs is local and v == version):
                continue
            if repo.record(oid).get("parent") == spec:
                return f"your unpublished {family}@{v}"
    return ""


def _renumber(
    repo: Repository,
    local: FamilyRefs,
    theirs: FamilyRefs,
    published: set[str],
    report: TransferReport,
) -> None:
    """Move every never-published local version after the highest number in use; a parent
    that named a moved version names its new number."""
    family = local.name
    mine = sorted(
        (
            v
            for v, oid in local.versions.items()
            if v not in published and theirs.versions.get(v) != oid
        ),
        key=names.version_number,
    )
    used = [
        *theirs.versions,
        *theirs.removed,
        *local.removed,
        *(v for v in local.versions if v not in mine),
    ]
    top = max((names.version_number(v) for v in used), default=0)
    mapping = {old: f"v{top + i}" for i, old in enumerate(mine, start=1)}
    renamed = {f"{family}@{a}": f"{family}@{b}" for a, b in mapping.items()}
    new_versions = {v: oid for v, oid in local.versions.items() if v not in mapping}
    for old, new in mapping.items():
        rec = repo.record(local.versions[old])
        rec["version"] = new
        if rec.get("parent") in renamed:
            rec["parent"] = renamed[rec["parent"]]
        new_versions[new] = repo.objects.add_json(rec)
        report.renumbered.append((f"{family}@{old}", f"{family}@{new}"))
    repo.objects.sync()
    local.versions = new_versions
    local.tags = {t: mapping.get(v, v) for t, v in local.tags.items()}


def reparent(
    repo: Repository, local: FamilyRefs, renamed: dict[str, str], published: set[str]
) -> list[str]:
    """Point never-published versions whose parent, in another family, was just renumbered
    at that parent's new number (within a family ``_renumber`` does it). A published record
    is never rewritten: ``push`` sends a version's ancestors with it, so none names a parent
    that was never published."""
    changed = []
    for v, oid in sorted(local.versions.items()):
        if v in published:
            continue
        rec = repo.record(oid)
        parent = rec.get("parent")
        if parent in renamed and not str(parent).startswith(f"{local.name}@"):
            rec["parent"] = renamed[parent]
            local.versions[v] = repo.objects.add_json(rec)
            changed.append(f"{local.name}@{v}: parent {parent} is now {rec['parent']}")
    if changed:
        repo.objects.sync()
    return changed
