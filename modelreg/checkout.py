"""Materializing versions into the checkout tree ``models/<name>/<vN>/``.

A checkout first plans (which files are missing or differ, whether they fit), then writes.
Each file is rebuilt from verified chunks into a temporary name beside its destination,
hashed while it is written, and renamed into place only when the whole file matched the
manifest's hash, so a corrupt or forged object never lands in the tree.

The checkout root itself may be a symlink (a user may put ``models/`` on another disk on
purpose); below it nothing is followed. Every folder is opened relative to its parent with
``O_NOFOLLOW``, so a family folder, version folder or sub-folder that was replaced by a link
(or a file) is removed and made again as a real folder, and nothing is written or deleted
through it.

A stat cache (size, mtime, inode, ctime) of what was last written lets an unchanged checkout
be confirmed without reading it. ctime cannot be set back by a user, so an in-place edit that
restores size and mtime is still seen; ``verify`` rehashes every file regardless.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from . import _fs, _nofollow, files, lazy
from .errors import CorruptObjectError, ModelregError, NotFoundError
from .hashing import new_hasher, oid_of
from .model import FileManifest, VersionRecord, load
from .repo import Record, Repository

MAX_BYTES_ENV = "MODELREG_MAX_CHECKOUT_BYTES"
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


@dataclass
class CheckoutResult:
    path: Path
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    checked: int = 0  # files whose bytes were hashed (all of them with verify)


class FileEntry(NamedTuple):
    manifest: str
    size: int
    hash: str


def destination(repo: Repository, rec: Record, checkout_root: Path | None = None) -> Path:
    """Where a version lives once materialized: the file itself, or the version folder."""
    typed = VersionRecord.of_view(rec)
    folder = (checkout_root or repo.checkout_root) / typed.name / typed.version
    return folder if typed.is_dir else _fs.safe_join(folder, typed.source)


def expected_files(repo: Repository, rec: Record) -> dict[str, FileEntry]:
    """relative path -> what that file of the version (a record or its view) must be."""
    return _expected(repo, VersionRecord.of_view(rec))


def _expected(repo: Repository, rec: VersionRecord) -> dict[str, FileEntry]:
    """relative path -> what that file of the version must be."""
    if rec.is_dir:
        entries = rec.tree(repo.objects).entries
        return {rel: FileEntry(e.manifest, e.size, e.hash) for rel, e in entries.items()}
    _fs.check_relpath(rec.source)
    manifest = load(repo.objects, rec.root, FileManifest.parse)
    if rec.content_hash != manifest.hash:
        raise CorruptObjectError("its record's content_hash is not its manifest's hash")
    return {rec.source: FileEntry(rec.root, manifest.size, manifest.hash)}


# --- limits ---------------------------------------------------------------------------------


def parse_size(text: str) -> int | None:
    """'2000', '500M', '20G', '1.5GiB' -> bytes (binary units); None when not a size."""
    raw = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = raw[-1:] if raw[-1:] in _UNITS else ""
    number = raw[: len(raw) - len(unit)].strip()
    try:
        value = float(number) if "." in number else int(number)
    except ValueError:
        return None
    if value < 0 or value != value or value == float("inf"):
        return None
    return int(value * _UNITS[unit])


def size_setting(repo: Repository, env: str, key: str) -> tuple[int, str] | None:
    """A size set as ``checkout.<key>`` in config.yaml or by the variable ``env`` (which wins,
    so one command can be let through), and where it was set; None when it is not set."""
    raw: Any = os.environ.get(env)
    where = env
    if raw is None:
        section = repo.config.get("checkout")
        raw = section.get(key) if isinstance(section, dict) else None
        where = f"checkout.{key} in {repo.dir / 'config.yaml'}"
    if raw is None:
        return None
    limit = None
    if isinstance(raw, str):
        limit = parse_size(raw)
    elif isinstance(raw, int) and not isinstance(raw, bool):
        limit = raw
    if limit is None or limit < 0:
        raise ModelregError(
            f"{where} is {raw!r}, not a size", hint="give bytes or a size such as 500M or 20G"
        )
    return limit, where


def max_checkout_bytes(repo: Repository) -> tuple[int, str] | None:
    """The largest version a checkout may write, and where that limit was set; None: no limit."""
    return size_setting(repo, MAX_BYTES_ENV, "max_bytes")


def _size_text(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    value, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB", "TiB", "PiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"


def _check_limit(repo: Repository, label: str, expected: dict[str, FileEntry]) -> None:
    found = max_checkout_bytes(repo)
    total = sum(e.size for e in expected.values())
    if found is not None and total > found[0]:
        limit, where = found
        raise ModelregError(
            f"{label} is {_size_text(total)}, more than the checkout limit of "
            f"{_size_text(limit)} ({where})",
            hint=f"raise the limit (e.g. {MAX_BYTES_ENV}={total}) if you mean to check it out",
        )


def _check_space(label: str, root: Path, needed: int) -> None:
    """Refuse before writing when the files clearly cannot fit, rather than fail half-way."""
    if not needed:
        return
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if needed > free:
        raise ModelregError(
            f"{label} needs {_size_text(needed)} in {root} but only {_size_text(free)} is free",
            hint="free some space, or set checkout_dir in .modelreg/config.yaml to a bigger disk",
        )


# --- the stat cache -------------------------------------------------------------------------


class StatCache:
    def __init__(self, repo: Repository, folder: Path) -> None:
        self.path = repo.dir / "cache" / "checkouts" / f"{oid_of(str(folder).encode())}.json"
        try:
            self.entries: dict[str, list[Any]] = json.loads(self.path.read_bytes())
        except (FileNotFoundError, ValueError):
            self.entries = {}
        if not isinstance(self.entries, dict):
            self.entries = {}
        self._changed = False

    @staticmethod
    def key(st: os.stat_result) -> list[int]:
        return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]

    def fresh(self, rel: str, st: os.stat_result, want_hash: str) -> bool:
        cached = self.entries.get(rel)
        return isinstance(cached, list) and cached == [*self.key(st), want_hash]

    def remember(self, rel: str, st: os.stat_result, digest: str) -> None:
        entry = [*self.key(st), digest]
        if self.entries.get(rel) != entry:
            self.entries[rel] = entry
            self._changed = True

    def save(self) -> None:
        """Write the cache; when nothing changed, only its mtime, which is the version's
        last use (prune.py) — a rename per ``get`` cost 1-10 ms on a busy disk."""
        if not self._changed:
            try:
                os.utime(self.path)
                return
            except FileNotFoundError:
                pass
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _fs.atomic_write(self.path, json.dumps(self.entries).encode(), durable=False)
        self._changed = False


# --- materializing --------------------------------------------------------------------------


def materialize(
    repo: Repository,
    rec: Record,
    checkout_root: Path | None = None,
    progress: files.Progress | None = None,
    verify: bool = False,
) -> CheckoutResult:
    """Make ``models/<name>/<vN>/`` hold exactly the version's files, writing only those that
    are missing or differ. With ``verify``, every file is hashed instead of trusting the stat
    cache."""
    typed = VersionRecord.of_view(rec)
    label = typed.label
    root = checkout_root or repo.checkout_root
    folder = root / typed.name / typed.version
    base = (typed.name, typed.version)
    if root.is_symlink() and not root.exists():
        raise ModelregError(
            f"the checkout folder {root} is a link to a missing folder",
            hint="make the folder it points to, or remove the link",
        )
    if root.exists() and not root.is_dir():
        raise ModelregError(
            f"the checkout folder {root} is a file, not a folder",
            hint="move the file away; modelreg checks versions out into that folder",
        )
    lazy.ensure(repo, [rec])  # a lazy clone fetches the chunks it lacks, in one batch
    try:
        expected = _expected(repo, typed)
        _check_limit(repo, label, expected)
        result = CheckoutResult(destination(repo, rec, checkout_root))
        cache = StatCache(repo, folder)
        with _nofollow.Tree(root) as tree:
            stale = [
                rel
                for rel, entry in sorted(expected.items())
                if not _intact(tree, base, rel, entry, cache, verify, result)
            ]
            _check_space(label, root, sum(expected[rel].size for rel in stale))
            try:
                for rel in stale:
                    *dirs, name = rel.split("/")
                    fd = tree.folder((*base, *dirs), create=True)
                    assert fd is not None
                    _rebuild(repo, rel, expected[rel], fd, name, progress)
                    st = _nofollow.lstat_at(fd, name)
                    if st is not None:
                        cache.remember(rel, st, expected[rel].hash)
                    result.written.append(rel)
            except BaseException:
                _nofollow.prune_empty(tree, base)
                raise
            if typed.is_dir:
                vfd = tree.folder(base, create=True)  # an empty folder model is an empty folder
                assert vfd is not None
                result.removed = sorted(_nofollow.remove_strays(vfd, "", set(expected)))
        cache.save()
    except (CorruptObjectError, NotFoundError) as e:
        raise CorruptObjectError(
            f"cannot check out {label}: {e.args[0]}", hint=CorruptObjectError.hint
        ) from None
    except ModelregError:
        raise
    except OSError as e:
        raise ModelregError(
            f"cannot check out {label} into {folder}: {e.strerror or e}",
            hint="check the folder's permissions and free space",
        ) from None
    return result


def _intact(
    tree: _nofollow.Tree,
    base: tuple[str, ...],
    rel: str,
    entry: FileEntry,
    cache: StatCache,
    verify: bool,
    result: CheckoutResult,
) -> bool:
    """Whether the file at ``rel`` is a real file holding the version's bytes."""
    _fs.check_relpath(rel)
    *dirs, name = rel.split("/")
    fd = tree.folder((*base, *dirs), create=False)
    st = _nofollow.lstat_at(fd, name) if fd is not None else None
    if st is None or not stat.S_ISREG(st.st_mode) or st.st_size != entry.size:
        return False
    if not verify and cache.fresh(rel, st, entry.hash):
        return True
    assert fd is not None
    result.checked += 1
    if _nofollow.hash_at(fd, name) != entry.hash:
        return False
    cache.remember(rel, st, entry.hash)
    return True


