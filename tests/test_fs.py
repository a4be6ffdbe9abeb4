from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelreg import _fs
from modelreg.errors import LockTimeoutError, UnsafePathError


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")
    _fs.atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["f"]


def test_atomic_writer_keeps_old_file_when_block_fails(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), _fs.atomic_writer(target) as f:
        f.write(b"half")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f"]


def test_lock_times_out_with_a_message_naming_what_it_waits_for(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with _fs.FileLock(path, "the write lock of model 'x'", timeout=5):
        other = _fs.FileLock(path, "the write lock of model 'x'", timeout=0.2)
        with pytest.raises(LockTimeoutError, match="waiting for the write lock of model 'x'"):
            other.acquire()
    with _fs.FileLock(path, "again", timeout=0.2):
        pass


def test_shared_locks_coexist_but_exclude_an_exclusive_one(tmp_path: Path) -> None:
    path = tmp_path / "gc.lock"
    with (
        _fs.FileLock(path, "a", 1, shared=True),
        _fs.FileLock(path, "b", 1, shared=True),
        pytest.raises(LockTimeoutError),
    ):
        _fs.FileLock(path, "gc", 0.1).acquire()


@pytest.mark.parametrize(
    "bad",
    ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a\\b", "C:x", "a\x00b", "a\nb", "a/."],
)
def test_safe_join_refuses_paths_that_escape(tmp_path: Path, bad: str) -> None:
    with pytest.raises(UnsafePathError):
        _fs.safe_join(tmp_path, bad)


def test_safe_join_accepts_nested_relative_paths(tmp_path: Path) -> None:
    assert _fs.safe_join(tmp_path, "a/b.pt") == tmp_path / "a" / "b.pt"


def test_preallocate_reserves_blocks_but_the_file_holds_only_what_is_written(
    tmp_path: Path,
) -> None:
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        _fs.preallocate(fd, 8 << 20)
        assert os.fstat(fd).st_size == 0  # a rebuild that stops short leaves no zeros
        _fs.write_all(fd, b"x" * 1000)
        assert os.fstat(fd).st_size == 1000
    finally:
        os.close(fd)
    assert (tmp_path / "f").read_bytes() == b"x" * 1000
