"""Whole-store work: reachability, ``fsck``, ``gc`` and ``stats``.

Each command is split into the work, which returns a report, and the printing, done by the
CLI. ``gc`` plans first and executes only the plan.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import _fs, codec, files, formats, hints, indexfile, modelinfo, repack, signatures
from .chunking import ChunkParams
from .errors import CorruptObjectError, MalformedObjectError, ModelregError, NotFoundError
from .hashing import oid_of
from .objects import Copy
from .refs import FamilyRefs
from .repo import Repository
from .store_api import MemoryObjectStore, Store
from .verify import Checked, check_version
from .walk import needed_objects


def _walk(repo: Repository) -> tuple[dict[str, set[str]], dict[str, set[str]], dict[str, str]]:
    """Every object a ref leads to -> the versions ('name@vN') that need it; the missing ones
    -> the versions that need them; and the versions whose walk something else stopped (a
    malformed object) -> what."""
    users: dict[str, set[str]] = {}
    missing: dict[str, set[str]] = {}
    errors: dict[str, str] = {}
    for refs in repo.refs:
        for version, oid in refs.versions.items():
            label = f"{refs.name}@{version}"

            def need(oid: str, label: str = label) -> bool:
                users.setdefault(oid, set()).add(label)
                if not repo.objects.exists(oid):
                    missing.setdefault(oid, set()).add(label)
                    return False
                return True

            try:
                needed_objects(repo.objects, oid, need)
            except MalformedObjectError as e:
                errors[label] = e.args[0]
            except CorruptObjectError:
                pass  # the object scan names it, with every version that uses it
            except ModelregError as e:
                errors[label] = e.args[0]
    for label, oid in signatures.all_bundles(repo):  # kept beside the versions they sign
        users.setdefault(oid, set()).add(label)
        if not repo.objects.exists(oid):
            missing.setdefault(oid, set()).add(label)
    return users, missing, errors


def reachable(repo: Repository) -> tuple[dict[str, set[str]], list[str]]:
    """Every object a ref leads to -> the versions ('name@vN') that need it; and the
    problems met on the way (a missing or malformed object)."""
    users, missing, errors = _walk(repo)
    cached, away = _elsewhere(repo, missing)
    for oid in cached | set(away):  # a lazy clone reads or fetches it when needed
        del missing[oid]
    problems = [
        f"{', '.join(sorted(labels))}: missing object {oid}" for oid, labels in missing.items()
    ]
    return users, problems + [f"{label}: {why}" for label, why in errors.items()]


@dataclass
class FsckReport:
    checked: int = 0
    corrupt: dict[str, list[str]] = field(default_factory=dict)  # oid -> versions using it
    where: dict[str, str] = field(default_factory=dict)  # oid -> the damaged copy's file
    missing: dict[str, list[str]] = field(default_factory=dict)  # oid -> versions needing it
    inconsistent: dict[str, str] = field(default_factory=dict)  # 'name@vN' -> what is wrong
    problems: list[str] = field(default_factory=list)  # what else stopped the check
    unused: int = 0
    leftovers: int = 0
    repaired: dict[str, str] = field(default_factory=dict)  # oid -> remote it came from
    packs: int = 0
    fetchable: dict[str, list[str]] = field(default_factory=dict)  # lazy: oid -> versions
    fetchable_from: str | None = None  # the lazy remote whose packs hold them
    cached: int = 0  # objects read from the shared cache, not this registry

    @property
    def ok(self) -> bool:
        return not (self.corrupt or self.missing or self.inconsistent or self.problems)

    @property
    def dangling(self) -> int:
        return self.unused


def fsck(repo: Repository) -> FsckReport:
    """Re-hash every copy of every object (loose or packed) and check every pack index, walk
    every version, and check each complete version's record against its manifests and
    content. Counts are of objects, each once."""
    report = FsckReport()
    errors: dict[str, str] = {}
    try:
        users, missing, errors = _walk(repo)
    except ModelregError as e:
        users, missing, report.problems = {}, {}, [str(e)]
    report.problems += [f"{label}: {why}" for label, why in errors.items()]
    report.missing = {oid: sorted(labels) for oid, labels in sorted(missing.items())}
    _split_missing(repo, report)
    seen: set[str] = set()
    sound: set[str] = set()
    for copy in repo.objects.copies():
        if copy.oid not in seen:
            seen.add(copy.oid)
            report.checked += 1
            report.unused += copy.oid not in users
        try:
            repo.objects.verify_copy(copy)
            sound.add(copy.oid)
        except (OSError, ModelregError):
            report.corrupt[copy.oid] = sorted(users.get(copy.oid, ()))
            report.where.setdefault(copy.oid, copy.where)
    for oid in sound & set(report.corrupt):  # readers use the sound copy; gc drops the other
        del report.corrupt[oid]
        report.where.pop(oid)
    for oid in set(report.corrupt) & set(report.missing):  # no sound copy: said once, as corrupt
        del report.missing[oid]
    report.packs = len(repo.objects.pack_names())
    report.problems += repo.objects.index_problems()
    checked = Checked()
    broken = set(errors) | {
        label for labels in [*report.corrupt.values(), *report.missing.values()] for label in labels
    }
    not_here = {label for labels in report.fetchable.values() for label in labels}
    for refs in _quiet_refs(repo):
        for version, oid in sorted(refs.versions.items()):
            label = f"{refs.name}@{version}"
            if label in broken:
                continue
            try:
                check_version(repo, oid, checked=checked, content=label not in not_here)
            except ModelregError as e:
                report.inconsistent[label] = f"record {oid}: {e.args[0]}"
    for label, why in signatures.check_all(repo).items():
        if label not in broken:
            report.inconsistent.setdefault(label, why)
    report.leftovers = sum(1 for _ in _leftovers(repo))
    return report


def _elsewhere(repo: Repository, missing: Iterable[str]) -> tuple[set[str], dict[str, str]]:
    """Of the objects missing here, those the shared cache holds, and those the lazy
    remote's packs hold (oid -> remote): a lazy clone reads or fetches them when needed."""
    wanted = set(missing)
    if not wanted:
        return set(), {}
    from . import lazy  # only when something is missing

    cache = lazy.shared_cache(repo)
    cached = {oid for oid in wanted if cache.exists(oid)}
    return cached, lazy.fetchable(repo, wanted - cached)


