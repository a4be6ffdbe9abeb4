"""The Hugging Face hub cache, read (``import --hf``) and written (``export --hf-cache``)
without huggingface_hub, whose layout it follows::

    <cache>/                       HF_HUB_CACHE, else $HF_HOME/hub, else
      models--<org>--<name>/         $XDG_CACHE_HOME/huggingface/hub (~/.cache/huggingface/hub)
        blobs/<hash>               each file's bytes once (sha256 for LFS files, git's sha1 else)
        refs/main                  the commit a revision names, as text
        snapshots/<commit>/<path>  a relative link to ../../blobs/<hash>

Reading follows exactly the snapshot's links into its own repo's ``blobs/``: a link that
leads anywhere else (another folder, another repo, a link to a folder) is refused, as a
folder model's links leading outside it are. Nothing here reads the network.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _fs, export, maintenance
from .errors import (
    AlreadyExistsError,
    InvalidInputError,
    InvalidNameError,
    NotFoundError,
    UnsafePathError,
)
from .repo import Record, Repository

REPO_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}(?:/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?")
COMMIT_RE = re.compile(r"[0-9a-f]{40}")
_PART = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
REVISION_RE = re.compile(rf"{_PART}(?:/{_PART}){{0,3}}")  # main, v1.0, pr/1
PREFIX = "models--"


def hub_cache(explicit: Path | None = None) -> Path:
    """The hub cache folder, found the way huggingface_hub finds it."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if env.get(var):
            return Path(os.path.expanduser(os.path.expandvars(env[var])))
    home = env.get("HF_HOME") or os.path.join(
        env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "huggingface",
    )
    return Path(os.path.expanduser(os.path.expandvars(home))) / "hub"


def check_repo_id(repo_id: str) -> str:
    if not REPO_ID_RE.fullmatch(repo_id) or "--" in repo_id or ".." in repo_id:
        raise InvalidNameError(
            f"invalid Hugging Face repo id {repo_id[:80]!r}",
            hint="use NAME or ORG/NAME: letters, digits, '.', '_' or '-' (no '--' or '..')",
        )
    return repo_id


def repo_folder(cache: Path, repo_id: str) -> Path:
    return cache / (PREFIX + check_repo_id(repo_id).replace("/", "--"))


@dataclass
class Snapshot:
    repo_id: str
    commit: str
    path: Path
    revisions: list[str] = field(default_factory=list)  # the refs naming this commit
    files: list[tuple[str, Path]] = field(default_factory=list)  # (relative path, blob)
    size: int = 0
    problem: str | None = None  # why it cannot be imported


def resolve(cache: Path, repo_id: str, revision: str = "main") -> tuple[Path, str]:
    """(the repo's folder, the commit ``revision`` names in the cache)."""
    folder = repo_folder(cache, repo_id)
    if not folder.is_dir():
        raise NotFoundError(
            f"{repo_id} is not in the Hugging Face cache {cache}",
            hint="download it first, set HF_HUB_CACHE, or list the cache with "
            "'modelreg import --hf'",
        )
    if COMMIT_RE.fullmatch(revision):
        commit = revision
    else:
        if not REVISION_RE.fullmatch(revision) or ".." in revision:
            raise InvalidNameError(
                f"invalid revision {revision[:80]!r}", hint="give a branch, tag or commit hash"
            )
        try:
            commit = _fs.safe_join(folder / "refs", revision).read_text().strip()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFoundError(
                f"{repo_id} has no revision {revision!r} in the cache {cache}",
                hint="list what the cache holds with 'modelreg import --hf'",
            ) from None
        if not COMMIT_RE.fullmatch(commit):
            raise InvalidInputError(
                f"{folder / 'refs' / revision} does not hold a commit hash",
                hint="download the revision again",
            )
    if not (folder / "snapshots" / commit).is_dir():
        raise NotFoundError(
            f"{repo_id} has no snapshot of commit {commit} in the cache {cache}",
            hint="download that revision first",
        )
    return folder, commit


def snapshot_files(folder: Path, commit: str) -> list[tuple[str, Path]]:
    """A snapshot's files as (relative path, the blob to read), sorted. Each entry must be a
    regular file or a link that resolves to a regular file directly in the repo's
    ``blobs/``; anything else is refused."""
    snap = folder / "snapshots" / commit
    blobs = (folder / "blobs").resolve()
    found: list[tuple[str, Path]] = []
    for dirpath, dirs, names in os.walk(snap):
        for name in dirs:
            if Path(dirpath, name).is_symlink():
                raise _outside(Path(dirpath, name), blobs, "a link to a folder")
        for name in names:
            p = Path(dirpath, name)
            mode = os.lstat(p).st_mode
            if stat.S_ISLNK(mode):
                target = p.resolve()
                if target.parent != blobs:
                    raise _outside(p, blobs, f"a link to {target}")
                if not target.is_file():
                    raise UnsafePathError(
                        f"{p} is a link to a missing or special blob {target}",
                        hint="download the snapshot again",
                    )
                path = target
            elif stat.S_ISREG(mode):
                path = p
            else:
                raise UnsafePathError(f"{p} is not a regular file or a link to a blob")
            found.append((_fs.check_relpath(p.relative_to(snap).as_posix()), path))
    if not found:
        raise InvalidInputError(f"the snapshot {snap} holds no files", hint="download it first")
    return sorted(found)


def _outside(link: Path, blobs: Path, what: str) -> UnsafePathError:
    return UnsafePathError(
        f"{link} is {what}, not to a file in {blobs}",
        hint="only a snapshot's links into its own blobs/ are followed; download it again",
    )


