"""Checkout writes only inside the checkout tree, notices edits, and checks whole files."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from modelreg.repo import Repository

from .conftest import CliRun, tree_snapshot, write_bytes


def _dir_model(repo_dir: Path, run: CliRun) -> Path:
    model = repo_dir / "src"
    (model / "sub").mkdir(parents=True, exist_ok=True)
    write_bytes(model / "a.bin", 6000, seed=1)
    write_bytes(model / "sub" / "b.bin", 7000, seed=2)
    assert run("register", "m", model).exit_code == 0
    return model


def _victim(tmp_path: Path) -> Path:
    """A folder outside the registry that a hostile link points at."""
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "keep.txt").write_text("not modelreg's\n")
    (victim / "a.bin").write_text("not modelreg's either\n")
    (victim / "sub" / "b.bin").write_text("mine\n")
    return victim


def _assert_checked_out(folder: Path, model: Path) -> None:
    assert not folder.is_symlink() and folder.is_dir()
    assert not (folder / "sub").is_symlink()
    assert tree_snapshot(folder) == tree_snapshot(model)


@pytest.mark.parametrize("replaced", ["models/m/v1", "models/m", "models/m/v1/sub"])
def test_a_folder_replaced_by_a_link_is_replaced_not_written_through(
    repo_dir: Path, run: CliRun, tmp_path: Path, replaced: str
) -> None:
    model = _dir_model(repo_dir, run)
    victim = _victim(tmp_path)
    if replaced == "models/m":
        victim = victim / "family"
        (victim / "v1").mkdir(parents=True)
        (victim / "v1" / "keep.txt").write_text("not modelreg's\n")
    before = tree_snapshot(victim)
    link = repo_dir / replaced
    assert run("get", "m").exit_code == 0
    shutil.rmtree(link)
    link.symlink_to(victim, target_is_directory=True)

    for args in (["get", "m"], ["checkout", "m"], ["get", "--verify", "m"]):
        r = run(*args)
        assert r.exit_code == 0, r.output
        assert tree_snapshot(victim) == before
        _assert_checked_out(repo_dir / "models" / "m" / "v1", model)


def test_a_file_replaced_by_a_link_to_the_same_bytes_is_replaced(
    repo_dir: Path, run: CliRun, tmp_path: Path
) -> None:
    model = _dir_model(repo_dir, run)
    outside = tmp_path / "same.bin"
    outside.write_bytes((model / "a.bin").read_bytes())
    run("get", "m")
    checked = repo_dir / "models" / "m" / "v1" / "a.bin"
    checked.unlink()
    checked.symlink_to(outside)
    assert run("get", "m").exit_code == 0
    assert not checked.is_symlink() and checked.read_bytes() == outside.read_bytes()


def test_a_stray_link_in_a_folder_checkout_is_removed_not_followed(
    repo_dir: Path, run: CliRun, tmp_path: Path
) -> None:
    model = _dir_model(repo_dir, run)
    victim = _victim(tmp_path)
    before = tree_snapshot(victim)
    run("get", "m")
    (repo_dir / "models" / "m" / "v1" / "sub" / "extra").symlink_to(victim)
    r = run("checkout", "m", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)[0]["removed"] == ["sub/extra"]
    assert tree_snapshot(victim) == before
    _assert_checked_out(repo_dir / "models" / "m" / "v1", model)


def test_rm_never_deletes_through_a_linked_family_folder(
    repo_dir: Path, run: CliRun, tmp_path: Path
) -> None:
    _dir_model(repo_dir, run)
    _dir_model(repo_dir, run)  # v2, so v1 is untagged
    victim = tmp_path / "victim"
    (victim / "v1").mkdir(parents=True)
    (victim / "v1" / "keep.txt").write_text("not modelreg's\n")
    (repo_dir / "models").mkdir()
    (repo_dir / "models" / "m").symlink_to(victim, target_is_directory=True)
    r = run("rm", "m@v1")
    assert r.exit_code == 0, r.output
    assert (victim / "v1" / "keep.txt").read_text() == "not modelreg's\n"


def test_the_checkout_root_itself_may_be_a_link_the_user_made(
    repo_dir: Path, run: CliRun, tmp_path: Path
) -> None:
    model = _dir_model(repo_dir, run)
    other_disk = tmp_path / "bigdisk"
    other_disk.mkdir()
    (repo_dir / "models").symlink_to(other_disk, target_is_directory=True)
    assert run("get", "m").exit_code == 0
    _assert_checked_out(other_disk / "m" / "v1", model)


def _edit_in_place_keeping_size_and_mtime(path: Path) -> None:
    st = path.stat()
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    with open(path, "r+b") as f:
        f.write(data)
    os.chmod(path, 0o444)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert after.st_ino == st.st_ino


def test_get_notices_an_edit_that_restored_size_and_mtime(repo_dir: Path, run: CliRun) -> None:
    original = write_bytes(repo_dir / "m.pt", 50_000)
    run("register", "m", original)
    path = Path(run("get", "m").stdout.strip())
    _edit_in_place_keeping_size_and_mtime(path)
    assert path.read_bytes() != original.read_bytes()
    assert run("get", "m").exit_code == 0
    assert path.read_bytes() == original.read_bytes()


def test_get_verify_rehashes_what_the_stat_cache_vouches_for(
    repo_dir: Path, run: CliRun, repo: Repository
) -> None:
    original = write_bytes(repo_dir / "m.pt", 50_000)
    run("register", "m", original)
    path = Path(run("get", "m").stdout.strip())
    _edit_in_place_keeping_size_and_mtime(path)
    # A cache that vouches for the edited file, as a file system with coarse times would.
    (cache,) = (repo.dir / "cache" / "checkouts").iterdir()
    entries = json.loads(cache.read_text())
    st = path.stat()
    entries["m.pt"][:4] = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]
    cache.write_text(json.dumps(entries))
    assert run("get", "m").exit_code == 0
    assert path.read_bytes() != original.read_bytes()  # plain get trusts the stat cache

    r = run("get", "--verify", "m")
    assert r.exit_code == 0 and r.stdout.strip() == str(path)
    assert r.stderr == "verified m@v1: 1 file hashed, 1 rebuilt\n"
    assert path.read_bytes() == original.read_bytes()
    r = run("get", "--verify", "m")
    assert r.stderr == "verified m@v1: 1 file hashed, 0 rebuilt\n"
