"""What the pages show, gathered from the library: the version index for listings, the
stored manifests and headers for files and tensors (never the weights), and the same
functions ``stats``, ``gc --dry-run``, ``diff`` and ``checkout --prune`` use."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from typing import Any

from .. import diff, maintenance, model, names, prune
from ..errors import ModelregError
from ..model import Chunk, FileManifest, VersionRecord
from ..repo import Record, Repository

TENSORS_SHOWN = 2000  # a version page lists at most this many tensors


@dataclass
class Family:
    name: str
    rows: list[Record]

    @property
    def latest(self) -> Record:
        return self.rows[-1]

    @property
    def tags(self) -> dict[str, str]:
        """tag -> version, 'latest' left out."""
        return {t: r["version"] for r in self.rows for t in r.get("tags") or [] if t != "latest"}

    @property
    def logical_bytes(self) -> int:
        return sum(int(r.get("size") or 0) for r in self.rows)

    @property
    def last_registered(self) -> str | None:
        return max((r.get("registered_at") or "" for r in self.rows), default=None) or None

    def metrics(self) -> list[str]:
        """Metric names in the order they first appear."""
        seen: dict[str, None] = {}
        for r in self.rows:
            for key in r.get("metrics") or {}:
                seen.setdefault(key, None)
        return list(seen)


def families(repo: Repository, wanted: list[str] | None = None) -> list[Family]:
    found = []
    for name in wanted if wanted is not None else repo.families():
        rows = list(repo.versions(name))
        if rows:
            found.append(Family(name, rows))
    return found


def label(rec: Record) -> str:
    return f"{rec['name']}@{rec['version']}"


def children(everything: list[Family]) -> dict[str, list[str]]:
    """'name@vN' -> the versions whose parent it is."""
    out: dict[str, list[str]] = {}
    for fam in everything:
        for r in fam.rows:
            if r.get("parent"):
                out.setdefault(str(r["parent"]), []).append(label(r))
    return out


def files(repo: Repository, rec: Record) -> list[tuple[str, int, str]]:
    """(path, size, whole-file hash) of each file of the version."""
    version = VersionRecord.of_view(rec)
    if not version.is_dir:
        return [(version.source, version.size, version.content_hash)]
    entries = version.tree(repo.objects).entries
    return [(rel, e.size, e.hash) for rel, e in sorted(entries.items())]


@dataclass
class Tensors:
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # name, dtype, shape
    total: int = 0
    problem: str | None = None


def tensors(repo: Repository, rec: Record, limit: int = TENSORS_SHOWN) -> Tensors:
    """Names, dtypes and shapes, read from the stored headers as ``diff`` reads them."""
    out = Tensors()
    try:
        table = diff.tensors_of(repo, rec)
    except ModelregError as e:
        out.problem = str(e)
        return out
    out.total = len(table)
    for name in sorted(table)[:limit]:
        t = table[name]
        out.rows.append((name, str(t.dtype), "[" + ", ".join(str(d) for d in t.shape) + "]"))
    return out


def chunk_sizes(repo: Repository, rec: Record) -> dict[str, int]:
    """Chunk id -> raw bytes, for every chunk the version's files are made of (and manifest id
    -> bytes held inline, for the small pieces a manifest carries itself)."""
    sizes: dict[str, int] = {}
    for oid in VersionRecord.of_view(rec).manifest_ids(repo.objects):
        manifest = model.load(repo.objects, oid, FileManifest.parse)
        inline = 0
        for part in manifest.parts:
            if isinstance(part, Chunk):
                sizes[part.oid] = part.length
            else:
                inline += model.inline_size(part.b64)
        if inline:
            sizes[oid] = inline  # a small file's bytes live in its manifest: they go with it
    return sizes


@dataclass
class Added:
    against: list[str]  # the versions it was compared with
    new_bytes: int
    new_chunks: int
    chunks: int
    stored_new: int  # what those new chunks take in the store (compressed or not)


def added(repo: Repository, rec: Record, rows: list[Record]) -> Added:
    """What the version brought to the store beyond its parent and the version before it in
    its family: the chunks neither holds."""
    mine = chunk_sizes(repo, rec)
    against: list[str] = []
    known: set[str] = set()
    number = names.version_number(rec["version"])
    before = [r for r in rows if names.version_number(r["version"]) < number]
    specs = [str(rec["parent"])] if rec.get("parent") else []
    if before and label(before[-1]) not in specs:
        specs.append(label(before[-1]))
    for spec in specs:
        with contextlib.suppress(ModelregError):
            known |= chunk_sizes(repo, repo.lookup(spec)).keys()
            against.append(spec)
    new = [oid for oid in mine if oid not in known]
    stored = 0
    for oid in new:
        with contextlib.suppress(ModelregError):
            stored += repo.objects.stored_size(oid)
    return Added(against, sum(mine[o] for o in new), len(new), len(mine), stored)


@dataclass
class Compared:
    result: dict[str, Any]
    shared_bytes: int
    a_bytes: int
    b_bytes: int


def compare(repo: Repository, spec_a: str, spec_b: str) -> Compared:
    result = diff.diff(repo, spec_a, spec_b)
    a = chunk_sizes(repo, repo.lookup(spec_a))
    b = chunk_sizes(repo, repo.lookup(spec_b))
    shared = sum(n for oid, n in b.items() if oid in a)
    return Compared(result, shared, sum(a.values()), sum(b.values()))


@dataclass
class Storage:
    stats: maintenance.Stats
    checkouts: list[prune.Materialized]


def storage(repo: Repository) -> Storage:
    """``stats`` (one walk of every version: what each holds alone, and what no version
    holds, which gc drops) and the checkouts. Not ``plan_gc``, which would walk them all
    again and plan a repack the page does not show."""
    return Storage(maintenance.stats(repo), prune.materialized(repo))


OID_RE = re.compile(r"[0-9a-f]{32}")


def card_text(repo: Repository, rec: Record) -> str | None:
    """The version's model card: the text of the object ``card`` names (how ``register
    --card`` stores it), or ``card`` itself when a record carries the text."""
    value = rec.get("card")
    if not isinstance(value, str) or not value:
        return None
    if not OID_RE.fullmatch(value):
        return value
    return repo.objects.get(value).decode("utf-8", errors="replace")  # at most 1 MiB


def tag_history(repo: Repository, name: str) -> list[dict[str, Any]] | None:
    """The family's tag moves when this modelreg keeps them (another change adds that);
    None when it does not."""
    history = getattr(repo, "tag_history", None)
    if not callable(history):
        return None
    try:
        entries = history(name)
    except (ModelregError, TypeError):
        return None
    return [dict(e) if isinstance(e, dict) else dict(vars(e)) for e in entries or []]
