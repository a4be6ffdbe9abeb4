"""Never overwrite a teammate: tags moved on both sides are conflicts, tracking refs do not
claim what this registry never published, and a pushed version's parent is the one meant.
Each runs against a folder remote and an S3 remote (moto on 127.0.0.1), through the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelreg import ModelRegistry
from modelreg.hashing import hash_file
from modelreg.refs import FamilyRefs
from modelreg.remotes import open_remote

from .conftest import CliRun, write_bytes


def remote_refs(url: str, family: str = "m") -> FamilyRefs:
    got = open_remote(url).read_ref(family)
    assert got is not None
    return FamilyRefs.from_yaml(family, got[0], url)


@pytest.fixture
def team(tmp_path: Path, remote_url: str, run: CliRun) -> tuple[Path, Path]:
    """Alice published m@v1..v3 with production at v1; Bob cloned it."""
    alice = tmp_path / "alice"
    alice.mkdir()
    run("init", str(alice))
    for seed in (1, 2, 3):
        run("-C", alice, "register", "m", write_bytes(tmp_path / f"{seed}.bin", 20_000, seed))
    run("-C", alice, "tag", "m@v1", "production")
    run("-C", alice, "remote", "add", "origin", remote_url)
    assert run("-C", alice, "push").exit_code == 0
    assert run("clone", remote_url, tmp_path / "bob").exit_code == 0
    return alice, tmp_path / "bob"


def test_a_tag_moved_on_both_sides_is_a_conflict_that_pull_reports_and_push_refuses(
    team: tuple[Path, Path], remote_url: str, run: CliRun
) -> None:
    alice, bob = team
    run("-C", bob, "tag", "m@v2", "production")
    assert run("-C", bob, "push").exit_code == 0
    run("-C", alice, "tag", "m@v3", "production")

    r = run("-C", alice, "pull")
    assert r.exit_code == 0, r.output
    assert r.stderr.splitlines() == [
        "conflict: tag 'production' of m is v3 here and v2 on origin; both kept: move the tag "
        "here to the remote's value, or publish yours with 'modelreg push --force'"
    ]
    assert ModelRegistry(alice).get("m", "production")["version"] == "v3"
    assert remote_refs(remote_url).tags["production"] == "v2"

    for _ in range(2):  # a second pull does not settle it either
        r = run("-C", alice, "push")
        assert r.exit_code == 1
        assert r.stderr.count("\n") == 1
        assert "tag 'production' of m is v3 here and v2 on origin" in r.stderr
        assert "'modelreg tag m@v2 production'" in r.stderr and "push --force" in r.stderr
        assert remote_refs(remote_url).tags["production"] == "v2"
        assert "conflict: tag 'production'" in run("-C", alice, "pull").stderr

    r = run("-C", alice, "push", "--force")
    assert r.exit_code == 0 and "m@v3:production" in r.stdout
    assert remote_refs(remote_url).tags["production"] == "v3"
    r = run("-C", bob, "pull")
    assert r.exit_code == 0 and r.stderr == ""
    assert ModelRegistry(bob).get("m", "production")["version"] == "v3"


def test_taking_the_remotes_value_settles_a_conflict(
    team: tuple[Path, Path], remote_url: str, run: CliRun
) -> None:
    alice, bob = team
    run("-C", bob, "tag", "m@v2", "production")
    run("-C", bob, "push")
    run("-C", alice, "tag", "m@v3", "production")
    run("-C", alice, "pull")
    run("-C", alice, "tag", "m@v2", "production")
    assert run("-C", alice, "pull").stderr == ""
    assert run("-C", alice, "push").exit_code == 0
    assert remote_refs(remote_url).tags["production"] == "v2"


@pytest.mark.parametrize("deleter", ["here", "there"])
def test_a_tag_deleted_on_one_side_and_moved_on_the_other_is_a_conflict(
    team: tuple[Path, Path], remote_url: str, run: CliRun, deleter: str
) -> None:
    alice, bob = team
    if deleter == "there":
        run("-C", bob, "tag", "-d", "m", "production")
        run("-C", bob, "push")
        run("-C", alice, "tag", "m@v3", "production")
        said, there, hint = "v3 here and deleted on origin", None, "'modelreg tag -d m production'"
    else:
        run("-C", bob, "tag", "m@v2", "production")
        run("-C", bob, "push")
        run("-C", alice, "tag", "-d", "m", "production")
        said, there, hint = "deleted here and v2 on origin", "v2", "'modelreg tag m@v2 production'"
    r = run("-C", alice, "pull")
    assert r.exit_code == 0
    assert f"conflict: tag 'production' of m is {said}" in r.stderr
    r = run("-C", alice, "push")
    assert r.exit_code == 1 and said in r.stderr and hint in r.stderr
    assert remote_refs(remote_url).tags.get("production") == there
    assert run("-C", alice, "push", "--force").exit_code == 0
    assert remote_refs(remote_url).tags.get("production") == (None if there else "v3")


def test_a_tag_moved_only_on_the_remote_survives_a_push_from_behind(
    team: tuple[Path, Path], remote_url: str, run: CliRun, tmp_path: Path
) -> None:
    alice, bob = team
    run("-C", bob, "tag", "m@v2", "production")
    run("-C", bob, "push")
    run("-C", alice, "register", "m", write_bytes(tmp_path / "4.bin", 20_000, 4))
    r = run("-C", alice, "push")
    assert r.exit_code == 0, r.output
    assert remote_refs(remote_url).tags["production"] == "v2"
    r = run("-C", alice, "pull")
    assert r.stderr == "" and "m@v2:production" in r.stdout
    assert ModelRegistry(alice).get("m", "production")["version"] == "v2"


def test_pushing_one_version_does_not_claim_the_remotes_versions_as_published(
    team: tuple[Path, Path], remote_url: str, run: CliRun, tmp_path: Path
) -> None:
    alice, bob = team
    run("-C", bob, "register", "m", write_bytes(tmp_path / "bob.bin", 20_000, 10))
    assert run("-C", bob, "push").exit_code == 0  # bob's m@v4
    run("-C", alice, "register", "m", write_bytes(tmp_path / "alice.bin", 20_000, 11))
    assert run("-C", alice, "push", "m@v1").exit_code == 0  # nothing to send
    r = run("-C", alice, "pull")
    assert r.exit_code == 0, r.output
    assert "renumbered your unpublished m@v4 as m@v5" in r.stdout
    assert run("-C", alice, "push").exit_code == 0
    versions = remote_refs(remote_url).versions
    got = ModelRegistry(alice)
    assert got.get("m", "v4")["content_hash"] == hash_file(tmp_path / "bob.bin")
    assert got.get("m", "v5")["content_hash"] == hash_file(tmp_path / "alice.bin")
    assert got.get("m", "v5")["parent"] == "m@v3"
    assert versions == got.repo.family("m").versions


def test_pushing_a_version_sends_its_unpublished_parent_too(
    team: tuple[Path, Path], remote_url: str, run: CliRun, tmp_path: Path
) -> None:
    alice, bob = team
    run("-C", alice, "register", "m", write_bytes(tmp_path / "a4.bin", 20_000, 20))
    run("-C", alice, "register", "m", write_bytes(tmp_path / "a5.bin", 20_000, 21))
    r = run("-C", alice, "push", "m@v5")
    assert r.exit_code == 0 and "m@v4" in r.stdout and "m@v5" in r.stdout
    assert set(remote_refs(remote_url).versions) == {"v1", "v2", "v3", "v4", "v5"}

    run("-C", bob, "register", "m", write_bytes(tmp_path / "b4.bin", 20_000, 22))
    r = run("-C", bob, "push")
    assert r.exit_code == 1 and "it has a different m@v4" in r.stderr
    assert "renumbered your unpublished m@v4 as m@v6" in run("-C", bob, "pull").stdout
    assert run("-C", bob, "push").exit_code == 0
    got = ModelRegistry(bob)
    assert got.get("m", "v5")["parent"] == "m@v4"
    assert got.get("m", "v4")["content_hash"] == hash_file(tmp_path / "a4.bin")
    assert got.get("m", "v6")["parent"] == "m@v3"


def test_push_and_pull_print_totals_with_throughput(
    team: tuple[Path, Path], run: CliRun, tmp_path: Path
) -> None:
    alice, bob = team
    run("-C", alice, "register", "m", write_bytes(tmp_path / "t.bin", 300_000, 30))
    r = run("-C", alice, "push")
    assert re.search(
        r"^Sent \d+ objects \(\d+\.\d KiB\) to origin in \d+\.\d s \(.+/s\)"
        r"(; .+ these versions need were there already \(not sent\))?$",
        r.stdout,
        re.M,
    ), r.stdout
    r = run("-C", bob, "pull", "--full")
    assert re.search(
        r"^Received \d+ objects \(\d+\.\d KiB\) from origin in \d+\.\d s \(.+/s\)$", r.stdout, re.M
    ), r.stdout


def test_a_parent_in_another_family_is_pushed_with_it_and_follows_a_renumbering(
    team: tuple[Path, Path], remote_url: str, run: CliRun, tmp_path: Path
) -> None:
    alice, bob = team
    run("-C", alice, "register", "m", write_bytes(tmp_path / "a4.bin", 20_000, 40))
    run("-C", alice, "register", "n", tmp_path / "1.bin", "--parent", "m@v4")
    r = run("-C", alice, "push", "n")
    assert r.exit_code == 0 and "m@v4" in r.stdout and "n@v1" in r.stdout
    assert (
        remote_refs(remote_url).versions["v4"]
        == ModelRegistry(alice).repo.family("m").versions["v4"]
    )

    run("-C", bob, "register", "m", write_bytes(tmp_path / "b4.bin", 20_000, 41))
    run("-C", bob, "register", "k", tmp_path / "2.bin", "--parent", "m@v4")
    r = run("-C", bob, "pull")
    assert r.exit_code == 0, r.output
    assert "renumbered your unpublished m@v4 as m@v5" in r.stdout
    assert "k@v1: parent m@v4 is now m@v5" in r.stdout
    got = ModelRegistry(bob)
    assert got.get("k", "v1")["parent"] == "m@v5"
    assert got.get("m", "v5")["content_hash"] == hash_file(tmp_path / "b4.bin")
    assert run("-C", bob, "fsck").exit_code == 0


def test_a_folder_under_the_remotes_refs_is_skipped_with_a_warning(
    team: tuple[Path, Path], tmp_path: Path, run: CliRun
) -> None:
    alice, _bob = team
    remote = tmp_path / "plain-remote"
    run("-C", alice, "remote", "add", "plain", remote)
    assert run("-C", alice, "push", "plain").exit_code == 0
    (remote / "refs" / "odd.yaml").mkdir()
    run("init", tmp_path / "carol")
    run("-C", tmp_path / "carol", "remote", "add", "origin", remote)
    r = run("-C", tmp_path / "carol", "pull")
    assert r.exit_code == 0, r.output
    assert r.stderr == (
        "warning: refs file refs/odd.yaml on remote origin is a folder, not a regular file; "
        "skipped it\n"
    )
    assert ModelRegistry(tmp_path / "carol").list_families() == ["m"]


def test_the_api_push_takes_force_too(tmp_path: Path) -> None:
    from modelreg.errors import RemoteMovedError

    remote = str(tmp_path / "remote")
    alice = ModelRegistry(tmp_path / "alice")
    alice.register("m", write_bytes(tmp_path / "a.bin", 100))
    alice.register("m", write_bytes(tmp_path / "b.bin", 100, seed=1))
    alice.add_remote("origin", remote)
    alice.push()
    bob = ModelRegistry.clone(remote, tmp_path / "bob")
    bob.tag("m", "v1", "production")
    bob.push()
    alice.tag("m", "v2", "production")
    with pytest.raises(RemoteMovedError):
        alice.push()
    alice.push(force=True)
    bob.pull()
    assert bob.get("m", "production")["version"] == "v2"
