"""Push and pull stream objects: a large object never has to fit in memory. Peak resident
memory of the real CLI process is compared with the size of one object (no timing)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelreg.hashing import hash_file
from modelreg.repo import Repository
from modelreg.verify import inspect_again

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads the peak from /proc (Linux)"
)

OBJECT = 192 << 20
LIMIT_KIB = 150 << 10  # well under one object: about 35 MiB (folder) or 65 MiB (S3) today

# VmHWM is this process's own peak; ru_maxrss would carry over the forking parent's (pytest,
# with torch loaded) across exec.
_MEASURED = (
    "import runpy, sys\n"
    "sys.argv = ['modelreg', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_module('modelreg', run_name='__main__')\n"
    "finally:\n"
    "    peak = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
    "    print('maxrss', peak.split()[1], file=sys.stderr)\n"
)


def _one_big_object(root: Path, tmp_path: Path) -> None:
    """A version whose file is a single chunk of OBJECT bytes (as a registry with a large
    chunk size, or a hostile remote, would have)."""
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        for i in range(OBJECT // (8 << 20)):
            f.write(bytes([1]) + os.urandom((8 << 20) - 1) if i == 0 else os.urandom(8 << 20))
    oid = hash_file(big)
    repo, _ = Repository.init(root)

    def blocks() -> Iterator[bytes]:
        with open(big, "rb") as f:
            while block := f.read(8 << 20):
                yield block

    repo.objects.add_stream(oid, blocks())
    big.unlink()
    manifest = {
        "type": "file",
        "size": OBJECT,
        "hash": oid,
        "format": "raw",
        "parts": [{"o": oid, "n": OBJECT}],
    }
    record = {
        "type": "version",
        "name": "big",
        "version": "v1",
        "kind": "file",
        "root": repo.objects.add_json(manifest),
        "size": OBJECT,
        "content_hash": oid,
        "format": "raw",
        "source": "big.bin",
        "git_commit": None,
        "git_dirty": None,
        "inspect": inspect_again(repo, "file", manifest),
        "parent": None,
        "registered_at": dt.datetime.now(dt.timezone.utc).isoformat(),
    }
    record_oid = repo.objects.add_json(record)
    repo.objects.sync()
    repo.refs.update("big", lambda refs: refs.versions.update(v1=record_oid))


def _peak_kib(args: list[str], cwd: Path) -> int:
    r = subprocess.run(
        [sys.executable, "-c", _MEASURED, *args], cwd=cwd, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    return int(r.stderr.rsplit("maxrss", 1)[1])


def test_push_and_clone_of_a_large_object_stay_well_under_its_size(
    tmp_path: Path, remote_url: str
) -> None:
    alice = tmp_path / "alice"
    _one_big_object(alice, tmp_path)
    added = subprocess.run(
        [sys.executable, "-m", "modelreg", "remote", "add", "origin", remote_url],
        cwd=alice,
        capture_output=True,
    )
    assert added.returncode == 0
    assert _peak_kib(["push"], alice) < LIMIT_KIB
    assert _peak_kib(["clone", remote_url, "bob"], tmp_path) < LIMIT_KIB
    assert (tmp_path / "bob" / ".modelreg").is_dir()
