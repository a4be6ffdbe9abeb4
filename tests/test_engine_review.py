"""Holes a hostile review of the pack store and the version index found, each with the attack
that found it."""

from __future__ import annotations

import os
import tarfile
import threading
import time
from pathlib import Path

import pytest

from modelreg import ModelRegistry, remote_config
from modelreg.refs import yaml_load
from modelreg.repo import Repository

from .conftest import CliRun, write_bytes

FIXTURE = Path(__file__).parent / "fixtures" / "format1-registry.tar.gz"


def test_an_unreadable_index_never_fails_a_write_or_a_read(repo_dir: Path, run: CliRun) -> None:
    write_bytes(repo_dir / "a.bin", 100)
    write_bytes(repo_dir / "b.bin", 100, seed=1)
    run("register", "m", "a.bin")
    index = repo_dir / ".modelreg" / "index"
    for p in index.iterdir():
        p.unlink()
    index.rmdir()
    index.write_text("not a folder")  # every index read and write now fails with an OSError
    r = run("register", "m", "b.bin")
    assert r.exit_code == 0, r.output  # before: error (Not a directory) after publishing v2
    assert run("list").exit_code == 0
    assert "m@v2" in run("log", "m").stdout


def test_a_hand_edit_that_sets_mtime_back_is_seen_by_readers(repo_dir: Path, run: CliRun) -> None:
    for i in range(3):
        write_bytes(repo_dir / f"w{i}.bin", 100, seed=i)
        run("register", "m", f"w{i}.bin")
    run("tag", "m@v2", "prod")
    Repository(repo_dir).refs.compact("m")  # the journal folded into the snapshot (as gc does)
    run("list")  # the index is built
    path = repo_dir / ".modelreg" / "refs" / "m.yaml"
    st = os.stat(path)
    text = path.read_text().replace("prod: v2", "prod: v3")  # same size
    time.sleep(0.01)
    with open(path, "r+") as f:
        f.write(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime back; ctime moves on
    assert Path(run("get", "m@prod").stdout.strip()).parent.name == "v3"


def test_a_failed_gc_auto_is_said_not_swallowed(repo_dir: Path, run: CliRun) -> None:
    write_bytes(repo_dir / "a.bin", 100)
    run("register", "m", "a.bin")  # its record stays a loose object
    repo = Repository(repo_dir)
    (loose,) = [c for c in repo.objects.copies() if c.kind == "loose"]
    victim = Path(loose.where)
    victim.chmod(0o644)
    data = bytearray(victim.read_bytes())
    data[5] ^= 1
    victim.write_bytes(bytes(data))
    config = repo_dir / ".modelreg" / "config.yaml"
    config.write_text(config.read_text().replace("auto_loose: 256", "auto_loose: 1"))
    write_bytes(repo_dir / "b.bin", 100, seed=1)
    r = run("register", "n", "b.bin")
    assert r.exit_code == 0  # the version is made
    assert "warning: gc --auto could not repack the store (" in r.stderr
    with pytest.warns(RuntimeWarning, match="gc --auto could not repack"):
        ModelRegistry(".").register("n", write_bytes(repo_dir / "c.bin", 100, seed=2))


def test_upgrading_a_format_1_registry_keeps_a_remote_added_meanwhile(tmp_path: Path) -> None:
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(tmp_path, filter="data")
    (root,) = [p.parent.parent for p in tmp_path.rglob(".modelreg/config.yaml")]
    repo = Repository(root)
    assert repo.config["format"] == 1
    with repo.config_lock():  # 'remote add' is editing config.yaml right now
        upgrade = threading.Thread(target=repo._upgrade_format)
        upgrade.start()
        time.sleep(0.3)
        assert upgrade.is_alive()  # before: it rewrote config.yaml without waiting
        config = yaml_load((repo.dir / "config.yaml").read_bytes())
        assert isinstance(config, dict)
        config.setdefault("remotes", {})["origin"] = {"url": str(tmp_path / "remote")}
        from modelreg import _fs
        from modelreg.refs import yaml_dump

        _fs.atomic_write(repo.dir / "config.yaml", yaml_dump(config).encode())
    upgrade.join(timeout=30)
    final = Repository(root)
    assert final.config["format"] == 2
    assert "origin" in remote_config.remotes(final)


def test_a_corrupt_object_hint_names_fsck_repair_and_a_second_register(
    repo_dir: Path, run: CliRun
) -> None:
    write_bytes(repo_dir / "a.bin", 20_000)
    run("register", "m", "a.bin")
    repo = Repository(repo_dir)
    (chunk,) = [c for c in repo.objects.copies() if c.stored == 20_000]
    where = Path(chunk.where) if chunk.kind == "loose" else repo.objects.pack_dir / chunk.where
    where.chmod(0o644)
    data = bytearray(where.read_bytes())
    data[chunk.offset + 7] ^= 1
    where.write_bytes(bytes(data))
    r = run("get", "m")
    assert r.exit_code == 1
    assert "'modelreg fsck --repair' to restore them from a remote" in r.stderr
    assert "or register the same file again" in r.stderr  # it repairs (test_store_holes.py)
