"""push, pull and clone: objects first, verified; refs last, by compare-and-swap.

Rules (docs/remotes.md says the same for users):

- Only missing objects move, in parallel. Every object is verified against its id when it is
  read from the local store (push) or received from the remote (pull); a bad one stops the
  transfer with an error naming it. Refs change only after all their objects are in place, so
  an interrupted push or pull leaves nothing dangling and simply resumes when run again.
- The remote's refs change by compare-and-swap. A push that finds a version number taken on
  the remote by a different version fails with "the remote moved; pull first".
- A version number, once on the remote, never changes. ``pull`` renumbers *local* versions
  that were never pushed when the remote took their numbers: they move, in order, after the
  highest number in use, and their tags follow them.
- Tags: each side remembers the remote's refs as of the last push or pull (the tracking refs
  in ``.modelreg/remotes/<remote>/``). A tag moved on one side only follows that side; moved
  on both, pull keeps the local one and the next push publishes it. A tag deleted locally is
  deleted on the remote by the next push of its family (pull before that brings it back);
  one deleted on the remote is deleted locally by pull unless it was moved here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _fs, files, names, remote_config
from .errors import CorruptObjectError, ModelregError, NotFoundError, RemoteError, RemoteMovedError
from .hashing import oid_of
from .refs import FamilyRefs
from .remotes import Remote, normalize_url, open_remote
from .repo import Repository

Progress = Callable[[int], None]
JOBS = 8
CAS_ATTEMPTS = 5


@dataclass
class TransferReport:
    remote: str
    objects: int = 0
    bytes: int = 0
    versions: list[str] = field(default_factory=list)
    renumbered: list[tuple[str, str]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


def _tracking_path(repo: Repository, remote: str, family: str) -> Path:
    return repo.dir / "remotes" / remote / f"{names.check_family(family)}.yaml"


def _read_tracking(repo: Repository, remote: str, family: str) -> FamilyRefs | None:
    path = _tracking_path(repo, remote, family)
    with contextlib.suppress(FileNotFoundError):
        return FamilyRefs.from_yaml(family, path.read_bytes(), path)
    return None


def _write_tracking(repo: Repository, remote: str, refs: FamilyRefs) -> None:
    path = _tracking_path(repo, remote, refs.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    _fs.atomic_write(path, refs.to_yaml())


def _copy(refs: FamilyRefs) -> FamilyRefs:
    return FamilyRefs(refs.name, dict(refs.versions), dict(refs.tags), list(refs.removed))


def version_objects(repo: Repository, record_oid: str) -> set[str]:
    """Every object one version needs; an unreadable one stops the push."""
    found: set[str] = set()

    def add(oid: str) -> bool:
        found.add(oid)
        return True

    def fail(e: ModelregError) -> None:
        raise e

    repo.walk_version(record_oid, add, fail)
    return found


def _parallel(
    fn: Callable[[str], int], oids: Iterable[str], progress: Progress | None
) -> tuple[int, int]:
    count = total = 0
    with ThreadPoolExecutor(JOBS) as pool:
        for size in pool.map(fn, oids):
            count += 1
            total += size
            if progress:
                progress(size)
    return count, total


# --- push -----------------------------------------------------------------------------


def _selection(repo: Repository, specs: Iterable[str]) -> dict[str, set[str] | None]:
    """family -> the versions to push (None: all of them, with tag deletions too)."""
    chosen: dict[str, set[str] | None] = {}
    for spec in specs:
        if "@" in spec:
            refs, version = repo.resolve(spec)
            current = chosen.setdefault(refs.name, set())
            if current is not None:
                current.add(version)
        else:
            repo.family(names.check_family(spec))
            chosen[spec] = None
    if not chosen:
        chosen = {name: None for name in repo.families()}
    return chosen


def push(
    repo: Repository,
    remote_name: str | None = None,
    specs: Iterable[str] = (),
    progress: Progress | None = None,
) -> TransferReport:
    name, remote = remote_config.resolve(repo, remote_name)
    report = TransferReport(remote=name)
    selection = _selection(repo, specs)
    remote.check(create=True)
    plans = []
    need: set[str] = set()
    for family, versions in selection.items():
        local = repo.family(family)
        chosen = set(local.versions) if versions is None else versions
        plans.append((local, chosen, versions is None))
        for v in chosen:
            need |= version_objects(repo, local.versions[v])
    missing = sorted(need - remote.list_objects())

    def send(oid: str) -> int:
        data = repo.objects.get(oid)  # verified on read
        remote.put_object(oid, data)
        return len(data)

    report.objects, report.bytes = _parallel(send, missing, progress)
    for local, chosen, whole in plans:
        _publish(repo, remote, name, local, chosen, whole, report)
    return report


def _publish(
    repo: Repository,
    remote: Remote,
    remote_name: str,
    local: FamilyRefs,
    chosen: set[str],
    whole: bool,
    report: TransferReport,
) -> None:
    family = local.name
    tracking = _read_tracking(repo, remote_name, family)
    for _attempt in range(CAS_ATTEMPTS):
        current = remote.read_ref(family)
        theirs = (
            FamilyRefs.from_yaml(family, current[0], Path(remote.url))
            if current
            else FamilyRefs(family)
        )
        merged = _copy(theirs)
        added = []
        for v in sorted(chosen, key=names.version_number):
            if v in theirs.versions and theirs.versions[v] != local.versions[v]:
                raise RemoteMovedError(f"the remote moved: it has a different {family}@{v}")
            if v in theirs.removed:
                raise RemoteMovedError(f"the remote moved: {family}@{v} was removed there")
            if v not in theirs.versions:
                merged.versions[v] = local.versions[v]
                added.append(f"{family}@{v}")
        moved_tags = []
        was = tracking.tags if tracking else {}
        for tag, v in local.tags.items():
            if v not in chosen or theirs.tags.get(tag) == v:
                continue
            if tag in theirs.tags and theirs.tags[tag] != was.get(tag):
                raise RemoteMovedError(
                    f"the remote moved: tag {tag!r} of {family} points at {theirs.tags[tag]} there"
                )
            merged.tags[tag] = v
            moved_tags.append(f"{family}@{v}:{tag}")
        if whole:
            for tag, v in was.items():
                if tag not in local.tags and theirs.tags.get(tag) == v:
                    del merged.tags[tag]
                    moved_tags.append(f"{family}:-{tag}")
        if current and not added and not moved_tags:
            break
        try:
            remote.write_ref(family, merged.to_yaml(), current[1] if current else None)
        except RemoteMovedError:
            continue  # someone else pushed this family meanwhile: merge again
        report.versions += added
        report.tags += moved_tags
        break
    else:
        raise RemoteMovedError(f"the remote kept moving while pushing {family}")
    _write_tracking(repo, remote_name, merged)


# --- pull ------------------------------------------------------------------------------


def _fetch(
    repo: Repository, remote: Remote, oids: Iterable[str], progress: Progress | None
) -> tuple[int, int]:
    todo = sorted({o for o in oids if not repo.objects.exists(o)})

    def receive(oid: str) -> int:
        data = remote.get_object(oid)
        if oid_of(data) != oid:
            raise CorruptObjectError(
                f"object {oid} from remote {remote.url} is corrupt (its bytes do not match its id)",
                hint="nothing was changed locally; re-push it from a registry that has it",
            )
        repo.objects.add(data, oid)
        return len(data)

    return _parallel(receive, todo, progress)


def pull(
    repo: Repository,
    remote_name: str | None = None,
    families: Iterable[str] = (),
    progress: Progress | None = None,
) -> TransferReport:
    name, remote = remote_config.resolve(repo, remote_name)
    return pull_from(repo, name, remote, families, progress)


def pull_from(
    repo: Repository,
    name: str,
    remote: Remote,
    families: Iterable[str] = (),
    progress: Progress | None = None,
) -> TransferReport:
    report = TransferReport(remote=name)
    remote.check(create=False)
    wanted = [names.check_family(f) for f in families] or remote.list_refs()
    remote_refs: dict[str, FamilyRefs] = {}
    for family in wanted:
        got = remote.read_ref(family)
        if got is None:
            raise NotFoundError(f"remote {name} has no model named {family!r}")
        remote_refs[family] = FamilyRefs.from_yaml(family, got[0], Path(remote.url))

    def step(oids: Iterable[str]) -> None:
        n, size = _fetch(repo, remote, oids, progress)
        report.objects += n
        report.bytes += size

    # Versions removed here stay removed: their objects are not fetched again.
    wanted_versions: dict[str, dict[str, str]] = {}
    for family, theirs in remote_refs.items():
        local = repo.refs.read(family)
        removed = set(local.removed) if local else set()
        wanted_versions[family] = {v: oid for v, oid in theirs.versions.items() if v not in removed}
    with repo.gc_lock(shared=True):
        step(oid for versions in wanted_versions.values() for oid in versions.values())
        roots = []
        for family, versions in wanted_versions.items():
            for v, oid in versions.items():
                rec = repo.record(oid)
                if rec.get("name") != family or rec.get("version") != v:
                    raise CorruptObjectError(
                        f"remote {name}: {family}@{v} names a record of "
                        f"{rec.get('name')}@{rec.get('version')}"
                    )
                roots.append(rec)
        step(r["root"] for r in roots)
        manifests = [r["root"] for r in roots if r["kind"] == "file"]
        for r in roots:
            if r["kind"] == "dir":
                tree = files.load_tree(repo.objects, r["root"])
                manifests += [e["manifest"] for e in tree["entries"].values()]
        step(manifests)
        step(c for m in manifests for c in files.chunk_ids(repo.objects.get_json(m)))
        repo.objects.sync()
        for family, theirs in remote_refs.items():
            tracking = _read_tracking(repo, name, family)
            repo.refs.update(
                family,
                lambda local, t=theirs, k=tracking: _merge(  # type: ignore[misc]
                    repo, local, t, k, report
                ),
            )
            _write_tracking(repo, name, theirs)
    return report


def _merge(
    repo: Repository,
    local: FamilyRefs,
    theirs: FamilyRefs,
    tracking: FamilyRefs | None,
    report: TransferReport,
) -> None:
    family = local.name
    published = set(tracking.versions) if tracking else set()
    clashes = [
        v for v, oid in theirs.versions.items() if v in local.versions and local.versions[v] != oid
    ]
    for v in clashes:
        if v in published:
            raise RemoteError(
                f"{family}@{v} differs from the copy on the remote, which it was pushed to",
                hint="published versions never change; inspect the remote with 'modelreg diff'",
            )
    if clashes:
        _renumber(repo, local, theirs, published, report)
    for v, oid in theirs.versions.items():
        if v not in local.versions and v not in local.removed:
            local.versions[v] = oid
            report.versions.append(f"{family}@{v}")
    was = tracking.tags if tracking else {}
    for tag, v in theirs.tags.items():
        mine = local.tags.get(tag)
        if mine == v or v not in local.versions:
            continue
        if mine is None or mine == was.get(tag):
            local.tags[tag] = v
            report.tags.append(f"{family}@{v}:{tag}")
    for tag, v in was.items():
        if tag not in theirs.tags and local.tags.get(tag) == v:
            del local.tags[tag]
            report.tags.append(f"{family}:-{tag}")


def _renumber(
    repo: Repository,
    local: FamilyRefs,
    theirs: FamilyRefs,
    published: set[str],
    report: TransferReport,
) -> None:
    """Move every never-pushed local version after the highest number in use."""
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


# --- clone -----------------------------------------------------------------------------


def clone(
    url: str, dest: Path, options: dict[str, Any] | None = None, progress: Progress | None = None
) -> tuple[Repository, TransferReport]:
    url = normalize_url(url)
    remote = open_remote(url, options)
    remote.check(create=False)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ModelregError(
            f"{dest} already exists and is not empty", hint="clone into a new or empty folder"
        )
    created = not dest.exists()
    try:
        repo, _ = Repository.init(dest)
        remote_config.add(repo, "origin", url, (options or {}).get("endpoint_url"))
        report = pull_from(repo, "origin", remote, (), progress)
    except BaseException:
        if created:
            import shutil

            shutil.rmtree(dest, ignore_errors=True)
        raise
    return repo, report