def _split_missing(repo: Repository, report: FsckReport) -> None:
    """Move what is not an error out of ``missing``: objects in the shared cache, and those
    the lazy remote can give (``fetchable``)."""
    cached, away = _elsewhere(repo, report.missing)
    for oid in cached:
        del report.missing[oid]
    report.cached = len(cached)
    for oid, remote in away.items():
        report.fetchable[oid] = report.missing.pop(oid)
        report.fetchable_from = remote


def _quiet_refs(repo: Repository) -> list[FamilyRefs]:
    try:
        return list(repo.refs)
    except ModelregError:
        return []  # _walk reported it


def _leftovers(repo: Repository) -> list[Path]:
    found = list(repo.objects.leftovers())
    for folder in (repo.dir / "refs", repo.dir, repo.dir / "cache" / "checkouts"):
        if folder.is_dir():
            found.extend(
                Path(e.path) for e in os.scandir(folder) if e.name.startswith(_fs.TMP_PREFIX)
            )
    index = repo.dir / "index"
    if index.is_dir():  # index writers hold no gc lock: only a dead writer's files go
        found.extend(Path(e.path) for e in os.scandir(index) if indexfile.is_orphan(e.name))
    return found


@dataclass
class GcPlan:
    objects: list[str] = field(default_factory=list)  # unreachable: dropped
    leftovers: list[Path] = field(default_factory=list)
    bytes: int = 0  # what dropping those frees (compression comes on top)
    packs: list[str] = field(default_factory=list)  # packs merged into the new one
    loose: int = 0  # loose objects moved into the new pack
    compress: int = 0  # raw objects of a known item size offered to the codec
    kept: int = 0  # objects in the new pack
    new_pack: str | None = None
    users: dict[str, set[str]] = field(default_factory=dict, repr=False)
    widths: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def repack(self) -> bool:
        return bool(self.packs or self.loose or self.objects)


def plan_gc(repo: Repository) -> GcPlan:
    users, problems = reachable(repo)
    problems += repo.objects.index_problems()
    if problems:
        first = problems[0]
        raise ModelregError(
            f"gc stopped: {first}", hint="run 'modelreg fsck' and repair the registry first"
        )
    plan = GcPlan()
    firsts: dict[str, Copy] = {}
    for copy in repo.objects.copies():
        firsts.setdefault(copy.oid, copy)
        if copy.kind == "loose":
            plan.loose += 1
    for oid, copy in firsts.items():
        if oid not in users:
            plan.objects.append(oid)
            plan.bytes += copy.stored
    plan.objects.sort()
    if plan.loose or plan.objects or not repo.objects.is_compact():
        plan.packs = repo.objects.pack_names()
    plan.kept = len(users)
    plan.users = users
    if plan.repack:
        plan.widths = _widths(repo)
        plan.compress = sum(
            1 for oid, w in plan.widths.items() if w and firsts[oid].encoding == codec.RAW
        )
    plan.leftovers = _leftovers(repo)
    for p in plan.leftovers:
        with contextlib.suppress(OSError):
            plan.bytes += p.stat().st_size
    return plan