def verified_pieces(repo: Repository, rel: str, entry: FileEntry) -> Iterator[bytes | memoryview]:
    """The file's bytes from verified chunks; raises CorruptObjectError, after the last piece
    at the latest, when they are not the file the entry names (so a caller writing to a
    temporary name never renames a wrong file into place)."""
    manifest = repo.objects.get_json(entry.manifest)
    if manifest.get("size") != entry.size or manifest.get("hash") != entry.hash:
        raise CorruptObjectError(f"{rel}: its tree entry does not match its manifest")
    whole = new_hasher()
    written = 0
    for piece in files.iter_file(repo.objects, manifest):
        written += len(piece)
        if written > entry.size:
            raise CorruptObjectError(f"{rel}: its chunks hold more than its recorded size")
        whole.update(piece)
        yield piece
    if whole.hexdigest() != entry.hash:
        raise CorruptObjectError(
            f"{rel} rebuilt from its chunks does not match its recorded hash {entry.hash}"
        )


def _rebuild(
    repo: Repository,
    rel: str,
    entry: FileEntry,
    folder: int,
    name: str,
    progress: files.Progress | None,
) -> None:
    """Write one file beside its destination, check its whole hash, then rename it in."""
    tmp = _fs.tmp_name(Path(name)).name
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        out = os.open(tmp, flags, 0o600, dir_fd=folder)
        try:
            _fs.preallocate(out, entry.size)
            for piece in verified_pieces(repo, rel, entry):
                _fs.write_all(out, piece)
                if progress:
                    progress(len(piece))
            os.fchmod(out, 0o444 & ~_fs.umask())
        finally:
            os.close(out)
        in_the_way = _nofollow.lstat_at(folder, name)
        if in_the_way is not None and stat.S_ISDIR(in_the_way.st_mode):
            shutil.rmtree(name, dir_fd=folder)
        os.replace(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=folder)


def discard(
    repo: Repository, name: str, version: str, checkout_root: Path | None = None
) -> Path | None:
    """Delete the checkout of a removed version (a derived, read-only copy); return it.

    A family folder that is a link is not gone through; a version folder that is a link is
    removed as a link."""
    root = checkout_root or repo.checkout_root
    folder = _fs.safe_join(root, f"{name}/{version}")
    StatCache(repo, folder).path.unlink(missing_ok=True)
    with _nofollow.Tree(root) as tree:
        family = tree.folder((name,), create=False)
        st = _nofollow.lstat_at(family, version) if family is not None else None
        if family is None or st is None:
            return None
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(version, dir_fd=family)
        else:
            os.unlink(version, dir_fd=family)
        top = tree.folder((), create=False)
        assert top is not None
        with contextlib.suppress(OSError):
            os.rmdir(name, dir_fd=top)  # the family's folder, once it holds no version
    return folder
