"""The remote contract: the folder remote and the S3 remote (a real moto server on 127.0.0.1)
pass the same tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelreg import ModelRegistry, sync
from modelreg.errors import CorruptObjectError, RemoteError, RemoteMovedError
from modelreg.hashing import hash_file, oid_of
from modelreg.maintenance import fsck
from modelreg.remotes import open_remote

from .conftest import CliRun, tree_snapshot, write_bytes
from .models import save_torch
from .remote_packs import corrupt_remote_object, rewrite_remote


def registry(path: Path) -> ModelRegistry:
    path.mkdir(parents=True, exist_ok=True)
    return ModelRegistry(path)


def test_push_then_clone_gives_byte_exact_versions(tmp_path: Path, remote_url: str) -> None:
    alice = registry(tmp_path / "alice")
    a1 = write_bytes(tmp_path / "a1.bin", 900_000, seed=1)
    folder = tmp_path / "bundle"
    folder.mkdir()
    write_bytes(folder / "w.bin", 300_000, seed=2)
    (folder / "config.json").write_text("{}")
    alice.register("m", a1, metrics={"acc": 0.5}, tags=["production"])
    alice.register("d", folder)
    alice.add_remote("origin", remote_url)
    report = alice.push()
    assert report["versions"] == ["m@v1", "d@v1"] or sorted(report["versions"]) == ["d@v1", "m@v1"]
    assert report["bytes"] >= 1_200_000

    bob = ModelRegistry.clone(remote_url, tmp_path / "bob")
    assert bob.list_families() == ["d", "m"]
    got = bob.get("m", "production")
    assert got["metrics"] == {"acc": 0.5} and got["version"] == "v1"
    assert hash_file(Path(got["file_path"])) == hash_file(a1)
    d = Path(bob.get("d")["file_path"])
    assert hash_file(d / "w.bin") == hash_file(folder / "w.bin")
    assert fsck(bob.repo).ok


def test_a_second_push_sends_nothing_and_pull_fetches_nothing(
    tmp_path: Path, remote_url: str
) -> None:
    alice = registry(tmp_path / "alice")
    alice.register("m", write_bytes(tmp_path / "a.bin", 500_000))
    alice.add_remote("origin", remote_url)
    alice.push()
    again = alice.push()
    assert again["objects"] == 0 and again["versions"] == []
    pulled = alice.pull()
    assert pulled["objects"] == 0 and pulled["versions"] == []


def test_pushing_a_head_fine_tune_sends_about_the_changed_tensors(
    tmp_path: Path, remote_url: str, torch_mod
) -> None:
    g = torch_mod.Generator().manual_seed(0)
    state = {
        "body.0.weight": torch_mod.randn(512, 512, generator=g),
        "body.1.weight": torch_mod.randn(512, 512, generator=g),
        "fc.weight": torch_mod.randn(10, 512, generator=g),
        "fc.bias": torch_mod.randn(10, generator=g),
    }
    alice = registry(tmp_path / "alice")
    base = save_torch(tmp_path / "base.pt", state)
    alice.register("net", base)
    alice.add_remote("origin", remote_url)
    first = alice.push()
    state["fc.weight"] = state["fc.weight"] + 0.01
    state["fc.bias"] = state["fc.bias"] + 0.01
    tuned = save_torch(tmp_path / "tuned.pt", state)
    alice.register("net", tuned)
    second = alice.push()
    changed = state["fc.weight"].numel() * 4 + state["fc.bias"].numel() * 4
    assert first["bytes"] > tuned.stat().st_size
    assert changed <= second["bytes"] < changed + 40_000  # + manifest, record, headers
    assert second["bytes"] < tuned.stat().st_size / 5


def test_concurrent_versions_conflict_then_pull_renumbers_and_push_keeps_both(
    tmp_path: Path, remote_url: str
) -> None:
    alice = registry(tmp_path / "alice")
    alice.register("m", write_bytes(tmp_path / "base.bin", 100_000, seed=0))
    alice.add_remote("origin", remote_url)
    alice.push()
    bob = ModelRegistry.clone(remote_url, tmp_path / "bob")

    alice.register("m", write_bytes(tmp_path / "alice.bin", 100_000, seed=1), tags=["prod"])
    bob.register("m", write_bytes(tmp_path / "bob.bin", 100_000, seed=2))
    bob.register("m", write_bytes(tmp_path / "bob2.bin", 100_000, seed=3))
    assert alice.push()["versions"] == ["m@v2"]
    with pytest.raises(RemoteMovedError, match=r"the remote moved: it has a different m@v2"):
        bob.push()

    pulled = bob.pull()
    assert pulled["renumbered"] == [("m@v2", "m@v3"), ("m@v3", "m@v4")]
    assert bob.get("m", "v2")["content_hash"] == hash_file(tmp_path / "alice.bin")
    assert bob.get("m", "v3")["content_hash"] == hash_file(tmp_path / "bob.bin")
    assert bob.get("m", "v3")["parent"] == "m@v1"
    assert bob.get("m", "v4")["parent"] == "m@v3"
    assert bob.get("m", "prod")["version"] == "v2"
    assert bob.push()["versions"] == ["m@v3", "m@v4"]

    alice.pull()
    hashes = [r["content_hash"] for r in alice.list("m")]
    assert [r["version"] for r in alice.list("m")] == ["v1", "v2", "v3", "v4"]
    assert hashes[1:] == [hash_file(tmp_path / n) for n in ("alice.bin", "bob.bin", "bob2.bin")]
    assert fsck(alice.repo).ok and fsck(bob.repo).ok


def test_tags_follow_the_side_that_moved_them(tmp_path: Path, remote_url: str) -> None:
    alice = registry(tmp_path / "alice")
    f = write_bytes(tmp_path / "a.bin", 10_000)
    alice.register("m", f, tags=["prod", "old"])
    alice.register("m", f)
    alice.register("m", f)
    alice.add_remote("origin", remote_url)
    alice.push()
    bob = ModelRegistry.clone(remote_url, tmp_path / "bob")
    bob.tag("m", "v2", "prod")
    bob.repo.untag("m", "old")
    bob.push()
    alice.pull()
    assert alice.get("m", "prod")["version"] == "v2"
    assert "old" not in alice.repo.family("m").tags
    alice.tag("m", "v1", "prod")
    bob.tag("m", "v1", "staging")
    bob.push()
    alice.push()  # alice's move of prod goes through: nobody else moved it
    bob.tag("m", "v3", "prod")
    conflict = "tag 'prod' of m is v3 here and v1 on origin"
    with pytest.raises(RemoteMovedError, match=conflict):
        bob.push()
    assert bob.pull()["conflicts"] == [conflict]  # moved on both sides: both are kept
    assert bob.get("m", "prod")["version"] == "v3"
    with pytest.raises(RemoteMovedError, match=conflict):
        bob.push()  # the pull did not settle it
    sync.push(bob.repo, force=True)
    alice.pull()
    assert alice.get("m", "prod")["version"] == "v3"
    assert alice.get("m", "staging")["version"] == "v1"


def test_a_corrupt_object_on_the_remote_is_refused_at_pull(
    tmp_path: Path, remote_url: str, run: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = registry(tmp_path / "alice")
    alice.register("m", write_bytes(tmp_path / "a.bin", 10_000))
    alice.add_remote("origin", remote_url)
    alice.push()
    bob = ModelRegistry.clone(remote_url, tmp_path / "bob", full=True)
    alice.register("m", write_bytes(tmp_path / "b.bin", 300_000, seed=5))
    alice.push()
    chunk = alice.repo.objects.get_json(alice.repo.lookup("m@v2")["root"])["parts"][0]["o"]
    corrupt_remote_object(remote_url, chunk)
    before = tree_snapshot(bob.root / ".modelreg" / "refs")
    with pytest.raises(CorruptObjectError, match=f"object {chunk} from remote .* is corrupt"):
        bob.pull()
    assert tree_snapshot(bob.root / ".modelreg" / "refs") == before
    assert not bob.repo.objects.exists(chunk)
    assert list(bob.repo.objects.leftovers()) == []  # the streamed copy was removed
    monkeypatch.chdir(bob.root)
    r = run("pull")
    assert r.exit_code == 1 and f"object {chunk} from remote" in r.stderr


def test_cli_remote_push_pull_clone(
    tmp_path: Path, remote_url: str, run: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = tmp_path / "a"
    a.mkdir()
    monkeypatch.chdir(a)
    run("init")
    run("register", "m", write_bytes(a / "m.bin", 50_000))
    r = run("remote", "add", "team", remote_url)
    assert r.exit_code == 0 and "Added remote team" in r.stdout
    assert json.loads(run("remote", "list", "--json").stdout)["team"]["url"].startswith(
        remote_url[:8]
    )
    r = run("push", "team", "m@v1")
    assert r.exit_code == 0 and "m@v1" in r.stdout
    monkeypatch.chdir(tmp_path)
    r = run("clone", remote_url, "b")
    assert r.exit_code == 0, r.output
    assert "Cloned" in r.stdout and "m@v1" in r.stdout
    monkeypatch.chdir(tmp_path / "b")
    assert Path(run("get", "m").stdout.strip()).read_bytes() == (a / "m.bin").read_bytes()
    assert "refs already up to date" in run("pull").stdout
    r = run("remote", "remove", "origin")
    assert r.exit_code == 0
    r = run("push")
    assert r.exit_code == 1 and "this registry has no remote" in r.stderr


def test_a_published_version_that_changed_on_the_remote_is_an_error(
    tmp_path: Path, remote_url: str
) -> None:
    alice = registry(tmp_path / "alice")
    alice.register("m", write_bytes(tmp_path / "a.bin", 10_000, seed=1))
    alice.register("m", write_bytes(tmp_path / "b.bin", 10_000, seed=2))
    alice.add_remote("origin", remote_url)
    alice.push()
    remote = open_remote(remote_url)
    data, token = remote.read_ref("m")  # type: ignore[misc]
    refs = alice.repo.family("m")
    swapped = data.replace(refs.versions["v1"].encode(), b"X" * 32)
    swapped = swapped.replace(refs.versions["v2"].encode(), refs.versions["v1"].encode())
    swapped = swapped.replace(b"X" * 32, refs.versions["v2"].encode())
    remote.write_ref("m", swapped, token)
    before = alice.repo.family("m").versions
    assert alice.pull()["warnings"] == [
        "remote origin: m@v1 names a record of m@v2; skipped family m (the registry that "
        "pushed it can replace the remote's copy with 'modelreg push --force')"
    ]
    with pytest.raises(CorruptObjectError, match=r"remote origin: m@v1 names a record of m@v2"):
        alice.pull(names=["m"])
    assert alice.repo.family("m").versions == before


def test_a_published_version_rewritten_on_the_remote_is_refused(
    tmp_path: Path, remote_url: str
) -> None:
    from modelreg.objects import canonical_json

    alice = registry(tmp_path / "alice")
    alice.register("m", write_bytes(tmp_path / "a.bin", 10_000, seed=1))
    alice.add_remote("origin", remote_url)
    alice.push()
    remote = open_remote(remote_url)
    old = alice.repo.family("m").versions["v1"]
    forged = alice.repo.record(old)
    forged["description"] = "rewritten after publication"
    body = canonical_json(forged)
    new = oid_of(body)
    remote.put_object(new, body)
    data, token = remote.read_ref("m")  # type: ignore[misc]
    remote.write_ref("m", data.replace(old.encode(), new.encode()), token)
    with pytest.raises(RemoteError, match="m@v1 differs from the copy on the remote") as e:
        alice.pull()
    assert "'modelreg push --force' replaces the remote's copy with yours" in str(e.value)
    assert alice.repo.family("m").versions["v1"] == old


def test_a_version_removed_here_is_not_fetched_again(tmp_path: Path, remote_url: str) -> None:
    alice = registry(tmp_path / "alice")
    alice.register("m", write_bytes(tmp_path / "a.bin", 10_000, seed=1))
    alice.register("m", write_bytes(tmp_path / "b.bin", 300_000, seed=2))
    alice.add_remote("origin", remote_url)
    alice.push()
    bob = ModelRegistry.clone(remote_url, tmp_path / "bob", full=True)
    bob.remove("m", "v2")
    from modelreg.maintenance import gc

    freed = gc(bob.repo).bytes
    assert freed >= 300_000
    again = bob.pull()
    assert again["objects"] == 0 and again["versions"] == []
    assert [r["version"] for r in bob.list("m")] == ["v1"]


def test_fsck_repair_reads_a_remote_object_only_up_to_its_manifests_length(
    tmp_path: Path, remote_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelreg.remotes.base import Remote

    alice = registry(tmp_path / "alice")
    alice.register("m", write_bytes(tmp_path / "a.bin", 30_000, seed=1))
    alice.add_remote("origin", remote_url)
    alice.push()
    part = alice.repo.objects.get_json(alice.repo.lookup("m@v1")["root"])["parts"][0]
    chunk, n = part["o"], part["n"]
    alice.repo.objects.remove(chunk)
    remote = open_remote(remote_url)
    rewrite_remote(remote_url, {chunk: b"\0" * (n + (4 << 20))})
    asked: list[tuple[str, int, int]] = []
    real = type(remote).read_range

    def spy(self: Remote, key: str, start: int, length: int) -> Iterator[bytes]:
        asked.append((key, start, length))
        return real(self, key, start, length)  # type: ignore[arg-type]

    monkeypatch.setattr(type(remote), "read_range", spy)
    report = sync.repair(alice.repo)
    assert asked == []  # the remote's index says it is larger: refused unread
    assert report.repaired == {} and list(report.missing) == [chunk]