def cached(cache: Path) -> list[Snapshot]:
    """Every snapshot in the cache, with the revisions naming it and its files (or why they
    cannot be read)."""
    found: list[Snapshot] = []
    if not cache.is_dir():
        return found
    for repo_dir in sorted(cache.iterdir()):
        if not repo_dir.name.startswith(PREFIX) or not repo_dir.is_dir():
            continue
        repo_id = repo_dir.name[len(PREFIX) :].replace("--", "/", 1)
        if not REPO_ID_RE.fullmatch(repo_id) or "--" in repo_id:
            continue
        revisions: dict[str, list[str]] = {}
        refs = repo_dir / "refs"
        for ref in sorted(refs.rglob("*")) if refs.is_dir() else []:
            if ref.is_file() and not ref.is_symlink():
                commit = ref.read_text(errors="replace").strip()
                revisions.setdefault(commit, []).append(ref.relative_to(refs).as_posix())
        snapshots = repo_dir / "snapshots"
        for snap in sorted(snapshots.iterdir()) if snapshots.is_dir() else []:
            if not COMMIT_RE.fullmatch(snap.name) or not snap.is_dir():
                continue
            item = Snapshot(repo_id, snap.name, snap, revisions.get(snap.name, []))
            try:
                item.files = snapshot_files(repo_dir, snap.name)
                item.size = sum(p.stat().st_size for _rel, p in item.files)
            except (InvalidInputError, UnsafePathError, OSError) as e:
                item.problem = " ".join(str(e).split())
            found.append(item)
    return found


def would_add(repo: Repository | None, snap: Snapshot) -> maintenance.ScanEstimate:
    """What importing the snapshot would add to ``repo``'s store (to an empty one without
    it), computed as ``stats --scan`` does: chunked, nothing written."""
    from .chunking import ChunkParams

    params = repo.chunk_params if repo is not None else ChunkParams()
    existing = repo.objects if repo is not None else None
    return maintenance.scan(snap.path, params, existing, listing=snap.files)


def import_snapshot(
    repo: Repository,
    name: str,
    repo_id: str,
    revision: str = "main",
    cache: Path | None = None,
    **fields: Any,
) -> Record:
    """Register a cached snapshot as a folder version of ``name``, with the repo id, the
    commit and the revision asked for as params (``hf_repo``, ``hf_commit``,
    ``hf_revision``). Chunks already in the store are not stored again."""
    root = hub_cache(cache)
    folder, commit = resolve(root, repo_id, revision)
    listing = snapshot_files(folder, commit)
    params = dict(fields.pop("params", None) or {})
    params.update(hf_repo=repo_id, hf_commit=commit, hf_revision=revision)
    return repo.register(
        name, folder / "snapshots" / commit, listing=listing, params=params, **fields
    )


def export_snapshot(
    repo: Repository,
    rec: Record,
    repo_id: str,
    cache: Path | None = None,
    progress: export.Progress = export.no_progress,
) -> tuple[Path, str]:
    """Place the version in the hub cache as ``repo_id``'s ``main``: its files as blobs
    named by their sha256, a snapshot of relative links to them, then ``refs/main``, in
    that order, so huggingface_hub finds it offline by repo id. Returns (snapshot, commit).

    The commit is the one the version was imported from when ``repo_id`` is its
    ``hf_repo``, otherwise a hash of its paths and sha256s (the hub has no commit for it)."""
    folder = repo_folder(hub_cache(cache), repo_id)
    entries = export.version_files(repo, rec)
    blobs = folder / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    digests: dict[str, str] = {}
    for rel, entry in sorted(entries.items()):
        _fs.check_relpath(rel)
        _path, digests[rel] = export.write_file(
            repo, rel, entry, blobs, lambda sha256: blobs / sha256, progress
        )
    commit = _commit_for(rec, repo_id, digests)
    snap = folder / "snapshots" / commit
    for rel, sha256 in sorted(digests.items()):
        _link(snap, rel, blobs / sha256, sha256)
    refs = folder / "refs"
    refs.mkdir(exist_ok=True)
    _fs.atomic_write(refs / "main", commit.encode())
    return snap, commit


def _commit_for(rec: Record, repo_id: str, digests: dict[str, str]) -> str:
    params = rec.get("params") or {}
    imported = params.get("hf_commit")
    if params.get("hf_repo") == repo_id and COMMIT_RE.fullmatch(str(imported)):
        return str(imported)
    listed = "".join(f"{rel}\0{sha}\n" for rel, sha in sorted(digests.items()))
    return hashlib.sha1(b"modelreg snapshot\0" + listed.encode(), usedforsecurity=False).hexdigest()


def _link(snap: Path, rel: str, blob: Path, sha256: str) -> None:
    """``snap/rel`` as a relative link to ``blob``; an entry already there with the same
    bytes stays (a real download of that commit), one with other bytes is refused."""
    link = _fs.safe_join(snap, rel)
    link.parent.mkdir(parents=True, exist_ok=True)
    target = os.path.relpath(blob, link.parent)
    if link.is_symlink() or link.exists():
        if link.is_symlink() and os.readlink(link) == target:
            return
        if link.is_file() and _sha256_file(link) == sha256:
            return
        raise AlreadyExistsError(
            f"the cached snapshot {snap} already holds {rel} with other content",
            hint="export under another repo id, or delete that snapshot from the cache",
        )
    tmp = _fs.tmp_name(link)
    os.symlink(target, tmp)
    os.replace(tmp, link)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