def _widths(repo: Repository) -> dict[str, int]:
    """Chunk id -> item size, from each reachable file manifest's spans and tensor table."""
    widths: dict[str, int] = {}
    manifests: set[str] = set()
    for refs in repo.refs:
        for oid in refs.versions.values():
            manifests.update(repo.version_record(oid).manifest_ids(repo.objects))
    for m in sorted(manifests):
        manifest = repo.objects.get_json(m)
        spans = [(str(n), int(s), int(ln)) for n, s, ln in manifest.get("spans", [])]
        if not spans:
            continue
        stored = modelinfo.StoredFile(repo.objects, manifest)
        by_span = hints.span_itemsizes(manifest.get("format"), spans, stored.read)
        pieces = [(pos, n) for pos, n, part in stored.offsets if "o" in part]
        ids = [part["o"] for _pos, _n, part in stored.offsets if "o" in part]
        for oid, width in zip(ids, hints.piece_itemsizes(spans, by_span, pieces), strict=True):
            if width:
                widths.setdefault(oid, width)
    return widths


def gc(repo: Repository, dry_run: bool = False) -> GcPlan:
    """Drop what no ref reaches, pack everything else into one new pack (compressing the
    chunks whose dtype the format states), then retire the old packs and loose objects.

    Writers are held off by the gc lock meanwhile, so an object a running ``register`` has
    written but not yet published is never taken. The new pack is durable and visible
    before anything old is removed: a gc killed at any moment leaves every object readable
    (at worst twice, which is harmless)."""
    with repo.gc_lock(shared=False):
        plan = plan_gc(repo)
        if dry_run:
            return plan
        for p in plan.leftovers:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        if plan.repack:
            # What holds nothing reachable goes first: repacking needs room for everything
            # kept, and on a full disk this is what makes that room.
            dead = repo.objects.prune(plan.users, among=plan.packs)
            plan.packs = [name for name in plan.packs if name not in dead]
            plan.new_pack = repo.objects.repack(
                ((oid, plan.widths.get(oid)) for oid in plan.users), merge=plan.packs
            )
        for name in repo.refs.families():  # fold each refs journal into its snapshot
            repo.refs.compact(name)
    return plan


def auto_gc(repo: Repository) -> repack.AutoReport | None:
    """``gc --auto``: repack only when the store passed its limits (see repack.py)."""
    return repack.auto(repo.objects, repo.gc_lock(shared=False), repo.gc_limits())


@dataclass
class Stats:
    families: int = 0
    versions: int = 0
    logical_bytes: int = 0  # what the versions would take as plain copies
    stored_bytes: int = 0  # bytes every object takes as stored (compressed or not)
    disk_bytes: int = 0  # blocks used by .modelreg/, as du counts them
    objects: int = 0
    freeable: dict[str, int] = field(default_factory=dict)  # 'name@vN' -> bytes rm+gc frees
    checkout_dir: str = ""
    checkout_bytes: int = 0  # blocks used by the checkout tree, each inode once
    checkout_files: int = 0
    checked_out: int = 0  # versions with a folder in the checkout tree
    unused_objects: int = 0  # objects no version reaches: what gc drops
    unused_bytes: int = 0  # what they take as stored

    @property
    def dedup_ratio(self) -> float:
        return self.logical_bytes / self.stored_bytes if self.stored_bytes else 1.0

    @property
    def total_disk_bytes(self) -> int:
        return self.disk_bytes + self.checkout_bytes


def disk_usage(folder: Path) -> int:
    return _usage(folder, set())[0]


def _usage(folder: Path, seen: set[tuple[int, int]]) -> tuple[int, int]:
    """(bytes of blocks, regular files) under ``folder``, as du counts them: links are not
    followed and an inode already in ``seen`` (a hard link) is counted once."""
    total = files_found = 0
    for dirpath, _dirs, names in os.walk(folder):
        for path in (dirpath, *(os.path.join(dirpath, name) for name in names)):
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
            files_found += stat.S_ISREG(st.st_mode)
    return total, files_found


