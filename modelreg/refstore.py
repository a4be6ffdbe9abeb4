"""The refs of every family of one registry: reading a snapshot and its journal, and the one
way they change (``RefStore.update``, under the family's lock).

::

    .modelreg/refs/<name>.yaml       the snapshot (refs.py)
    .modelreg/refs/<name>.journal    changes since the snapshot, one line each (journal.py)

A change is appended to the journal as one line, fsynced before the lock is released. The
snapshot is rewritten whole ("compaction") only when it has to be: a new family, a refs file
of an older modelreg (the first write upgrades it), a change a journal line cannot say, a
journal grown past the snapshot's size (so a reader never replays more than it parses), and
at ``gc``. Compaction writes the new snapshot (durably, by rename) before a fresh journal:
a reader that meets the old journal with the new snapshot sees another snapshot's token in
it, and ignores it.

A register, the hot path, need not read the family at all: ``view`` gives ``update`` a cheap
stand-in for the refs (the version index's, index.py) when the index is current, so a
register costs the same in a family of 100,000 versions as in one of ten.
"""

from __future__ import annotations

import difflib
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar, cast

from . import _fs, journal, names
from .errors import NotFoundError
from .refs import (
    HEAD_BYTES,
    FamilyRefs,
    RefsKey,
    StaleView,
    journal_token,
    key_of,
    read_keyed,
    stamped,
)

T = TypeVar("T")
COMPACT_AT = 256 << 10  # journal bytes always allowed before compaction

# Called under the family lock after its refs were published: (name, key before, refs now,
# key now, the ops of the change or None when unknown); ``None`` keys mean "no refs".
OnPublish = Callable[[str, "RefsKey | None", Any, "RefsKey | None", "list[Any] | None"], None]
# (name, key) -> a context giving a stand-in for the family's refs, or None.
View = Callable[[str, RefsKey], AbstractContextManager[Any]]


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


