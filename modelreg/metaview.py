"""The ``metadata_file`` of a ``ModelRegistry``: a YAML view of the whole registry,
``{registry: root, models: {name: {vN: {...}}}}``, for people and scripts that read YAML.

Rewriting it whole after every register made registering quadratic (473 ms a register at
2,000 versions). Instead each version's block of YAML is rendered once and kept, with the
tags it was rendered with; a flush re-reads (from the version index) only the families whose
refs key changed since the last flush, whoever changed them, re-renders only the versions
whose tags changed, and writes the joined text with a temporary file and a rename, so a
reader never sees half a file.

When: at once after ``tag``, ``remove`` and ``pull``, and after a ``register`` when the last
write is older than ``interval`` seconds; otherwise within ``interval`` seconds (a timer),
at ``flush()``, and when the process exits. In a loop of registers the file is thus written
about once a second instead of once per version.
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from . import _fs
from .errors import NotFoundError
from .refs import RefsKey, yaml_dump
from .repo import Repository
from .views import version_view

Blocks = dict[str, tuple[tuple[str, ...], bytes]]  # vN -> (tags it was rendered with, YAML)


def _render(version: str, info: dict[str, Any]) -> bytes:
    body = {k: v for k, v in info.items() if k not in ("name", "version")}
    text = yaml_dump({version: body}, sort_keys=False, width=1 << 30)
    return "".join(f"    {line}\n" for line in text.splitlines()).encode()


def _family_line(name: str) -> bytes:
    return f"  {yaml_dump({name: 0}).rstrip().removesuffix(' 0')}\n".encode()


def _flush_at_exit(ref: weakref.ref[MetadataView]) -> None:
    view = ref()
    if view is not None:
        view.flush(only_if_dirty=True)


class MetadataView:
    def __init__(
        self, repo: Repository, path: Path, checkout_root: Path, interval: float = 1.0
    ) -> None:
        self.repo = repo
        self.path = path
        self.checkout_root = checkout_root
        self.interval = interval
        self._families: dict[str, tuple[RefsKey | None, Blocks]] = {}
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._last = 0.0
        self._dirty = False
        atexit.register(_flush_at_exit, weakref.ref(self))

    def changed(self, soon: bool = False) -> None:
        """This instance changed the registry; ``soon``: the write may wait ``interval``."""
        if not soon or time.monotonic() - self._last >= self.interval:
            self.flush()
            return
        with self._lock:
            self._dirty = True
            if self._timer is None:
                wait = max(self.interval - (time.monotonic() - self._last), 0.0)
                self._timer = threading.Timer(wait, self.flush, kwargs={"only_if_dirty": True})
                self._timer.daemon = True
                self._timer.start()

    def flush(self, only_if_dirty: bool = False) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if only_if_dirty and not self._dirty:
                return
            self._dirty = False
            present = self.repo.refs.families()
            for name in present:
                key = self.repo.refs.key(name)
                if name not in self._families or self._families[name][0] != key:
                    self._refresh(name, key)
            for gone in set(self._families) - set(present):
                del self._families[gone]
            parts = [yaml_dump({"registry": str(self.repo.root)}).encode()]
            shown = [name for name in present if self._families[name][1]]
            parts.append(b"models:\n" if shown else b"models: {}\n")
            for name in shown:
                parts.append(_family_line(name))
                parts.extend(block for _tags, block in self._families[name][1].values())
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _fs.atomic_write(self.path, b"".join(parts), durable=False)
            self._last = time.monotonic()

    def _refresh(self, name: str, key: RefsKey | None) -> None:
        """Re-read one family (key first: content read later is at least as new, and a
        change in between is seen at the next flush)."""
        old = self._families.get(name, (None, {}))[1]
        blocks: Blocks = {}
        try:
            records = list(self.repo.versions(name))
        except NotFoundError:  # removed since it was listed
            records = []
        for rec in records:
            tags = tuple(rec["tags"])
            cached = old.get(rec["version"])
            if cached is not None and cached[0] == tags:
                blocks[rec["version"]] = cached
            else:
                info = version_view(self.repo, rec, self.checkout_root)
                blocks[rec["version"]] = (tags, _render(rec["version"], info))
        self._families[name] = (key, blocks)