def stats(repo: Repository) -> Stats:
    """What the registry takes, and apart from it what its checkouts take: the checkout tree
    holds plain copies, so it can double the disk a registry uses."""
    s = Stats(checkout_dir=str(repo.checkout_root))
    for refs in repo.refs:
        if refs.versions:
            s.families += 1
        for version, oid in refs.versions.items():
            s.versions += 1
            s.logical_bytes += repo.record(oid)["size"]
            s.freeable[f"{refs.name}@{version}"] = 0
            with contextlib.suppress(OSError):
                s.checked_out += stat.S_ISDIR(
                    os.lstat(repo.checkout_root / refs.name / version).st_mode
                )
    users, _problems = reachable(repo)
    counted: set[str] = set()
    for copy in repo.objects.copies():
        if copy.oid in counted:
            continue  # a second copy (an interrupted gc) is not counted twice
        counted.add(copy.oid)
        s.objects += 1
        size = copy.stored
        s.stored_bytes += size
        owners = users.get(copy.oid, ())
        if not owners:
            s.unused_objects += 1
            s.unused_bytes += size
        elif len(owners) == 1:
            (owner,) = owners
            s.freeable[owner] += size
    seen: set[tuple[int, int]] = set()
    s.disk_bytes, _ = _usage(repo.dir, seen)
    if repo.checkout_root.is_dir():
        s.checkout_bytes, s.checkout_files = _usage(repo.checkout_root, seen)
    return s


class _CountingStore(MemoryObjectStore):
    """Takes objects like a store but keeps nothing: it only counts what would be new."""

    def __init__(self, existing: Store | None) -> None:
        super().__init__()
        self.existing = existing
        self.new: dict[str, int] = {}

    def exists(self, oid: str) -> bool:
        return oid in self.new or (self.existing is not None and self.existing.exists(oid))

    def add(
        self,
        data: bytes | memoryview,
        oid: str | None = None,
        *,
        itemsize: int | None = None,
        loose: bool = False,
    ) -> str:
        oid = oid or oid_of(data)
        if not self.exists(oid):
            self.new[oid] = len(data)
        return oid


@dataclass
class ScanEstimate:
    files: int = 0
    logical_bytes: int = 0  # the files as they are
    file_dedup_bytes: int = 0  # whole-file dedup (what DVC or git-lfs would store)
    modelreg_bytes: int = 0  # what modelreg would add to the store


def scan(
    path: Path,
    params: ChunkParams,
    existing: Store | None = None,
    listing: list[tuple[str, Path]] | None = None,
) -> ScanEstimate:
    """What registering every file under ``path`` (or the files ``listing`` names, as
    ``files.store_tree`` takes them) would cost, without writing anything."""
    if not path.exists():
        raise NotFoundError(f"no such file or folder: {path}", hint="check the path")
    if listing is not None:
        return _estimate([p for _rel, p in sorted(listing)], params, existing)
    return scan_many([path], params, existing)


def scan_many(
    paths: list[Path], params: ChunkParams, existing: Store | None = None
) -> ScanEstimate:
    """``scan`` of several files and folders together: what they share is counted once."""
    return _estimate([t for path in paths for t in files_under(path)], params, existing)


def _estimate(targets: list[Path], params: ChunkParams, existing: Store | None) -> ScanEstimate:
    counting = _CountingStore(existing)
    est = ScanEstimate()
    whole: set[str] = set()
    for target in targets:
        _oid, manifest = files.store_file(counting, target, params, plan=formats.plan)
        est.files += 1
        est.logical_bytes += manifest["size"]
        if manifest["hash"] not in whole:
            whole.add(manifest["hash"])
            est.file_dedup_bytes += manifest["size"]
    est.modelreg_bytes = sum(counting.new.values())
    return est


def files_under(path: Path) -> list[Path]:
    return [p for _rel, p in files.walk_dir(path)] if path.is_dir() else [path]


def content_hash(path: Path, params: ChunkParams) -> str:
    """The ``content_hash`` a version of ``path`` would record, computed without writing."""
    counting = _CountingStore(None)
    if path.is_dir():
        return str(files.store_tree(counting, path, params, plan=formats.plan)[1]["hash"])
    return str(files.store_file(counting, path, params, plan=formats.plan)[1]["hash"])
