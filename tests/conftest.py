from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from modelreg.cli import cli
from modelreg.repo import Repository

TORCH_REQUIRED = os.environ.get("MODELREG_REQUIRE_TORCH") == "1"


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the real home directory or depends on the caller's cwd."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MODELREG_LOCK_TIMEOUT", "30")
    monkeypatch.delenv("MODELREG_DEBUG", raising=False)


@pytest.fixture
def repo_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    Repository.init(root)
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def repo(repo_dir: Path) -> Repository:
    return Repository(repo_dir)


CliRun = Callable[..., Result]


@pytest.fixture
def run() -> CliRun:
    """Invoke the CLI in-process; returns click's Result (stdout, stderr, exit_code)."""
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)

    return invoke


def write_bytes(path: Path, size: int, seed: int = 0) -> Path:
    """Deterministic incompressible bytes (a stand-in for weights where the format does not
    matter)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.blake2b(f"{seed}-{counter}".encode(), digest_size=64).digest()
        counter += 1
    path.write_bytes(bytes(out[:size]))
    return path


def tree_snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every file under root -> (size, sha1); the 'nothing changed' witness."""
    snap = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath, name)
            if p.is_symlink():
                snap[str(p.relative_to(root))] = (-1, os.readlink(p))
                continue
            data = p.read_bytes()
            snap[str(p.relative_to(root))] = (len(data), hashlib.sha1(data).hexdigest())
    return snap


@pytest.fixture(scope="session")
def torch_mod():  # type: ignore[no-untyped-def]
    try:
        import torch
    except ImportError:
        if TORCH_REQUIRED:
            raise
        pytest.skip("torch is not installed (pip install -e '.[torch]')")
    return torch


def python() -> str:
    return sys.executable
