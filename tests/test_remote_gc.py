"""Remote retention: ``rm --remote`` drops a version from the remote's refs, ``gc --remote``
deletes (or repacks) the packs no ref reaches, sparing anything newer than the grace period;
teammates' next pull drops the version unless a local change needs it. Each runs against a
folder remote and an S3 remote (moto on 127.0.0.1), through the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import boto3
import pytest

from modelreg import ModelRegistry
from modelreg.hashing import hash_file
from modelreg.packs import IndexTable
from modelreg.remotes import open_remote
from modelreg.repo import Repository
from modelreg.walk import needed_objects

from .conftest import CliRun, write_bytes

SIZE = 300_000  # incompressible: stored bytes are about the file's bytes


def bucket_keys(url: str) -> dict[str, int]:
    """Every key the remote holds -> its size, read without modelreg."""
    if not url.startswith("s3://"):
        root = Path(url)
        return {
            str(Path(d, f).relative_to(root)): os.path.getsize(Path(d, f))
            for d, _dirs, files in os.walk(root)
            for f in files
        }
    bucket, _, prefix = url[len("s3://") :].partition("/")
    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"])
    found: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = int(item["Size"])
    return found


def stored(url: str) -> int:
    return sum(size for key, size in bucket_keys(url).items() if "/packs/" in f"/{key}")


@pytest.fixture
def alice(tmp_path: Path, remote_url: str, run: CliRun) -> Path:
    home = tmp_path / "alice"
    home.mkdir()
    run("init", home)
    run("-C", home, "remote", "add", "origin", remote_url)
    return home


def register(run: CliRun, home: Path, seed: int) -> Path:
    path = write_bytes(home.parent / f"w{seed}.bin", SIZE, seed)
    assert run("-C", home, "register", "m", path).exit_code == 0
    return path


def two_pushed_and_v2_removed(run: CliRun, home: Path) -> None:
    """m@v1 and m@v2 pushed in one pack, then m@v2 removed from the remote."""
    register(run, home, 1)
    register(run, home, 2)
    assert run("-C", home, "push").exit_code == 0
    assert run("-C", home, "rm", "--remote", "origin", "m@v2").exit_code == 0


def assert_pulls_exact(run: CliRun, url: str, where: Path, files: dict[str, Path]) -> None:
    assert run("clone", url, where).exit_code == 0
    registry = ModelRegistry(where)
    assert sorted(v["version"] for v in registry.list("m")) == sorted(files)
    for version, original in files.items():
        got = Path(registry.get("m", version)["file_path"])
        assert hash_file(got) == hash_file(original)


def test_rm_then_gc_frees_nearly_all_of_a_version_bytes_and_the_rest_still_pulls(
    alice: Path, remote_url: str, run: CliRun, tmp_path: Path
) -> None:
    w1 = register(run, alice, 1)
    assert run("-C", alice, "push").exit_code == 0
    with_v1 = stored(remote_url)
    register(run, alice, 2)
    assert run("-C", alice, "push").exit_code == 0
    v2_bytes = stored(remote_url) - with_v1
    assert v2_bytes >= SIZE

    r = run("-C", alice, "rm", "--remote", "origin", "m@v2")
    assert r.exit_code == 0, r.output
    assert "Removed m@v2 from remote origin" in r.output
    r = run("-C", alice, "gc", "--remote", "origin", "--grace", "0")
    assert r.exit_code == 0, r.output
    assert "deleting 1 pack" in r.output
    freed = with_v1 + v2_bytes - stored(remote_url)
    assert freed >= 0.9 * v2_bytes
    assert_pulls_exact(run, remote_url, tmp_path / "carol", {"v1": w1})


def test_a_mixed_pack_is_repacked_and_every_remaining_version_pulls_byte_exact(
    alice: Path, remote_url: str, run: CliRun, tmp_path: Path
) -> None:
    files = {f"v{seed}": register(run, alice, seed) for seed in (1, 2, 3)}
    assert run("-C", alice, "push").exit_code == 0  # one pack holds all three
    before = stored(remote_url)
    old_packs = {k for k in bucket_keys(remote_url) if k.endswith(".pack")}
    assert len(old_packs) == 1

    assert run("-C", alice, "rm", "--remote", "origin", "m@v2").exit_code == 0
    r = run("-C", alice, "gc", "--remote", "origin", "--grace", "0")
    assert r.exit_code == 0, r.output
    assert "repacking 1 pack" in r.output and "into 1 new pack" in r.output
    new_packs = {k for k in bucket_keys(remote_url) if k.endswith(".pack")}
    assert len(new_packs) == 1 and not new_packs & old_packs
    assert before - stored(remote_url) >= 0.9 * SIZE
    del files["v2"]
    assert_pulls_exact(run, remote_url, tmp_path / "carol", files)
    # a second gc finds nothing more to do
    r = run("-C", alice, "gc", "--remote", "origin", "--grace", "0")
    assert r.exit_code == 0 and "0 unreachable objects" in r.output


def test_the_grace_period_spares_new_packs_and_dry_run_changes_nothing(
    alice: Path, remote_url: str, run: CliRun
) -> None:
    two_pushed_and_v2_removed(run, alice)
    keys = bucket_keys(remote_url)

    r = run("-C", alice, "gc", "--remote", "origin")  # default grace: an hour
    assert r.exit_code == 0, r.output
    assert "sparing 1 pack newer than 1h" in r.output and "repacking 0 packs" in r.output
    assert bucket_keys(remote_url) == keys

    r = run("-C", alice, "gc", "--remote", "origin", "--grace", "0", "--dry-run")
    assert r.exit_code == 0, r.output
    assert r.output.startswith("Would free") and "  repack packs/pack-" in r.output
    assert bucket_keys(remote_url) == keys

    r = run("-C", alice, "gc", "--remote", "origin", "--grace", "0", "--dry-run", "--json")
    got = json.loads(r.output)
    assert got["dry_run"] is True and got["done"] is False
    assert len(got["mixed_packs"]) == 1 and got["bytes"] >= SIZE
    assert bucket_keys(remote_url) == keys


def test_a_teammate_pull_drops_the_removed_version_unless_a_local_change_needs_it(
    alice: Path, remote_url: str, run: CliRun, tmp_path: Path
) -> None:
    for seed in (1, 2, 3):
        register(run, alice, seed)
    assert run("-C", alice, "push").exit_code == 0
    bob, dan = tmp_path / "bob", tmp_path / "dan"
    assert run("clone", remote_url, bob).exit_code == 0
    assert run("clone", remote_url, dan).exit_code == 0
    dan_v2 = Path(ModelRegistry(dan).get("m", "v2")["file_path"])
    assert dan_v2.exists()
    run("-C", bob, "tag", "m@v2", "mine")  # a local tag needs m@v2
    assert run("-C", alice, "rm", "--remote", "origin", "m@v2").exit_code == 0

    r = run("-C", dan, "pull")
    assert r.exit_code == 0, r.output
    assert "  dropped m@v2 (removed on origin)" in r.output
    assert [v["version"] for v in ModelRegistry(dan).list("m")] == ["v1", "v3"]
    assert not dan_v2.exists()  # its checkout went with it
    r = run("-C", dan, "pull")
    assert r.exit_code == 0 and "dropped" not in r.output
    assert [v["version"] for v in ModelRegistry(dan).list("m")] == ["v1", "v3"]

    r = run("-C", bob, "pull")
    assert r.exit_code == 0, r.output
    assert r.stderr.splitlines() == [
        "warning: kept m@v2: it was removed on origin, but tag 'mine' here needs it; it "
        "cannot be pushed again: 'modelreg rm m@v2' before pushing m"
    ]
    assert "v2" in [v["version"] for v in ModelRegistry(bob).list("m")]


def test_a_local_unpublished_child_keeps_the_removed_version(
    alice: Path, remote_url: str, run: CliRun, tmp_path: Path
) -> None:
    register(run, alice, 1)
    register(run, alice, 2)
    assert run("-C", alice, "push").exit_code == 0
    bob = tmp_path / "bob"
    assert run("clone", remote_url, bob).exit_code == 0
    register(run, bob, 9)  # m@v3, parent m@v2, never pushed
    assert run("-C", alice, "rm", "--remote", "origin", "m@v2").exit_code == 0
    r = run("-C", bob, "pull")
    assert r.exit_code == 0, r.output
    assert r.stderr.splitlines() == [
        "warning: kept m@v2: it was removed on origin, but your unpublished m@v3 needs it; it "
        "cannot be pushed again: 'modelreg rm m@v2' before pushing m"
    ]
    assert [v["version"] for v in ModelRegistry(bob).list("m")] == ["v1", "v2", "v3"]
    r = run("-C", bob, "push")
    assert r.exit_code == 1 and "m@v2 was removed there" in r.stderr
    assert run("-C", bob, "rm", "m@v2").exit_code == 0  # as the warning says
    r = run("-C", bob, "push")
    assert r.exit_code == 0, r.output
    carol = tmp_path / "carol"
    assert run("clone", remote_url, carol).exit_code == 0
    got = Path(ModelRegistry(carol).get("m", "v3")["file_path"])
    assert hash_file(got) == hash_file(tmp_path / "w9.bin")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("gc", "--remote", "nope"), "error: no remote named 'nope'"),
        (("gc", "--remote", "origin", "--grace", "soon"), "error: 'soon' is not a duration"),
        (("rm", "--remote", "nope", "m@v1"), "error: no remote named 'nope'"),
        (("rm", "--remote", "origin", "m"), "error: say which version of 'm'"),
        (("rm", "--remote", "origin", "m@v7"), "error: remote origin: m has no version v7"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    alice: Path, remote_url: str, run: CliRun, args: tuple[str, ...], message: str
) -> None:
    register(run, alice, 1)
    assert run("-C", alice, "push").exit_code == 0
    keys = bucket_keys(remote_url)
    r = run("-C", alice, *args)
    assert r.exit_code == 1
    assert len(r.stderr.strip().splitlines()) <= 2  # the error, and its hint
    assert message in r.stderr
    assert bucket_keys(remote_url) == keys


def test_a_push_never_trusts_stale_tracking_of_a_version_collected_since(
    alice: Path, remote_url: str, run: CliRun, tmp_path: Path
) -> None:
    """Bob's tracking refs still name b@v1 after Alice removed and collected it; his new
    version of another family shares its bytes: the push must send them again."""
    shared = write_bytes(tmp_path / "shared.bin", SIZE, 42)
    assert run("-C", alice, "register", "b", shared).exit_code == 0
    assert run("-C", alice, "push").exit_code == 0
    bob = tmp_path / "bob"
    assert run("clone", remote_url, bob).exit_code == 0
    assert run("-C", alice, "rm", "--remote", "origin", "b@v1").exit_code == 0
    assert run("-C", alice, "gc", "--remote", "origin", "--grace", "0").exit_code == 0
    assert run("-C", bob, "register", "a", shared).exit_code == 0
    r = run("-C", bob, "push", "a")
    assert r.exit_code == 0, r.output
    carol = tmp_path / "carol"
    assert run("clone", remote_url, carol).exit_code == 0
    got = Path(ModelRegistry(carol).get("a", "v1")["file_path"])
    assert hash_file(got) == hash_file(shared)


def test_a_corrupt_object_in_a_pack_to_repack_stops_gc_before_it_deletes_anything(
    tmp_path: Path, run: CliRun
) -> None:
    url = str(tmp_path / "remote")
    home = tmp_path / "alice"
    home.mkdir()
    run("init", home)
    run("-C", home, "remote", "add", "origin", url)
    for seed in (1, 2, 3):
        register(run, home, seed)
    assert run("-C", home, "push").exit_code == 0
    assert run("-C", home, "rm", "--remote", "origin", "m@v2").exit_code == 0
    (pack,) = Path(url, "packs").glob("*.pack")
    table = IndexTable(pack.with_suffix(".idx").read_bytes(), pack.stem[len("pack-") :])
    repo = Repository(home)
    v1: set[str] = set()
    needed_objects(repo.objects, repo.family("m").versions["v1"], lambda o: not v1.add(o))
    entry = max((table.find(oid) for oid in v1), key=lambda e: e.stored if e else 0)
    assert entry is not None and entry.stored > 1000
    pack.chmod(0o644)
    data = bytearray(pack.read_bytes())
    data[entry.offset + entry.stored // 2] ^= 0xFF  # inside one of v1's chunks
    pack.write_bytes(bytes(data))
    keys = bucket_keys(url)
    r = run("-C", home, "gc", "--remote", "origin", "--grace", "0")
    assert r.exit_code == 1
    assert "is corrupt" in r.stderr and "deleted nothing" in r.stderr
    assert bucket_keys(url) == keys


def test_a_remote_file_gc_cannot_read_stops_it_before_it_deletes_anything(
    alice: Path, remote_url: str, run: CliRun
) -> None:
    """A signatures file that is not JSON could name bundles: gc must not guess."""
    two_pushed_and_v2_removed(run, alice)
    open_remote(remote_url).write_side("signatures/m.json", b"{not json", None)
    keys = bucket_keys(remote_url)
    r = run("-C", alice, "gc", "--remote", "origin", "--grace", "0")
    assert r.exit_code == 1
    assert r.stderr.startswith(
        "error: remote origin: signatures/m.json is not JSON; gc --remote deleted nothing"
    )
    assert bucket_keys(remote_url) == keys


def test_loose_objects_of_old_remotes_go_when_no_ref_reaches_them(
    alice: Path, remote_url: str, run: CliRun
) -> None:
    from modelreg.hashing import oid_of

    register(run, alice, 1)
    assert run("-C", alice, "push").exit_code == 0
    remote = open_remote(remote_url)
    record = Repository(alice).family("m").versions["v1"]
    remote.put_object(record, Repository(alice).objects.get(record))  # live, also loose
    junk = b"an object no version names"
    remote.put_object(oid_of(junk), junk)
    assert len(remote.list_objects()) == 2

    r = run("-C", alice, "gc", "--remote", "origin")  # both are younger than an hour
    assert r.exit_code == 0 and "deleting 0 other keys" in r.output
    r = run("-C", alice, "gc", "--remote", "origin", "--grace", "0")
    assert r.exit_code == 0 and "deleting 1 other key" in r.output
    assert remote.list_objects() == {record}
