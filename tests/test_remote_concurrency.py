"""Real processes against a remote: pushers racing for one family, a push killed mid-way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from modelreg import ModelRegistry
from modelreg.hashing import hash_file
from modelreg.maintenance import fsck
from modelreg.remotes import open_remote

from .conftest import write_bytes
from .remote_packs import packed_ids

PUSHER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from modelreg import ModelRegistry
    from modelreg.errors import RemoteMovedError

    root, go, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    registry = ModelRegistry(root)
    while not go.exists():
        time.sleep(0.001)
    for attempt in range(100):
        try:
            registry.push()
            print("PUSHED", attempt)
            break
        except RemoteMovedError as e:
            if mode == "once":
                print("MOVED", e)
                sys.exit(3)
            registry.pull()
    else:
        sys.exit(4)
    """
)


def _start(root: Path, go: Path, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", PUSHER, str(root), str(go), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _seed(tmp_path: Path, remote_url: str) -> ModelRegistry:
    base = tmp_path / "base"
    base.mkdir()
    registry = ModelRegistry(base)
    registry.register("m", write_bytes(tmp_path / "v1.bin", 50_000, seed=0))
    registry.add_remote("origin", remote_url)
    registry.push()
    return registry


def test_two_pushers_of_one_family_one_wins_the_other_is_told_to_pull(
    tmp_path: Path, remote_url: str
) -> None:
    _seed(tmp_path, remote_url)
    clones = []
    for who in ("alice", "bob"):
        c = ModelRegistry.clone(remote_url, tmp_path / who)
        c.register("m", write_bytes(tmp_path / f"{who}.bin", 200_000, seed=len(who)))
        clones.append(c)
    go = tmp_path / "go"
    procs = [_start(c.root, go, "once") for c in clones]
    go.touch()
    results = [(p.wait(timeout=120), p.stdout.read() if p.stdout else "") for p in procs]
    codes = sorted(rc for rc, _ in results)
    assert codes == [0, 3], results
    loser = clones[[rc for rc, _ in results].index(3)]
    assert "the remote moved" in next(out for rc, out in results if rc == 3)
    loser.pull()
    loser.push()
    final = ModelRegistry.clone(remote_url, tmp_path / "final")
    assert [r["version"] for r in final.list("m")] == ["v1", "v2", "v3"]
    assert {r["content_hash"] for r in final.list("m")[1:]} == {
        hash_file(tmp_path / "alice.bin"),
        hash_file(tmp_path / "bob.bin"),
    }


def test_four_pushers_that_pull_and_retry_lose_nothing(tmp_path: Path, remote_url: str) -> None:
    _seed(tmp_path, remote_url)
    expected = {hash_file(tmp_path / "v1.bin")}
    clones = []
    for i in range(4):
        c = ModelRegistry.clone(remote_url, tmp_path / f"w{i}")
        for j in range(2):
            f = write_bytes(tmp_path / f"w{i}-{j}.bin", 100_000, seed=100 + 10 * i + j)
            c.register("m", f)
            expected.add(hash_file(f))
        clones.append(c)
    go = tmp_path / "go"
    procs = [_start(c.root, go, "retry") for c in clones]
    go.touch()
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read() if p.stderr else ""
    final = ModelRegistry.clone(remote_url, tmp_path / "final")
    rows = final.list("m")
    assert [r["version"] for r in rows] == [f"v{n}" for n in range(1, 10)]
    assert {r["content_hash"] for r in rows} == expected
    assert fsck(final.repo).ok


TRANSFER = textwrap.dedent(
    """
    import sys
    from modelreg import ModelRegistry, wire
    wire.PACK_MAX = 8 << 20  # many packs, so a kill lands between two of them
    getattr(ModelRegistry(sys.argv[1]), sys.argv[2])()
    """
)


def _forty_versions(tmp_path: Path, remote_url: str) -> ModelRegistry:
    """A registry of 40 versions of 2 MB each, with the remote added: enough transfer for a
    SIGKILL to land in the middle of it."""
    src = tmp_path / "src"
    src.mkdir()
    registry = ModelRegistry(src)
    for i in range(40):
        registry.register("big", write_bytes(tmp_path / f"{i}.bin", 2_000_000, seed=i))
    registry.add_remote("origin", remote_url)
    return registry


def test_a_push_killed_halfway_resumes_with_only_the_missing_objects(
    tmp_path: Path, remote_url: str
) -> None:
    registry = _forty_versions(tmp_path, remote_url)
    remote = open_remote(remote_url)
    proc = subprocess.Popen([sys.executable, "-c", TRANSFER, str(registry.root), "push"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if len(remote.list_packs()) >= 3:
                break
        except Exception:
            pass
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)  # an upload whose body had reached the server may still land
    sent_before = len(packed_ids(remote_url))
    assert remote.read_ref("big") is None  # objects first: no ref names a missing object
    assert sent_before > 0

    report = registry.push()
    total = len(packed_ids(remote_url))
    # Only what was missing went up: a pack a kill left behind locally counts once.
    assert report["objects"] == total - sent_before
    assert report["versions"] == [f"big@v{n}" for n in range(1, 41)]
    clone = ModelRegistry.clone(remote_url, tmp_path / "clone")
    assert fsck(clone.repo).ok
    for n in (1, 20, 40):
        got = Path(clone.get("big", f"v{n}")["file_path"])
        assert hash_file(got) == hash_file(tmp_path / f"{n - 1}.bin")


def test_a_pull_killed_halfway_resumes_and_publishes_refs_last(
    tmp_path: Path, remote_url: str
) -> None:
    registry = _forty_versions(tmp_path, remote_url)
    registry.push()
    total = len(packed_ids(remote_url))

    dst = tmp_path / "dst"
    dst.mkdir()
    mirror = ModelRegistry(dst)
    mirror.add_remote("origin", remote_url)
    proc = subprocess.Popen([sys.executable, "-c", TRANSFER, str(dst), "pull"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(mirror.repo.objects)) < 45:
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    have = len(list(mirror.repo.objects))
    assert 0 < have < total
    assert mirror.list_families() == []  # no ref before all its objects are in
    assert fsck(mirror.repo).ok

    report = mirror.pull()
    assert report["objects"] == total - have
    assert len(mirror.list("big")) == 40
    assert hash_file(Path(mirror.get("big", "v40")["file_path"])) == hash_file(tmp_path / "39.bin")
    assert fsck(mirror.repo).ok
