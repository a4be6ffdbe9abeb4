"""export NAME@REF DIR: a plain folder of real files that the libraries read."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from .conftest import CliRun, tree_snapshot, write_bytes


def _folder_model(root: Path) -> Path:
    model = root / "tiny-model"
    (model / "sub").mkdir(parents=True)
    write_bytes(model / "weights.bin", 20_000, seed=1)
    (model / "config.json").write_text('{"hidden": 4}')
    write_bytes(model / "sub" / "extra.bin", 9000, seed=2)
    return model


def test_export_folder_writes_plain_writable_files(repo_dir: Path, run: CliRun) -> None:
    model = _folder_model(repo_dir)
    assert run("register", "tiny", model).exit_code == 0
    r = run("export", "tiny@v1", repo_dir / "out" / "tiny", "--json")
    assert r.exit_code == 0, r.output
    out = repo_dir / "out" / "tiny"
    assert tree_snapshot(out) == tree_snapshot(model)
    for rel in ("weights.bin", "config.json", "sub/extra.bin"):
        p = out / rel
        assert p.is_file() and not p.is_symlink()
        assert os.access(p, os.W_OK)  # a copy the user owns, unlike a read-only checkout
    shown = json.loads(r.stdout)
    assert (
        shown["sha256"]["weights.bin"]
        == hashlib.sha256((model / "weights.bin").read_bytes()).hexdigest()
    )
    assert not [p for p in (repo_dir / "out").iterdir() if p.name.startswith(".tmp-")]


def test_export_file_version_keeps_its_file_name(repo_dir: Path, run: CliRun) -> None:
    f = write_bytes(repo_dir / "ckpt.pt", 5000)
    run("register", "m", f)
    r = run("export", "m", repo_dir / "e")
    assert r.exit_code == 0 and r.stdout.startswith("Exported m@v1 to ")
    assert [p.name for p in (repo_dir / "e").iterdir()] == ["ckpt.pt"]
    assert (repo_dir / "e" / "ckpt.pt").read_bytes() == f.read_bytes()


def test_export_into_an_empty_folder_is_allowed(repo_dir: Path, run: CliRun) -> None:
    run("register", "m", write_bytes(repo_dir / "a.bin", 3000))
    (repo_dir / "empty").mkdir()
    assert run("export", "m", repo_dir / "empty").exit_code == 0
    assert (repo_dir / "empty" / "a.bin").is_file()


def test_export_refuses_a_folder_that_is_not_empty(repo_dir: Path, run: CliRun) -> None:
    run("register", "m", write_bytes(repo_dir / "a.bin", 3000))
    (repo_dir / "full").mkdir()
    (repo_dir / "full" / "mine.txt").write_text("keep me")
    r = run("export", "m", repo_dir / "full")
    assert r.exit_code == 1
    assert r.stderr.startswith("error: ") and "is not empty" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert [p.name for p in (repo_dir / "full").iterdir()] == ["mine.txt"]


def test_export_of_a_missing_version_says_so(repo_dir: Path, run: CliRun) -> None:
    run("register", "m", write_bytes(repo_dir / "a.bin", 3000))
    r = run("export", "m@v9", repo_dir / "x")
    assert r.exit_code == 1 and "v9" in r.stderr
    assert not (repo_dir / "x").exists()


def test_export_of_a_corrupt_chunk_leaves_nothing(repo_dir: Path, run: CliRun) -> None:
    from modelreg.repo import Repository

    run("register", "m", write_bytes(repo_dir / "a.bin", 200_000))
    run("gc")
    repo = Repository(repo_dir)
    pack = next((repo.dir / "objects" / "pack").glob("*.pack"))
    os.chmod(pack, 0o644)
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pack.write_bytes(bytes(data))
    r = run("export", "m", repo_dir / "x")
    assert r.exit_code == 1 and "cannot export m@v1" in r.stderr
    assert not (repo_dir / "x").exists()
    assert not [p for p in repo_dir.iterdir() if p.name.startswith(".tmp-")]


def register_safetensors(repo_dir: Path, run: CliRun, seed: int) -> dict[str, Any]:
    """A folder of one real safetensors file, registered as ``st``; returns its tensors."""
    pytest.importorskip("torch")
    from .models import save_safetensors, small_state_dict

    state = small_state_dict(seed)
    folder = repo_dir / "st"
    folder.mkdir()
    save_safetensors(folder / "model.safetensors", state)
    assert run("register", "st", folder).exit_code == 0
    return state


def test_exported_safetensors_load_with_the_library(repo_dir: Path, run: CliRun) -> None:
    safetensors_torch = pytest.importorskip("safetensors.torch")
    state = register_safetensors(repo_dir, run, 3)
    assert run("export", "st", repo_dir / "st-out").exit_code == 0
    loaded = safetensors_torch.load_file(str(repo_dir / "st-out" / "model.safetensors"))
    assert sorted(loaded) == sorted(state)
    assert all(bool((loaded[k] == state[k].contiguous()).all()) for k in state)
