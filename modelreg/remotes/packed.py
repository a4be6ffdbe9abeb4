"""What a remote's packs hold, as far as their indexes tell: the view push and pull share.

Each index is fetched once and kept in a local cache folder (``.modelreg/remotes/<remote>/
packs/``); a cached copy is checked again on every load (its checksum is its name), so a
damaged cache is fetched anew. An index from a remote is untrusted input: it is read up to
``MAX_INDEX_BYTES``, refused unless its checksum, fan-out and size add up
(``packs.IndexTable``), and each entry is bounded by the pack size the index gives. An
index that is refused is skipped (its objects count as absent) and named in ``refused``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from .. import _fs
from ..errors import CorruptObjectError
from ..packs import Entry, IndexTable
from .base import MAX_INDEX_BYTES, Remote, pack_key


class RemotePacks:
    def __init__(self, remote: Remote, cache: Path | None) -> None:
        self.remote = remote
        self.cache = cache
        self.tables: dict[str, IndexTable] = {}
        self.refused: dict[str, str] = {}  # pack name -> why its index was refused
        self.loaded = False

    def load(self) -> None:
        """List the remote's packs (one request) and read the indexes not yet known."""
        for name in self.remote.list_packs():
            if name not in self.tables and name not in self.refused:
                table = self._table(name)
                if table is not None:
                    self.tables[name] = table
        self.loaded = True

    def load_cached(self) -> None:
        """Read only the indexes kept locally (no request): what the remote held when this
        registry last looked, for questions asked offline."""
        if self.cache is None or not self.cache.is_dir():
            return
        for path in sorted(self.cache.glob("pack-*.idx")):
            name = path.name[len("pack-") : -len(".idx")]
            if name not in self.tables:
                with contextlib.suppress(OSError, CorruptObjectError):
                    self.tables[name] = IndexTable(path.read_bytes(), name)

    def ensure(self) -> None:
        if not self.loaded:
            self.load()

    def _cached(self, name: str) -> Path | None:
        return None if self.cache is None else self.cache / f"pack-{name}.idx"

    def _table(self, name: str) -> IndexTable | None:
        cached = self._cached(name)
        if cached is not None:
            with contextlib.suppress(FileNotFoundError, CorruptObjectError):
                return IndexTable(cached.read_bytes(), name)
        key = pack_key(name, "idx")
        raw = self.remote.read_key(key, MAX_INDEX_BYTES)
        if raw is None:
            return None  # gone since the listing
        try:
            table = IndexTable(raw, name)
        except CorruptObjectError as e:
            self.refused[name] = f"{key} on remote {self.remote.url}: {e.args[0]}"
            return None
        self.remember(name, raw)
        return table

    def remember(self, name: str, raw: bytes) -> None:
        """Keep an index in the cache (one this process uploaded, or fetched)."""
        cached = self._cached(name)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            _fs.atomic_write(cached, raw, durable=False)
        if name not in self.tables:
            self.tables[name] = IndexTable(raw, name)

    def find(self, oid: str) -> tuple[str, Entry] | None:
        for name, table in self.tables.items():
            entry = table.find(oid)
            if entry is not None:
                return name, entry
        return None
