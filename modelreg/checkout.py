"""Materializing versions into the checkout tree ``models/<name>/<vN>/``.

Files are rebuilt from verified chunks into a temporary name beside their destination and
renamed into place only when the whole file matched its recorded hash, so a corrupt object
never lands in the tree. A stat cache (size, mtime, inode) of what was last written lets an
unchanged checkout be confirmed without reading it; a file whose stat changed is hashed
again and rebuilt only when its bytes differ.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _fs, files
from .errors import CorruptObjectError, ModelregError, NotFoundError
from .hashing import hash_file, oid_of
from .repo import Record, Repository


@dataclass
class CheckoutResult:
    path: Path
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def destination(repo: Repository, rec: Record, checkout_root: Path | None = None) -> Path:
    """Where a version lives once materialized: the file itself, or the version folder."""
    folder = (checkout_root or repo.checkout_root) / rec["name"] / rec["version"]
    return _fs.safe_join(folder, rec["source"]) if rec["kind"] == "file" else folder


def _expected(repo: Repository, rec: Record) -> dict[str, dict[str, Any]]:
    """relative path -> {manifest, size, hash} for every file of the version."""
    if rec["kind"] == "file":
        _fs.check_relpath(rec["source"])
        manifest = repo.objects.get_json(rec["root"])
        return {
            rec["source"]: {
                "manifest": rec["root"],
                "size": manifest["size"],
                "hash": manifest["hash"],
            }
        }
    return dict(files.load_tree(repo.objects, rec["root"])["entries"])


class _StatCache:
    def __init__(self, repo: Repository, folder: Path) -> None:
        self.path = repo.dir / "cache" / "checkouts" / f"{oid_of(str(folder).encode())}.json"
        try:
            self.entries: dict[str, list[Any]] = json.loads(self.path.read_bytes())
        except (FileNotFoundError, ValueError):
            self.entries = {}

    @staticmethod
    def key(st: os.stat_result) -> list[int]:
        return [st.st_size, st.st_mtime_ns, st.st_ino]

    def fresh(self, rel: str, target: Path, want_hash: str) -> bool:
        try:
            st = target.stat()
        except FileNotFoundError:
            return False
        cached = self.entries.get(rel)
        return bool(cached and cached[:3] == self.key(st) and cached[3] == want_hash)

    def remember(self, rel: str, target: Path, digest: str) -> None:
        self.entries[rel] = [*self.key(target.stat()), digest]

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _fs.atomic_write(self.path, json.dumps(self.entries).encode(), durable=False)


def materialize(
    repo: Repository,
    rec: Record,
    checkout_root: Path | None = None,
    progress: files.Progress | None = None,
) -> CheckoutResult:
    label = f"{rec['name']}@{rec['version']}"
    folder = (checkout_root or repo.checkout_root) / rec["name"] / rec["version"]
    try:
        expected = _expected(repo, rec)
        result = CheckoutResult(destination(repo, rec, checkout_root))
        cache = _StatCache(repo, folder)
        folder.mkdir(parents=True, exist_ok=True)
        for rel, entry in sorted(expected.items()):
            target = _fs.safe_join(folder, rel)
            if cache.fresh(rel, target, entry["hash"]):
                continue
            if (
                target.is_file()
                and target.stat().st_size == entry["size"]
                and hash_file(target) == entry["hash"]
            ):
                cache.remember(rel, target, entry["hash"])
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            _rebuild(repo, entry["manifest"], target, progress)
            cache.remember(rel, target, entry["hash"])
            result.written.append(rel)
        if rec["kind"] == "dir":
            result.removed = _remove_strays(folder, set(expected))
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


def discard(
    repo: Repository, name: str, version: str, checkout_root: Path | None = None
) -> Path | None:
    """Delete the checkout of a removed version (a derived, read-only copy); return it."""
    folder = _fs.safe_join(checkout_root or repo.checkout_root, f"{name}/{version}")
    _StatCache(repo, folder).path.unlink(missing_ok=True)
    if not folder.is_dir():
        return None
    shutil.rmtree(folder)
    with contextlib.suppress(OSError):
        folder.parent.rmdir()  # the family's folder, once it holds no version
    return folder


def _rebuild(
    repo: Repository, manifest_oid: str, target: Path, progress: files.Progress | None
) -> None:
    manifest = repo.objects.get_json(manifest_oid)
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    with _fs.atomic_writer(target, mode=0o444, durable=False) as out:
        for piece in files.iter_file(repo.objects, manifest):
            out.write(piece)
            if progress:
                progress(len(piece))


def _remove_strays(folder: Path, keep: set[str]) -> list[str]:
    """Files in a directory checkout that the version does not hold (a user added them)."""
    removed = []
    for dirpath, dirnames, filenames in os.walk(folder, topdown=False):
        for name in filenames:
            p = Path(dirpath, name)
            rel = p.relative_to(folder).as_posix()
            if rel not in keep:
                p.unlink()
                removed.append(rel)
        for name in dirnames:
            with contextlib.suppress(OSError):
                Path(dirpath, name).rmdir()
    return sorted(removed)
