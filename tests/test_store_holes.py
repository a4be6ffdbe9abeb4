"""Holes in the object store that review found, each with a test that failed before its fix:
a damaged copy that a second register of the same file skipped (because the id "existed"),
and gc on a disk that is really full (a tmpfs), with live and dead packs mixed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modelreg.repo import Repository

from .conftest import CliRun, write_bytes

MiB = 1 << 20


def _flip_packed_chunk(repo_dir: Path, size: int) -> str:
    repo = Repository(repo_dir)
    (chunk,) = [c for c in repo.objects.copies() if c.size == size]
    assert chunk.kind == "packed"
    where = repo.objects.pack_dir / chunk.where
    where.chmod(0o644)
    data = bytearray(where.read_bytes())
    data[chunk.offset + size // 2] ^= 1
    where.write_bytes(bytes(data))
    return chunk.oid


@pytest.mark.parametrize("found_by", ["get", "fsck"])
def test_registering_the_same_file_again_repairs_a_damaged_packed_chunk(
    repo_dir: Path, run: CliRun, found_by: str
) -> None:
    source = write_bytes(repo_dir / "a.bin", 200_000)
    assert run("register", "m", "a.bin").exit_code == 0
    oid = _flip_packed_chunk(repo_dir, 200_000)
    found = run(found_by, "m") if found_by == "get" else run("fsck")
    assert found.exit_code == 1 and oid in found.output + found.stderr
    checked = run("fsck")  # with the damage remembered, still named once, as corrupt
    assert f"corrupt object {oid} in pack-" in checked.output
    assert f"missing object {oid}" not in checked.output and ", 0 missing," in checked.output
    again = run("register", "m", "a.bin")  # before: "stored already", the damage stayed
    assert again.exit_code == 0, again.output
    checked = run("fsck")
    assert checked.exit_code == 0, checked.output
    for ref in ("m@v1", "m@v2"):
        got = run("get", ref)
        assert got.exit_code == 0, got.stderr
        assert Path(got.stdout.strip()).read_bytes() == source.read_bytes()
    assert run("gc").exit_code == 0
    assert Repository(repo_dir).objects.get(oid) == source.read_bytes()
    assert not (repo_dir / ".modelreg" / "objects" / "damaged").exists()  # gc cleared it


# --- gc on a full disk -------------------------------------------------------------------
# The registry lives on a 16 MiB tmpfs mounted in a private mount namespace (unshare: no
# root needed where user namespaces are allowed), so ENOSPC comes from a real file system.
SCENARIO = r"""
import json, os, subprocess, sys
from pathlib import Path

mnt, sources = Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]
project = mnt / "project"
project.mkdir()
out = {}

def mr(*args):
    r = subprocess.run([sys.executable, "-m", "modelreg", *args], cwd=project,
                       capture_output=True, text=True)
    return {"code": r.returncode, "out": r.stdout, "err": r.stderr}

def fill(leave):
    free = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
    with open(mnt / "filler", "ab") as f:
        f.write(b"\0" * max(0, free - leave))
    return os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize

def packs():
    return sorted(p.name for p in (project / ".modelreg/objects/pack").iterdir())

mr("init")
for s in sources[:3]:
    mr("register", "m", str(s))
mr("rm", "m@v1"); mr("rm", "m@v2")
out["a_packs_before"] = packs()
out["a_free"] = fill(1 << 20)  # less than the live pack: only dropping dead ones makes room
out["a_gc"] = mr("gc")
out["a_packs_after"] = packs()
out["a_fsck"] = mr("fsck")

os.unlink(mnt / "filler")
out["b_registers"] = [mr("register", "m", str(s))["code"] for s in sources[3:]]
mr("rm", "m@v5")
out["b_free"] = fill(0)  # full: the dead pack frees less than the live objects need
out["b_gc"] = mr("gc")
out["b_packs_after"] = packs()
out["b_fsck"] = mr("fsck")
os.unlink(mnt / "filler")
out["b_gc_with_room"] = mr("gc")
out["b_got"] = {}
for ref, source in (("m@v3", sources[2]), ("m@v4", sources[3])):
    got = mr("get", ref)
    same = got["code"] == 0 and Path(got["out"].strip()).read_bytes() == source.read_bytes()
    out["b_got"][ref] = same or got["err"]
print(json.dumps(out))
"""


def _in_tmpfs(tmp_path: Path, size_mib: int, args: list[str]) -> Any:
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("no unshare(1) to mount a private tmpfs")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = tmp_path / "scenario.py"
    script.write_text(SCENARIO)
    mount = f'mount -t tmpfs -o size={size_mib}m tmpfs "$1" && exec "$2" "$3" "$1" "${{@:4}}"'
    probe = subprocess.run([unshare, "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"user namespaces are not allowed here: {probe.stderr.decode().strip()}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    r = subprocess.run(
        [unshare, "-rm", "bash", "-c", mount, "bash", str(mnt), sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_gc_on_a_full_disk_drops_dead_packs_first_and_never_loses_a_live_object(
    tmp_path: Path,
) -> None:
    sources = [write_bytes(tmp_path / f"w{i}.bin", 3 * MiB, seed=i) for i in range(5)]
    out = _in_tmpfs(tmp_path, 16, [str(s) for s in sources])
    assert len([p for p in out["a_packs_before"] if p.endswith(".pack")]) == 3
    assert out["a_free"] < 3 * MiB
    # a: two dead packs, one live one, 1 MiB free: gc frees the dead first, then repacks
    gc_a = out["a_gc"]
    assert gc_a["code"] == 0, gc_a
    assert len(out["a_packs_after"]) == 2  # one .pack + .idx
    assert out["a_fsck"]["code"] == 0, out["a_fsck"]
    # b: live objects need more room than the dead pack frees: gc fails, one clear line,
    # nothing lost, no half-written pack left behind
    assert out["b_registers"] == [0, 0]
    gc_b = out["b_gc"]
    assert gc_b["code"] == 1
    assert gc_b["err"].strip().count("\n") == 0
    assert "No space left on device" in gc_b["err"]
    assert not [p for p in out["b_packs_after"] if p.startswith(".tmp-")]
    assert out["b_fsck"]["code"] == 0, out["b_fsck"]
    assert out["b_gc_with_room"]["code"] == 0, out["b_gc_with_room"]
    assert out["b_got"] == {"m@v3": True, "m@v4": True}
