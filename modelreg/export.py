"""Handing a version out as plain files: the rebuilt bytes, checked, written where another
tool reads them.

Every file is rebuilt from verified chunks into a temporary name beside its destination,
checked against the manifest's whole-file hash, hashed with SHA-256 on the way (the digest
that the Hugging Face cache, OCI layouts and model signatures name files by), and only then
renamed into place. A plain-folder export is built in a temporary folder beside ``DIR`` and
renamed to ``DIR`` at the end, so a failed export leaves nothing behind. ``hfcache.py`` and
``oci.py`` use the same writer for their layouts.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from . import _fs, lazy
from .checkout import FileEntry, expected_files, verified_pieces
from .errors import AlreadyExistsError, CorruptObjectError, ModelregError, NotFoundError
from .repo import Record, Repository

Progress = Callable[[int], None]


def no_progress(n: int) -> None:
    pass


def version_files(repo: Repository, rec: Record) -> dict[str, FileEntry]:
    """relative path -> what that file of the version is, errors naming the version. Every
    caller reads the files next: a lazy clone fetches the chunks it lacks first."""
    lazy.ensure(repo, [rec])
    try:
        return expected_files(repo, rec)
    except (CorruptObjectError, NotFoundError) as e:
        raise CorruptObjectError(f"{label(rec)}: {e.args[0]}") from None


def label(rec: Record) -> str:
    return f"{rec['name']}@{rec['version']}"


def sha256_of(repo: Repository, rel: str, entry: FileEntry) -> str:
    digest = hashlib.sha256()
    for piece in verified_pieces(repo, rel, entry):
        digest.update(piece)
    return digest.hexdigest()


def write_file(
    repo: Repository,
    rel: str,
    entry: FileEntry,
    folder: Path,
    final: Callable[[str], Path],
    progress: Progress = no_progress,
) -> tuple[Path, str]:
    """Rebuild one file into a temporary name in ``folder``, then rename it to
    ``final(sha256)`` (a path in the same folder or file system). Returns (path, sha256)."""
    tmp = _fs.tmp_name(folder / "file")
    digest = hashlib.sha256()
    try:
        with open(tmp, "xb") as out:
            for piece in verified_pieces(repo, rel, entry):
                digest.update(piece)
                out.write(piece)
                progress(len(piece))
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644 & ~_fs.umask())
        target = final(digest.hexdigest())
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return target, digest.hexdigest()


def _fixed(path: Path) -> Callable[[str], Path]:
    return lambda _sha256: path


def check_target(dest: Path, what: str) -> None:
    """``dest`` must be absent or an empty folder: an export never overwrites anything."""
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise AlreadyExistsError(
            f"{dest} already exists and is not a folder", hint=f"choose a new folder for {what}"
        )
    if dest.is_dir() and any(dest.iterdir()):
        raise AlreadyExistsError(
            f"{dest} is not empty", hint=f"choose a new or empty folder for {what}"
        )


def export_folder(
    repo: Repository, rec: Record, dest: Path, progress: Progress = no_progress
) -> dict[str, str]:
    """Write the version's files as plain, writable files under ``dest`` (a new or empty
    folder): a file version as ``dest/<its file name>``, a folder version as its tree.
    Returns relative path -> SHA-256 of every file written."""
    dest = Path(os.path.abspath(dest))
    check_target(dest, "the export")
    expected = version_files(repo, rec)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _fs.tmp_name(dest)
    tmp.mkdir()
    digests: dict[str, str] = {}
    try:
        for rel, entry in sorted(expected.items()):
            path = _fs.safe_join(tmp, rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            _target, digests[rel] = write_file(
                repo, rel, entry, path.parent, _fixed(path), progress
            )
        try:
            os.rename(tmp, dest)  # replaces an empty folder, never a full one
        except OSError as e:
            if e.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                raise AlreadyExistsError(
                    f"{dest} was filled while the export ran", hint="export into a new folder"
                ) from None
            raise
    except CorruptObjectError as e:
        raise CorruptObjectError(f"cannot export {label(rec)}: {e.args[0]}") from None
    except OSError as e:
        raise ModelregError(
            f"cannot export {label(rec)} into {dest}: {e.strerror or e}",
            hint="check the folder's permissions and free space",
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return digests
