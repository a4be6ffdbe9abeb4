"""Lazy clones: refs, records and manifests at clone; a version's chunks when it is read."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modelreg import ModelRegistry, lazy
from modelreg.cache import Cache
from modelreg.maintenance import disk_usage, fsck

from .conftest import CliRun, write_bytes
from .test_wire import Requests, counted, counter  # noqa: F401 (fixtures)

SIZE = 1_000_000


def _team(tmp_path: Path, url: str, versions: int = 3) -> ModelRegistry:
    alice = ModelRegistry(tmp_path / "alice")
    for i in range(versions):
        with pytest.warns(UserWarning):  # plain bytes, not a model format
            alice.register("m", write_bytes(tmp_path / f"{i}.bin", SIZE, seed=i))
    alice.add_remote("origin", url)
    alice.push()
    return alice


def _cloned(
    tmp_path: Path, run: CliRun, monkeypatch: pytest.MonkeyPatch, versions: int
) -> tuple[Path, Path]:
    """A folder remote of ``versions`` versions, lazily cloned into bob (the cwd)."""
    remote = tmp_path / "remote"
    _team(tmp_path, str(remote), versions)
    bob = tmp_path / "bob"
    assert run("clone", remote, bob).exit_code == 0
    monkeypatch.chdir(bob)
    return remote, bob


def _absent(reg: ModelRegistry, version: str) -> set[str]:
    oid = reg.repo.family("m").versions[version]
    return lazy.absent(reg.repo, oid)


def test_a_lazy_clone_fetches_only_the_version_it_reads(tmp_path: Path, remote_url: str) -> None:
    _team(tmp_path, remote_url)
    bob = ModelRegistry.clone(remote_url, tmp_path / "bob")
    assert disk_usage(bob.repo.dir) < 300_000  # no chunk data: 3 MB on the remote
    assert [r["version"] for r in bob.list("m")] == ["v1", "v2", "v3"]
    assert all(_absent(bob, v) for v in ("v1", "v2", "v3"))
    assert bob.list("m")[1]["size"] == SIZE  # what the record says needs no data

    got = Path(bob.get("m", "v2")["file_path"])
    assert got.read_bytes() == (tmp_path / "1.bin").read_bytes()
    assert not _absent(bob, "v2") and _absent(bob, "v1") and _absent(bob, "v3")
    cached = Cache().stats()
    assert SIZE <= cached.bytes <= 1.1 * SIZE  # that version's chunks, in the shared cache
    report = fsck(bob.repo)
    assert report.ok and report.fetchable_from == "origin"
    assert report.cached >= 1 and len(report.fetchable) >= 2  # v1's and v3's chunks


def test_a_second_registry_reads_the_shared_cache_with_no_data_requests(
    tmp_path: Path,
    counted: str,  # noqa: F811 (the fixture imported above)
    counter: str,  # noqa: F811
) -> None:
    _team(tmp_path, counted)
    bob = ModelRegistry.clone(counted, tmp_path / "bob")
    seen = Requests(counter)
    bob.get("m", "v3")
    first = seen.since()
    assert first.get("GET", 0) <= 4, first  # marker, and one ranged read of the pack
    carol = ModelRegistry.clone(counted, tmp_path / "carol")
    seen.since()
    path = Path(carol.get("m", "v3")["file_path"])
    assert path.read_bytes() == (tmp_path / "2.bin").read_bytes()
    assert sum(seen.since().values()) <= 3  # the target; in fact none: all in the cache


def test_offline_get_of_an_unfetched_version_is_one_line_naming_fetch(
    tmp_path: Path, run: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote, bob = _cloned(tmp_path, run, monkeypatch, versions=3)
    r = run("fetch", "m@v1")
    assert r.exit_code == 0 and "Fetched 1 object" in r.stdout and "m@v1" in r.stdout
    assert run("fetch", "m@v1").stdout.startswith("Nothing to fetch")
    shutil.rmtree(remote)  # offline

    r = run("get", "m@v2")
    assert r.exit_code == 1 and r.stdout == "" and r.stderr.count("\n") == 1, r.output
    assert "m@v2 is not here" in r.stderr and "'modelreg fetch m@v2'" in r.stderr
    assert not (bob / "models" / "m" / "v2").exists()
    r = run("get", "m@v1")  # fetched ahead: in this registry itself
    assert r.exit_code == 0
    assert Path(r.stdout.strip()).read_bytes() == (tmp_path / "0.bin").read_bytes()


def test_fsck_tells_fetchable_from_missing(
    tmp_path: Path, run: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote, bob = _cloned(tmp_path, run, monkeypatch, versions=2)
    r = run("fsck")
    assert r.exit_code == 0 and "0 missing" in r.stdout
    assert "2 objects of this lazy clone are not here but fetchable from remote origin" in r.stdout
    # the remote loses its data, and what it said of its packs goes too: lost, not fetchable
    for pack in [*remote.glob("packs/*"), *(bob / ".modelreg" / "remotes").rglob("*.idx")]:
        pack.unlink()
    r = run("fsck")
    assert r.exit_code == 1 and "2 missing" in r.stdout and "fetchable" not in r.stdout


def test_show_marks_the_remotes_claims_unverified_until_the_data_is_here(
    tmp_path: Path, run: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cloned(tmp_path, run, monkeypatch, versions=1)
    said = " ".join(run("show", "m").stdout.split())
    assert "unverified: 'inspect, size and hashes are from remote origin, not checked" in said
    run("get", "m")
    assert "unverified" not in run("show", "m").stdout


def test_clone_full_and_pull_full_bring_every_chunk(tmp_path: Path, remote_url: str) -> None:
    alice = _team(tmp_path, remote_url, versions=2)
    full = ModelRegistry.clone(remote_url, tmp_path / "full", full=True)
    assert not _absent(full, "v1") and not _absent(full, "v2")
    assert "lazy" not in full.repo.config["remotes"]["origin"]
    bob = ModelRegistry.clone(remote_url, tmp_path / "bob")
    assert bob.repo.config["remotes"]["origin"]["lazy"] is True
    with pytest.warns(UserWarning):
        alice.register("m", write_bytes(tmp_path / "3.bin", SIZE, seed=3))
    alice.push()
    assert bob.pull()["versions"] == ["m@v3"] and _absent(bob, "v3")  # still lazy
    bob.pull(full=True)
    assert not any(_absent(bob, v) for v in ("v1", "v2", "v3"))
    assert not Cache().is_present()  # pulled into the registry itself


def test_a_lazy_clone_pushes_new_versions_without_fetching_old_ones(
    tmp_path: Path, remote_url: str
) -> None:
    _team(tmp_path, remote_url, versions=2)
    bob = ModelRegistry.clone(remote_url, tmp_path / "bob")
    with pytest.warns(UserWarning):
        bob.register("m", write_bytes(tmp_path / "b.bin", SIZE, seed=9))
    report = bob.push()
    assert report["versions"] == ["m@v3"] and _absent(bob, "v1")
    carol = ModelRegistry.clone(remote_url, tmp_path / "carol")
    assert Path(carol.get("m", "v3")["file_path"]).read_bytes() == (tmp_path / "b.bin").read_bytes()


def test_a_forged_verdict_is_shown_unverified_and_refused_when_the_data_comes(
    tmp_path: Path, remote_url: str, run: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The remote's record of m@v1 claims a verdict its content does not give: a lazy clone
    takes it on the remote's word (``show`` says so), and ``get`` refuses it once the data
    is fetched and inspected here."""
    from .test_hostile_remote import point, put_json

    alice = _team(tmp_path, remote_url, versions=1)
    record = alice.repo.record(alice.repo.family("m").versions["v1"])
    claimed = {**record["inspect"], "safety": "safe"}
    assert record["inspect"] != claimed
    point(remote_url, "m", "v1", put_json(remote_url, {**record, "inspect": claimed}))
    assert run("clone", remote_url, tmp_path / "victim").exit_code == 0
    monkeypatch.chdir(tmp_path / "victim")
    assert "unverified:" in run("show", "m@v1").stdout
    r = run("get", "m@v1")
    assert r.exit_code == 1 and r.stderr.count("\n") == 1, r.output
    assert r.stderr.startswith(
        "error: m@v1: its data from remote origin does not bear out its record: it claims "
        "inspect verdict 'safe'"
    )
    assert not (tmp_path / "victim" / "models" / "m" / "v1").exists()


def test_data_another_registry_fetched_still_gets_this_registrys_check(
    tmp_path: Path, remote_url: str
) -> None:
    """bob's get fills the shared cache; carol's record of the version stays the remote's
    word until carol's own get checks it against that data (no request needed)."""
    _team(tmp_path, remote_url, versions=1)
    bob = ModelRegistry.clone(remote_url, tmp_path / "bob")
    carol = ModelRegistry.clone(remote_url, tmp_path / "carol")
    bob.get("m", "v1")
    rec = carol.repo.lookup("m@v1")
    assert not _absent(carol, "v1") and lazy.not_fetched(carol.repo, rec)
    carol.get("m", "v1")
    assert not lazy.not_fetched(carol.repo, rec) and not lazy.unchecked(carol.repo)