class RefStore:
    def __init__(self, root: Path, locks: Path, lock_timeout: float) -> None:
        self.root = root
        self.locks = locks
        self.lock_timeout = lock_timeout
        self.on_publish: OnPublish | None = None
        self.view: View | None = None
        self.before_journal: Callable[[], None] | None = None  # the format upgrade

    def path(self, name: str) -> Path:
        return self.root / f"{names.check_family(name)}.yaml"

    def journal_path(self, name: str) -> Path:
        return self.root / f"{names.check_family(name)}.journal"

    # --- reading ----------------------------------------------------------------------
    def read(self, name: str) -> FamilyRefs | None:
        return self.read_keyed(name)[0]

    def read_keyed(self, name: str) -> tuple[FamilyRefs | None, RefsKey | None]:
        """The snapshot with its journal replayed, and the key of both as read."""
        p, jp = self.path(name), self.journal_path(name)
        for _attempt in range(20):
            got = read_keyed(p)
            if got is None:
                return None, None
            text, key = got
            refs = FamilyRefs.from_yaml(name, text, p)
            try:
                with open(jp, "rb") as f:
                    data, st = f.read(), os.fstat(f.fileno())
            except FileNotFoundError:
                return refs, key
            key = key.with_journal(st)
            if refs.journal is None:
                return refs, key
            changes = journal.parse(data, refs.journal, jp)
            if changes is None:
                if key_of(p) == key._replace(journal_size=0, journal_ns=0, journal_ino=0):
                    return refs, key  # a journal the snapshot already holds
                continue  # compacted meanwhile: read both again
            for ops in changes:
                journal.apply(refs, ops, jp)
            return refs, key
        return refs, key

    def key(self, name: str) -> RefsKey | None:
        key = key_of(self.path(name))
        return key.with_journal(_stat(self.journal_path(name))) if key else None

    def get(self, name: str) -> FamilyRefs:
        refs = self.read(name)
        if refs is None:
            close = difflib.get_close_matches(name, self.families(), n=1)
            raise NotFoundError(
                f"no model named {name!r} in this registry",
                hint=f"did you mean {close[0]}?"
                if close
                else "see 'modelreg families' for the names it holds",
            )
        return refs

    def families(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            e.name[: -len(".yaml")]
            for e in os.scandir(self.root)
            if e.name.endswith(".yaml") and not e.name.startswith(_fs.TMP_PREFIX)
        )

    def __iter__(self) -> Iterator[FamilyRefs]:
        for name in self.families():
            refs = self.read(name)
            if refs is not None:
                yield refs

    # --- writing ----------------------------------------------------------------------
    def lock(self, name: str) -> _fs.FileLock:
        return _fs.FileLock(
            self.locks / f"{names.check_family(name)}.lock",
            f"the write lock of model {name!r}",
            self.lock_timeout,
        )

    def update(self, name: str, change: Callable[[Any], T], cheap: bool = False) -> T:
        """Run ``change`` on the family's refs under its lock and publish what it changed.

        ``change`` may raise to abort; nothing is written then. When it empties the family,
        its refs are removed. ``cheap``: ``change`` only reads single versions, tags and
        the latest, and only adds versions and tags (as ``register`` does), so it may be
        given the index's stand-in instead of the whole refs.
        """
        with self.lock(name):
            if cheap and self.view is not None:
                done, result = self._update_cheap(name, change)
                if done:
                    return cast(T, result)
            return self._update_full(name, change)

    def compact(self, name: str) -> None:
        """Fold the journal into a fresh snapshot (``gc`` does it for every family)."""
        with self.lock(name):
            refs, key = self.read_keyed(name)
            if refs is None or key is None:
                return
            if refs.journal is None or key.journal_size > len(journal.header(refs.journal)):
                self._publish(name, refs, key, [])

    def _limit(self, key: RefsKey) -> int:
        return max(COMPACT_AT, key.size)

    def _update_cheap(self, name: str, change: Callable[[Any], T]) -> tuple[bool, T | None]:
        key = self.key(name)
        if key is None or key.journal_size > self._limit(key):
            return False, None
        with open(self.path(name), "rb") as f:
            token = journal_token(f.read(HEAD_BYTES))
        if token is None:
            return False, None
        assert self.view is not None
        with self.view(name, key) as view:
            if view is None:
                return False, None
            before = journal.Before.of(view, versions=False)
            try:
                result = change(view)
            except StaleView:
                return False, None
            ops = journal.diff(before, view, view.version_ops())
            if ops is None:
                return False, None
            if ops:
                self._append(name, token, ops)
                if self.on_publish is not None:
                    self.on_publish(name, key, view, self.key(name), ops)
        return True, result

    def _update_full(self, name: str, change: Callable[[Any], T]) -> T:
        found, key = self.read_keyed(name)
        refs = found or FamilyRefs(name=name)
        before = journal.Before.of(refs, versions=True)
        result = change(refs)
        ops = journal.diff(before, refs, [])
        if ops == [] and found is not None:
            return result
        if not refs.versions and not refs.removed:
            self.path(name).unlink(missing_ok=True)
            journal.remove(self.journal_path(name))
            _fs.fsync_dir(self.root)
            new_key = None
        elif (
            ops is None
            or found is None
            or refs.journal is None
            or key is None
            or key.journal_size > self._limit(key)
        ):
            new_key = self._publish(name, refs, key, ops)
            return result
        else:
            self._append(name, refs.journal, ops)
            new_key = self.key(name)
        if self.on_publish is not None:
            self.on_publish(name, key, refs, new_key, ops)
        return result

    def _publish(
        self, name: str, refs: FamilyRefs, key: RefsKey | None, ops: list[Any] | None
    ) -> RefsKey | None:
        """Write ``refs`` as a new snapshot with a fresh, empty journal."""
        token = secrets.token_hex(8)
        _fs.atomic_write(self.path(name), stamped(refs.to_yaml(), token))
        journal.reset(self.journal_path(name), token)
        refs.journal = token
        new_key = self.key(name)
        if self.on_publish is not None:
            self.on_publish(name, key, refs, new_key, ops)
        return new_key

    def _append(self, name: str, token: str, ops: list[Any]) -> None:
        if self.before_journal is not None:
            self.before_journal()
        journal.append(self.journal_path(name), token, journal.encode(ops))
