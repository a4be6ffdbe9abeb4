"""The commit recorded with a version comes from the registry's folder, and reading it never
runs a program that a repository's config or attributes name."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from modelreg import gitinfo
from modelreg.repo import Repository

from .conftest import CliRun, write_bytes

GIT = ["git", "-c", "user.email=a@b", "-c", "user.name=a", "-c", "init.defaultBranch=main"]


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run([*GIT, *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _repo_with_commit(folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    _git(folder, "init", "-q")
    (folder / "train.py").write_text("print(1)\n")
    (folder / "data.bin").write_text("tracked\n")
    _git(folder, "add", "train.py", "data.bin")
    _git(folder, "commit", "-qm", "first")
    return _git(folder, "rev-parse", "HEAD")


def _make_hostile(folder: Path, marker: Path) -> None:
    """Config, attributes and a hook that would each create ``marker`` if git ran them."""
    script = folder.parent / f"hostile-{folder.name}.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\ncat\n")
    script.chmod(0o755)
    _git(folder, "config", "core.fsmonitor", str(script))
    _git(folder, "config", "filter.evil.clean", str(script))
    _git(folder, "config", "filter.evil.required", "true")
    _git(folder, "config", "filter.a.b.process", str(script))
    (folder / ".gitattributes").write_text("*.bin filter=evil\n")
    (folder / ".git" / "info" / "attributes").write_text("*.py filter=a.b\n")
    hook = folder / ".git" / "hooks" / "post-index-change"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    (folder / "data.bin").write_text("changed since the commit\n")  # stat-dirty: git would clean
    (folder / "train.py").write_text("print('changed')\n")


def test_register_in_a_hostile_repository_runs_none_of_its_programs(
    repo_dir: Path, run: CliRun, tmp_path: Path
) -> None:
    head = _repo_with_commit(repo_dir)
    marker = tmp_path / "pwned"
    _make_hostile(repo_dir, marker)
    r = run("register", "m", write_bytes(repo_dir / "m.pt", 5000), "--json")
    assert r.exit_code == 0, r.output
    assert not marker.exists()
    rec = json.loads(r.stdout)
    assert rec["git_commit"] == head and rec["git_dirty"] is True


def test_the_commit_comes_from_the_registry_folder_not_the_working_folder(
    tmp_path: Path, run: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = tmp_path / "registry"
    head = _repo_with_commit(registry)
    Repository.init(registry)
    elsewhere = tmp_path / "elsewhere"
    _repo_with_commit(elsewhere)
    marker = tmp_path / "pwned"
    _make_hostile(elsewhere, marker)
    monkeypatch.chdir(elsewhere)
    model = write_bytes(tmp_path / "m.pt", 5000)
    r = run("-C", registry, "register", "m", model, "--json")
    assert r.exit_code == 0, r.output
    assert not marker.exists()
    rec = json.loads(r.stdout)
    assert rec["git_commit"] == head and rec["git_dirty"] is False


def test_packed_refs_detached_head_and_worktrees_are_read_without_git(tmp_path: Path) -> None:
    main = tmp_path / "main"
    first = _repo_with_commit(main)
    _git(main, "pack-refs", "--all")
    assert not (main / ".git" / "refs" / "heads" / "main").exists()
    assert gitinfo.describe(main) == (first, False)

    (main / "train.py").write_text("print(2)\n")
    _git(main, "commit", "-qam", "second")
    second = _git(main, "rev-parse", "HEAD")
    _git(main, "checkout", "-q", "--detach", first)
    assert gitinfo.describe(main)[0] == first

    _git(main, "worktree", "add", "-q", "-b", "side", str(tmp_path / "wt"), second)
    (tmp_path / "wt" / "deep").mkdir()
    assert gitinfo.describe(tmp_path / "wt" / "deep") == (second, False)


def test_outside_a_repository_or_before_the_first_commit_there_is_no_commit(
    tmp_path: Path,
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert gitinfo.describe(plain) == (None, None)
    _git(plain, "init", "-q")
    assert gitinfo.describe(plain) == (None, None)
    (plain / ".git" / "HEAD").write_text("ref: refs/../../../etc/passwd\n")
    assert gitinfo.describe(plain) == (None, None)


def test_a_caller_git_dir_does_not_redirect_the_lookup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = _repo_with_commit(tmp_path / "ours")
    _repo_with_commit(tmp_path / "theirs")
    monkeypatch.setenv("GIT_DIR", os.fspath(tmp_path / "theirs" / ".git"))
    assert gitinfo.describe(tmp_path / "ours") == (ours, False)
