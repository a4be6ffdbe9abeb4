"""The Git commit of the registry's folder, recorded with each version for lineage.

A repository's own config can name programs that ``git`` runs on its behalf
(``core.fsmonitor``, filter drivers named by ``.gitattributes``, the ``post-index-change``
hook), and the folder holding a registry may be a clone of someone else's work. So the
commit is read from the ``.git`` files directly, and ``git`` runs only to tell whether the
work tree is dirty, with every program a config can name switched off: fsmonitor, hooks,
every filter driver the config defines, submodule recursion, and index writes.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import subprocess
from pathlib import Path

_OID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_SYMREF_DEPTH = 5
_FILTER_KEY = re.compile(r"filter\.(.+)\.(?:clean|smudge|process|required)", re.DOTALL)


def _read(path: Path, limit: int = 64 << 10) -> str:
    """A small regular file's text. Anything else (a FIFO that would block, a link to
    /dev/zero that never ends, a huge file) raises OSError, as a missing file does."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        data = os.read(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise OSError(f"{path} is larger than {limit} bytes")
    return data.decode(errors="replace")


def find_git(start: Path) -> tuple[Path, Path, Path] | None:
    """(work tree, git dir, common dir) of the repository holding ``start``, or None.

    A linked worktree (``git worktree add``) has a ``.git`` *file* naming its own git dir,
    which names the shared one in ``commondir``; branches live in the shared one.
    """
    for folder in (start, *start.parents):
        dotgit = folder / ".git"
        if dotgit.is_dir():
            gitdir = dotgit
        elif dotgit.is_file():
            try:
                line = _read(dotgit).strip()
            except OSError:
                return None
            if not line.startswith("gitdir:"):
                return None
            gitdir = (folder / line[len("gitdir:") :].strip()).resolve()
        else:
            continue
        common = gitdir
        with contextlib.suppress(OSError):
            common = (gitdir / _read(gitdir / "commondir").strip()).resolve()
        return folder, gitdir, common
    return None


def _read_ref(gitdir: Path, common: Path, ref: str) -> str | None:
    """The id a ref names: a loose ref file (per-worktree first), else ``packed-refs``."""
    if not ref.startswith("refs/") or ".." in ref.split("/"):
        return None
    for base in (gitdir, common):
        try:
            return _read(base / ref).strip()
        except OSError:
            continue
    try:
        packed = _read(common / "packed-refs", limit=256 << 20)
    except OSError:
        return None
    for line in packed.splitlines():
        oid, _, name = line.partition(" ")
        if name == ref:
            return oid
    return None


def head_commit(gitdir: Path, common: Path) -> str | None:
    """HEAD's commit id, following symbolic refs; None on an unborn branch or junk."""
    try:
        value: str | None = _read(gitdir / "HEAD").strip()
    except OSError:
        return None
    for _ in range(_SYMREF_DEPTH):
        if value is None:
            return None
        if not value.startswith("ref:"):
            return value if _OID.fullmatch(value) else None
        value = _read_ref(gitdir, common, value[len("ref:") :].strip())
    return None


def _clean_env(overrides: dict[str, str]) -> dict[str, str]:
    """The caller's environment without its ``GIT_*`` settings (a hook's ``GIT_DIR`` would
    point elsewhere), plus ``overrides`` as command-line-strength config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_OPTIONAL_LOCKS"] = "0"
    env["GIT_CONFIG_COUNT"] = str(len(overrides))
    for i, (key, value) in enumerate(overrides.items()):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


def _git(worktree: Path, args: list[str], overrides: dict[str, str]) -> str | None:
    try:
        done = subprocess.run(
            ["git", "--no-pager", *args],
            cwd=worktree,
            env=_clean_env(overrides),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.decode(errors="replace") if done.returncode == 0 else None


_SAFE = {
    "core.fsmonitor": "false",
    "core.hooksPath": os.devnull,
    "core.untrackedCache": "false",
    "core.splitIndex": "false",
    "diff.external": "",
    "status.submoduleSummary": "false",
}


def _neutralized_filters(worktree: Path) -> dict[str, str] | None:
    """Config that empties every filter driver the repository defines. A driver runs only if
    config gives it a command, so listing the config (which runs nothing) finds them all."""
    listing = _git(worktree, ["config", "--list", "-z"], _SAFE)
    if listing is None:
        return None
    overrides: dict[str, str] = {}
    for item in listing.split("\0"):
        key = item.partition("\n")[0]
        found = _FILTER_KEY.fullmatch(key)
        if found:
            driver = found.group(1)
            for var in ("clean", "smudge", "process"):
                overrides[f"filter.{driver}.{var}"] = ""
            overrides[f"filter.{driver}.required"] = "false"
    return overrides


def is_dirty(worktree: Path) -> bool | None:
    """Whether tracked files differ from HEAD; None when that cannot be told safely."""
    filters = _neutralized_filters(worktree)
    if filters is None:
        return None
    status = _git(
        worktree,
        ["status", "--porcelain", "--untracked-files=no", "--ignore-submodules=all"],
        {**_SAFE, **filters},
    )
    return bool(status.strip()) if status is not None else None


def describe(folder: Path) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the Git work tree holding ``folder``, or (None, None) outside one."""
    found = find_git(folder.resolve())
    if found is None:
        return None, None
    worktree, gitdir, common = found
    commit = head_commit(gitdir, common)
    if commit is None:
        return None, None
    return commit, is_dirty(worktree)
