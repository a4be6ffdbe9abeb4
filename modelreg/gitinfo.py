"""The Git commit of the working directory, recorded with each version for lineage."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _git(cwd: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def describe(cwd: Path) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the Git work tree holding ``cwd``, or (None, None) outside one."""
    head = _git(cwd, "rev-parse", "--verify", "-q", "HEAD")
    if not head:
        return None, None
    status = _git(cwd, "status", "--porcelain", "--untracked-files=no")
    return head.strip(), (bool(status.strip()) if status is not None else None)
