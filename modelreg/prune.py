"""The checkout tree as a cache: list what is materialized, prune it, keep it under a budget.

A version folder ``models/<name>/<vN>/`` is derived data: the next ``get`` rebuilds it from the
store. It is *last used* when a checkout last confirmed or wrote it (its stat cache file is
saved then), else when the folder last changed. Pruning never removes a folder whose files a
user changed or added (they do not match the stat cache) unless forced: that would lose work,
which is the one thing a cache may never do.

The budget, ``checkout: {budget: 50G}`` in ``config.yaml`` (or ``MODELREG_CHECKOUT_BUDGET``),
is enforced after each checkout by removing least-recently-used versions, never the one just
checked out.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import checkout, names
from .errors import ModelregError, NotFoundError
from .repo import Repository

BUDGET_ENV = "MODELREG_CHECKOUT_BUDGET"


@dataclass
class Materialized:
    name: str
    version: str
    path: Path
    bytes: int
    last_used: float  # seconds since the epoch
    modified: list[str] = field(default_factory=list)  # files that differ from what was written
    registered: bool = True  # False: a folder of a version the registry no longer holds

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


def _real_dirs(folder: Path) -> list[str]:
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))


def _inspect(repo: Repository, folder: Path) -> tuple[int, list[str]]:
    """(bytes, files that are not as the checkout left them) of one version folder."""
    cache = checkout.StatCache(repo, folder)
    total = 0
    modified = []
    for dirpath, _dirs, filenames in os.walk(folder):
        for filename in filenames:
            path = Path(dirpath, filename)
            st = path.lstat()
            total += st.st_blocks * 512
            rel = path.relative_to(folder).as_posix()
            cached = cache.entries.get(rel)
            if not (
                stat.S_ISREG(st.st_mode)
                and isinstance(cached, list)
                and cached[:4] == checkout.StatCache.key(st)
            ):
                modified.append(rel)
    return total, sorted(modified)


def materialized(repo: Repository, root: Path | None = None) -> list[Materialized]:
    """Every version folder in the checkout tree, least recently used first."""
    root = root or repo.checkout_root
    found = []
    for family in _real_dirs(root):
        try:
            names.check_family(family)
            refs = repo.refs.read(family)
        except ModelregError:
            continue  # not a folder modelreg made
        for version in _real_dirs(root / family):
            if not names.VERSION_RE.fullmatch(version):
                continue
            folder = root / family / version
            size, modified = _inspect(repo, folder)
            cache_file = checkout.StatCache(repo, folder).path
            try:
                used = cache_file.stat().st_mtime
            except FileNotFoundError:
                used = folder.lstat().st_mtime
            held = refs is not None and version in refs.versions
            found.append(Materialized(family, version, folder, size, used, modified, held))
    return sorted(found, key=lambda m: (m.last_used, m.label))


@dataclass
class PrunePlan:
    removed: list[Materialized] = field(default_factory=list)
    kept_modified: list[Materialized] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(m.bytes for m in self.removed)


def prune(
    repo: Repository,
    older_than_days: float | None = None,
    dry_run: bool = False,
    force: bool = False,
    root: Path | None = None,
) -> PrunePlan:
    """Remove materialized versions (all, or those unused for ``older_than_days``)."""
    if older_than_days is not None and older_than_days < 0:
        raise ModelregError(
            f"--older-than {older_than_days:g} is negative", hint="give a number of days, e.g. 7"
        )
    cutoff = time.time() - older_than_days * 86400 if older_than_days is not None else None
    plan = PrunePlan()
    for m in materialized(repo, root):
        if not m.registered:
            continue  # not a checkout of a version this registry holds: not ours to remove
        if cutoff is not None and m.last_used > cutoff:
            continue
        if m.modified and not force:
            plan.kept_modified.append(m)
            continue
        plan.removed.append(m)
    if not dry_run:
        for m in plan.removed:
            checkout.discard(repo, m.name, m.version, root)
    return plan


def budget(repo: Repository) -> tuple[int, str] | None:
    """The configured size of the checkout tree, and where it was set; None: no budget."""
    return checkout.size_setting(repo, BUDGET_ENV, "budget")


def enforce_budget(repo: Repository, keep: Path, root: Path | None = None) -> list[str]:
    """After a checkout: evict least-recently-used, unmodified versions until the checkout
    tree fits the budget. ``keep`` (the version just checked out) is never evicted. Returns
    the labels evicted."""
    found = budget(repo)
    if found is None:
        return []
    limit, _where = found
    present = materialized(repo, root)
    total = sum(m.bytes for m in present)
    evicted = []
    for m in present:
        if total <= limit:
            break
        if not m.registered or m.modified or m.path == keep or keep.is_relative_to(m.path):
            continue
        try:
            checkout.discard(repo, m.name, m.version, root)
        except (OSError, NotFoundError):
            continue
        total -= m.bytes
        evicted.append(m.label)
    return evicted
