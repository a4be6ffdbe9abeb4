"""push, pull and clone: objects first, verified; refs last, by compare-and-swap.

Rules (docs/remotes.md says the same for users):

- Only missing objects move, in parallel, streamed (an object is never held whole). Every
  object is verified against its id when it is read from the local store (push) or received
  from the remote (pull); a bad one stops the transfer with an error naming it. Refs change
  only after all their objects are in place, so an interrupted push or pull leaves nothing
  dangling and simply resumes when run again.
- Nothing from a remote is believed: pull checks that every record, tree and manifest it
  receives is well-formed and that each new record agrees with its objects (size,
  content_hash, format, kind, and an ``inspect`` summary recomputed here). A record that
  does not is refused, naming the remote and the object; a record is never rewritten.
  Pulling everything skips a family with a refused version (one warning) and pulls the
  rest; pulling that family by name is an error. Every object is read up to a bound known
  before reading it (a chunk's length in its manifest; 64 MiB for a record, tree or
  manifest).
- ``push --force`` replaces the remote's copy of a version this registry pushed (the remote
  held this very record at the last sync) when it differs there now: damaged or forged.
- The remote's refs change by compare-and-swap. A push that finds a version number taken on
  the remote by a different version fails with "the remote moved; pull first". Pushing a
  version also pushes its ancestors, so a parent named on the remote is the one meant.
- A version number, once on the remote, never changes. ``pull`` renumbers *local* versions
  that were never published when the remote took their numbers: they move, in order, after
  the highest number in use; their tags and the parents that name them follow.
- Versions and tags merge three-way against the tracking refs (``modelreg.tracking``): a tag
  moved (or deleted) on both sides is a conflict that pull reports, keeping both, and push
  refuses unless ``force``.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from . import (
    checkout,
    maintenance,
    names,
    remote_config,
    signatures,
    sigsync,
    tracking,
    transfer,
    verify,
    wire,
)
from . import lazy as lazy_data
from .errors import (
    CorruptObjectError,
    InvalidNameError,
    MalformedObjectError,
    ModelregError,
    NotFoundError,
    RemoteMovedError,
)
from .refs import FamilyRefs
from .remotes import Remote, normalize_url, open_remote
from .remotes.base import NotRegularFileError
from .remotes.packed import RemotePacks
from .repo import Repository
from .tracking import TransferReport
from .walk import MAX_STRUCTURED_BYTES, needed_objects

Progress = Callable[[int], None]
CAS_ATTEMPTS = 5


def _remote_refs(remote: Remote, label: str, family: str) -> tuple[FamilyRefs, str | None]:
    current = remote.read_ref(family)
    if current is None:
        return FamilyRefs(family), None
    where = f"refs/{family}.yaml on remote {label}"
    return FamilyRefs.from_yaml(family, current[0], where), current[1]


# --- push -----------------------------------------------------------------------------


def _selection(repo: Repository, specs: Iterable[str]) -> dict[str, set[str] | None]:
    """family -> the versions to push (None: all of them, with tag deletions too), with the
    ancestors of every chosen version (a parent must mean the same version on the remote)."""
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
        return {name: None for name in repo.families()}
    todo = [
        (f, v)
        for f, vs in chosen.items()
        for v in (vs if vs is not None else repo.family(f).versions)
    ]
    while todo:
        family, version = todo.pop()
        parent = repo.record(repo.family(family).versions[version]).get("parent")
        if not isinstance(parent, str):
            continue
        pfamily, pversion = names.parse_spec(parent)
        prefs = repo.refs.read(pfamily)
        if prefs is None or pversion not in prefs.versions:
            continue
        wanted = chosen.setdefault(pfamily, set())
        if wanted is not None and pversion not in wanted:
            wanted.add(pversion)
            todo.append((pfamily, pversion))
    return chosen


def _needed_objects(repo: Repository, record_oid: str, away: set[str]) -> set[str]:
    """The objects of a version here (or in the shared cache); ``away`` learns those this
    registry lacks (a lazy clone's chunks: ``_check_away`` decides)."""
    found: set[str] = set()
    cache = lazy_data.shared_cache(repo)

    def need(oid: str) -> bool:
        if not repo.objects.exists(oid) and not cache.exists(oid):
            away.add(oid)
            return False
        found.add(oid)
        return True

    needed_objects(repo.objects, record_oid, need)
    return found


def _check_away(repo: Repository, target: str, away: set[str]) -> None:
    """Objects missing here may be pushed only to the lazy remote that holds them."""
    if not away:
        return
    held = lazy_data.fetchable(repo, away) if remote_config.lazy_remote(repo) == target else {}
    lost = sorted(away - set(held))
    if lost:
        hint = (
            "fetch the versions first with 'modelreg fetch NAME@REF'"
            if remote_config.lazy_remote(repo)
            else "run 'modelreg fsck --repair' and push again"
        )
        raise NotFoundError(f"object {lost[0]} is missing", hint=hint)


def push(
    repo: Repository,
    remote_name: str | None = None,
    specs: Iterable[str] = (),
    progress: Progress | None = None,
    force: bool = False,
) -> TransferReport:
    """Send versions and the objects the remote lacks, then publish the refs. ``force``
    publishes local tag values over ones moved on both sides."""
    started = time.monotonic()
    name, remote = remote_config.resolve(repo, remote_name)
    report = TransferReport(remote=name)
    selection = _selection(repo, specs)
    asked = {"remote": name, "names": sorted(selection), "force": force}
    repo.run_hook("pre-push", asked)
    remote.check(create=True)
    plans = []
    need: set[str] = set()
    away: set[str] = set()
    for family, versions in selection.items():
        local = repo.family(family)
        chosen = set(local.versions) if versions is None else versions
        plans.append((local, chosen, versions is None))
        for v in chosen:
            need |= _needed_objects(repo, local.versions[v], away)
        need |= sigsync.bundles(repo, local, chosen)
    _check_away(repo, name, away)
    read: dict[str, tuple[FamilyRefs, str | None]] = {}  # the remote's refs, as first read
    for local, chosen, whole in plans:  # refuse a conflict before sending anything
        theirs, _token = read[local.name] = _remote_refs(remote, name, local.name)
        tracking.merged_for_push(
            local,
            theirs,
            tracking.read_tracking(repo, name, local.name),
            chosen,
            whole,
            force,
            name,
        )
    sent = transfer.send_missing(repo, name, remote, need, [r for r, _t in read.values()], progress)
    report.objects, report.bytes = sent.objects, sent.bytes
    report.total_bytes, report.skipped_bytes = sent.total_bytes, sent.skipped_bytes
    for local, chosen, whole in plans:
        _publish(repo, remote, name, local, chosen, whole, force, report, read[local.name])
        sigsync.push_family(remote, repo, local, chosen)  # after the refs that name them
    report.seconds = time.monotonic() - started
    repo.run_hook("post-push", {**asked, **report.__dict__})
    return report


def _publish(
    repo: Repository,
    remote: Remote,
    remote_name: str,
    local: FamilyRefs,
    chosen: set[str],
    whole: bool,
    force: bool,
    report: TransferReport,
    first: tuple[FamilyRefs, str | None] | None = None,
) -> None:
    """``first``: the remote's refs as read before sending (one request fewer; if they
    moved since, the compare-and-swap fails and they are read again)."""
    family = local.name
    base = tracking.read_tracking(repo, remote_name, family)
    for _attempt in range(CAS_ATTEMPTS):
        if first is not None:
            (theirs, token), first = first, None
        else:
            theirs, token = _remote_refs(remote, remote_name, family)
        merged, added, changes = tracking.merged_for_push(
            local, theirs, base, chosen, whole, force, remote_name
        )
        news = len(merged.history) > len(theirs.history)  # tag events the remote lacks
        if token is not None and not added and not changes and not news:
            break
        try:
            remote.write_ref(family, merged.to_yaml(), token)
        except RemoteMovedError:
            continue  # someone else pushed this family meanwhile: merge again
        report.versions += added
        report.replaced += [
            f"{family}@{v}"
            for v, oid in merged.versions.items()
            if theirs.versions.get(v, oid) != oid
        ]
        report.tags += changes
        break
    else:
        raise RemoteMovedError(f"the remote kept moving while pushing {family}")
    tracking.write_tracking(repo, remote_name, tracking.advance(base, merged, local.tags))


# --- pull ------------------------------------------------------------------------------


def pull(
    repo: Repository,
    remote_name: str | None = None,
    families: Iterable[str] = (),
    progress: Progress | None = None,
    full: bool = False,
) -> TransferReport:
    """From a remote this registry is lazy against (a lazy clone's origin), only refs,
    records, trees and manifests come, unless ``full``."""
    name, remote = remote_config.resolve(repo, remote_name)
    lazy = not full and remote_config.is_lazy(repo, name)
    return pull_from(repo, name, remote, families, progress, lazy=lazy)


def _wanted_refs(
    name: str, remote: Remote, families: list[str], report: TransferReport
) -> dict[str, FamilyRefs]:
    """The remote's refs of the named families (any problem is an error), or of all its
    families, where a junk or damaged refs file is skipped with a warning."""
    found: dict[str, FamilyRefs] = {}
    explicit = bool(families)
    for family in families or remote.list_refs():
        try:
            names.check_family(family)
            refs, token = _remote_refs(remote, name, family)
        except (ModelregError, OSError) as e:
            if explicit:
                raise
            where = f"refs file refs/{family}.yaml on remote {name}"
            if isinstance(e, InvalidNameError):
                why = f"{where} has no valid model name"
            elif isinstance(e, NotRegularFileError):
                why = f"{where} is {e.kind}, not a regular file"
            elif isinstance(e, OSError):
                why = f"{where} cannot be read"
            else:
                why = e.args[0]
            report.warnings.append(f"{why}; skipped it")
            continue
        if token is None:
            raise NotFoundError(f"remote {name} has no model named {family!r}")
        found[family] = refs
    return found


def _refused(name: str, what: str) -> CorruptObjectError:
    return CorruptObjectError(
        f"remote {name}: {what}",
        hint="nothing was changed locally; the remote's copy is damaged or forged: the "
        "registry that pushed that version can replace it with 'modelreg push --force'",
    )


def pull_from(
    repo: Repository,
    name: str,
    remote: Remote,
    families: Iterable[str] = (),
    progress: Progress | None = None,
    lazy: bool = False,
) -> TransferReport:
    """``lazy``: stop above the chunks (``modelreg.lazy`` fetches them when a version's data
    is first read); what a record claims about its data is checked then."""
    started = time.monotonic()
    report = TransferReport(remote=name)
    remote.check(create=False)
    named = list(families)
    remote_refs = _wanted_refs(name, remote, named, report)
    # A family with a version the remote's objects do not bear out is skipped whole, with a
    # warning, when pulling everything; pulling it by name is an error.
    refused: dict[str, str] = {}  # family -> what is wrong, starting with NAME@vN

    def refuse(family: str, what: str) -> None:
        if named:
            raise _refused(name, what)
        refused.setdefault(family, what)

    # Versions removed here stay removed: their objects are not fetched again.
    wanted: list[tuple[str, str, str]] = []  # (record oid, family, vN)
    for family, theirs in remote_refs.items():
        local = repo.refs.read(family)
        removed = set(local.removed) if local else set()
        wanted += [(oid, family, v) for v, oid in theirs.versions.items() if v not in removed]
    fetched: set[str] = set()
    limits: dict[str, int] = {}  # oid -> the most bytes it may have (needed_objects)
    oversized: dict[str, str] = {}  # oid -> why reading it stopped
    view = transfer.remote_packs(repo, name, remote)

    with repo.gc_lock(shared=True):
        # Each walk goes one level further down (record, root, manifests, chunks), checking
        # the shape of what it reads; what is absent is fetched before the next walk.
        absent: dict[str, set[str]] = {}  # family -> objects it still needs
        stopped: list[str] = []

        def need(oid: str, into: set[str]) -> bool:
            if oid in oversized:
                stopped.append(oid)
                return False
            if repo.objects.exists(oid):
                return True
            into.add(oid)
            return False

        while True:
            absent.clear()
            for oid, family, v in wanted:
                if family in refused:
                    continue
                stopped.clear()
                into = absent.setdefault(family, set())
                try:
                    needed_objects(
                        repo.objects,
                        oid,
                        functools.partial(need, into=into),
                        limits,
                        chunks=not lazy,
                    )
                except MalformedObjectError as e:
                    refuse(family, f"{family}@{v}: {e.args[0]}")
                    continue
                if stopped:
                    refuse(family, f"{family}@{v}: {oversized[stopped[0]]}")
            todo: set[str] = set().union(*(o for f, o in absent.items() if f not in refused))
            if not todo:
                break
            got = wire.fetch(
                repo.objects, remote, view, todo, limits, MAX_STRUCTURED_BYTES, progress
            )
            oversized.update(got.oversized)
            fetched |= todo - set(got.oversized)
            report.objects += got.objects
            report.bytes += got.bytes
            repo.objects.sync()  # a pull killed later keeps what each level brought
        checked = verify.Checked()
        on_word: list[str] = []  # records taken on the remote's word (lazy)
        for oid, family, v in wanted:
            if family in refused:
                continue
            try:
                content = not lazy or not lazy_data.absent(repo, oid)  # small: inline
                _check_record(repo, oid, family, v, fetched, checked, content=content)
            except CorruptObjectError as e:
                refuse(family, e.args[0])
                continue
            if not content and oid in fetched:
                on_word.append(oid)
        lazy_data.mark_unchecked(repo, on_word)
        repo.objects.sync()
        for family, what in refused.items():
            report.warnings.append(
                f"remote {name}: {what}; skipped family {family} (the registry that pushed it "
                "can replace the remote's copy with 'modelreg push --force')"
            )
        for family, theirs in remote_refs.items():
            if family in refused:
                continue
            base = tracking.read_tracking(repo, name, family)
            advanced = repo.refs.update(
                family,
                lambda local, t=theirs, k=base: tracking.merge_pulled(  # type: ignore[misc]
                    repo, local, t, k, name, report
                ),
            )
            tracking.write_tracking(repo, name, advanced)
        for label in report.dropped:  # removed on the remote: its checkout goes too
            checkout.discard(repo, *names.parse_spec(label))
        if report.renumbered:
            _reparent(repo, name, dict(report.renumbered), report)
            signatures.renumbered(repo, report.renumbered)
        for family in remote_refs:
            if family not in refused:
                sigsync.pull_family(repo, remote, view, name, family, report)
    repo.after_write()  # gc --auto: the fetched objects arrived loose
    report.seconds = time.monotonic() - started
    return report


def _reparent(repo: Repository, name: str, renamed: dict[str, str], report: TransferReport) -> None:
    for family in repo.refs.families():
        base = tracking.read_tracking(repo, name, family)
        seen = base.versions if base else {}

        def fix(local: FamilyRefs, seen: dict[str, str] = seen) -> None:
            published = {v for v, oid in local.versions.items() if seen.get(v) == oid}
            report.reparented += tracking.reparent(repo, local, renamed, published)

        repo.refs.update(family, fix)


def _check_record(
    repo: Repository,
    oid: str,
    family: str,
    version: str,
    fetched: set[str],
    checked: verify.Checked,
    content: bool = True,
) -> None:
    """A record the remote files under NAME@vN must be that version; one that came from the
    remote must agree with its objects, and a manifest that came with it must hash to its
    ``hash``. Raises CorruptObjectError saying what is wrong, starting with NAME@vN."""
    rec = repo.record(oid)
    if rec["name"] != family or rec["version"] != version:
        raise CorruptObjectError(
            f"{family}@{version} names a record of {rec['name']}@{rec['version']}"
        )
    if oid not in fetched:
        return
    try:
        verify.check_version(
            repo, oid, rehash=fetched.__contains__, checked=checked, content=content
        )
    except CorruptObjectError as e:
        raise CorruptObjectError(
            f"{family}@{version}: record {oid} is refused: {e.args[0]}"
        ) from None


# --- fsck --repair -----------------------------------------------------------------------


def repair(repo: Repository) -> maintenance.FsckReport:
    """fsck, then fetch every corrupt or missing object from the configured remotes (each
    verified as on pull) and check again, until nothing more can be fixed: a repaired record
    or manifest may reveal objects below it that are missing too."""
    report = maintenance.fsck(repo)
    repaired: dict[str, str] = {}
    reachable: dict[str, Remote] = {}
    views: dict[str, RemotePacks] = {}
    unusable: list[str] = []
    for remote_name in sorted(remote_config.remotes(repo)):
        try:
            _name, remote = remote_config.resolve(repo, remote_name)
            remote.check(create=False)
        except ModelregError as e:
            unusable.append(f"remote {remote_name} was not used: {e.args[0]}")
            continue
        reachable[remote_name] = remote
    while True:
        bad = sorted((set(report.corrupt) | set(report.missing)) - set(repaired))
        fixed: dict[str, str] = {}
        limits = _limits(repo)
        with repo.gc_lock(shared=True):
            for oid in bad:
                for remote_name, remote in reachable.items():
                    view = views.setdefault(
                        remote_name, transfer.remote_packs(repo, remote_name, remote)
                    )
                    try:
                        got = wire.fetch(
                            repo.objects, remote, view, [oid], limits, MAX_STRUCTURED_BYTES
                        )
                    except ModelregError:
                        continue  # not there, or damaged there too
                    if got.objects:
                        fixed[oid] = remote_name
                        break
            repo.objects.sync()
        if not fixed:
            break
        repaired.update(fixed)
        report = maintenance.fsck(repo)
    report.repaired = repaired
    if report.corrupt or report.missing:
        report.problems += unusable
    return report


def _limits(repo: Repository) -> dict[str, int]:
    """The most bytes each object the versions here need may have, as far as the objects
    here tell (a chunk's length in its manifest): what a repair reads from a remote."""
    limits: dict[str, int] = {}
    with contextlib.suppress(ModelregError, OSError):  # damaged refs: fsck says so
        for refs in list(repo.refs):
            for oid in refs.versions.values():
                with contextlib.suppress(ModelregError, OSError):  # damaged: fsck says so
                    needed_objects(repo.objects, oid, repo.objects.exists, limits)
    return limits


# --- clone -----------------------------------------------------------------------------


def clone(
    url: str,
    dest: Path,
    options: dict[str, Any] | None = None,
    progress: Progress | None = None,
    full: bool = False,
) -> tuple[Repository, TransferReport]:
    """A new registry from the remote at ``url`` (remote 'origin'): lazy unless ``full``
    (refs, records, trees and manifests now; each version's chunks when first read)."""
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
        if not full:
            remote_config.set_lazy(repo, "origin", True)
        report = pull_from(repo, "origin", remote, (), progress, lazy=not full)
    except BaseException:
        if created:
            import shutil

            shutil.rmtree(dest, ignore_errors=True)
        raise
    return repo, report
