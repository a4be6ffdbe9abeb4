"""Tag history (who, when, from, to, why), protected tags, and who registered a version:
through the CLI and the API, and through push and pull (folder and S3 remotes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelreg import ModelRegistry
from modelreg.refs import FamilyRefs
from modelreg.remotes import open_remote

from .conftest import CliRun, write_bytes


@pytest.fixture(autouse=True)
def _who(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELREG_USER", "alice")
    monkeypatch.setenv("MODELREG_HOST", "gpu-01")


def _three(root: Path, run: CliRun) -> None:
    for seed in (1, 2, 3):
        src = write_bytes(root.parent / f"{root.name}-{seed}.bin", 3000, seed)
        assert run("-C", root, "register", "m", src).exit_code == 0


def _history(run: CliRun, root: Path, *args: str) -> list[dict]:
    r = run("-C", root, "tag", "--history", "m", *args, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_every_tag_move_is_recorded_with_who_when_from_to_and_why(
    repo_dir: Path, run: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    _three(repo_dir, run)
    run("tag", "m@v1", "production", "-m", "first release")
    monkeypatch.setenv("MODELREG_USER", "bob")
    run("tag", "m@v2", "production")
    run("tag", "m@v2", "production")  # already there: nothing happens, nothing recorded
    run("tag", "m@v3", "candidate")
    run("tag", "-d", "m", "production", "-m", "rolled back")
    events = _history(run, repo_dir)
    assert [(e["tag"], e["op"], e["from"], e["to"], e["by"], e["message"]) for e in events] == [
        ("production", "create", None, "v1", "alice", "first release"),
        ("production", "move", "v1", "v2", "bob", None),
        ("candidate", "create", None, "v3", "bob", None),
        ("production", "delete", "v2", None, "bob", "rolled back"),
    ]
    assert {e["host"] for e in events} == {"gpu-01"}
    assert len({e["id"] for e in events}) == 4 and all(e["at"].endswith("+00:00") for e in events)
    assert [e["op"] for e in _history(run, repo_dir, "candidate")] == ["create"]
    text = run("tag", "--history", "m", "production").stdout.splitlines()
    assert len(text) == 3
    assert text[0].endswith("production created at v1 by alice@gpu-01: first release")
    assert text[1].endswith("production moved v1 -> v2 by bob@gpu-01")
    assert ModelRegistry(repo_dir).tag_history("m", "production") == [
        e for e in events if e["tag"] == "production"
    ]


def test_who_registered_each_version_is_in_its_record(repo_dir: Path, run: CliRun) -> None:
    _three(repo_dir, run)
    rows = json.loads(run("list", "m", "--json").stdout)
    assert [r["registered_by"] for r in rows] == ["alice@gpu-01"] * 3
    assert json.loads(run("show", "m@v2", "--json").stdout)["registered_by"] == "alice@gpu-01"
    assert ModelRegistry(repo_dir).get("m", "v1")["registered_by"] == "alice@gpu-01"


def test_a_protected_tag_moves_only_with_force_and_the_force_is_recorded(
    repo_dir: Path, run: CliRun
) -> None:
    _three(repo_dir, run)
    run("tag", "m@v1", "production")
    r = run("tag", "--protect", "m", "production")
    assert r.exit_code == 0 and "is protected" in r.stdout
    assert run("tag", "m").stdout.splitlines() == ["production -> v1 (protected)"]
    for args in (("m@v2", "production"), ("-d", "m", "production")):
        r = run("tag", *args)
        assert r.exit_code == 1
        assert r.stderr.splitlines() == [
            f"error: tag 'production' of m is protected (it points at v1); pass --force to "
            f"{'delete' if args[0] == '-d' else 'move'} it anyway, or 'modelreg tag "
            "--unprotect m production' first"
        ]
    assert ModelRegistry(repo_dir).get("m", "production")["version"] == "v1"
    with pytest.raises(Exception, match="is protected"):
        ModelRegistry(repo_dir).tag("m", "v3", "production")
    r = run("register", "m", repo_dir.parent / "project-1.bin", "--tag", "production")
    assert r.exit_code == 1 and "tag 'production' of m is protected" in r.stderr
    assert len(ModelRegistry(repo_dir).list("m")) == 3  # nothing published
    assert run("tag", "m@v2", "production", "--force", "-m", "hotfix").exit_code == 0
    last = _history(run, repo_dir, "production")[-1]
    assert (last["op"], last["from"], last["to"], last["forced"], last["message"]) == (
        "move",
        "v1",
        "v2",
        True,
        "hotfix",
    )
    assert run("tag", "--unprotect", "m", "production").exit_code == 0
    assert run("tag", "m@v3", "production").exit_code == 0
    ops = [e["op"] for e in _history(run, repo_dir, "production")]
    assert ops == ["create", "protect", "move", "unprotect", "move"]


def test_bad_tag_history_input_is_one_clear_line(repo_dir: Path, run: CliRun) -> None:
    _three(repo_dir, run)
    r = run("tag", "m@v1", "production", "-m", "x" * 1001)
    assert r.exit_code == 1 and r.stderr.count("\n") == 1 and "at most 1000 characters" in r.stderr
    r = run("tag", "--history", "--protect", "m", "production")
    assert r.exit_code == 2 and "cannot be used together" in r.stderr
    r = run("tag", "--history", "nope")
    assert r.exit_code == 1 and "no model named 'nope'" in r.stderr
    r = run("tag", "--protect", "m")
    assert r.exit_code == 2 and "needs NAME and TAG" in r.stderr


def _remote_refs(url: str) -> FamilyRefs:
    got = open_remote(url).read_ref("m")
    assert got is not None
    return FamilyRefs.from_yaml("m", got[0], url)


def test_history_travels_with_push_and_pull_and_merges_without_loss(
    tmp_path: Path, remote_url: str, run: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = tmp_path / "alice"
    run("init", alice)
    _three(alice, run)
    run("-C", alice, "tag", "m@v1", "production", "-m", "release 1")
    run("-C", alice, "remote", "add", "origin", remote_url)
    assert run("-C", alice, "push").exit_code == 0
    monkeypatch.setenv("MODELREG_USER", "bob")
    assert run("clone", remote_url, tmp_path / "bob").exit_code == 0
    bob = tmp_path / "bob"
    assert [e["message"] for e in _history(run, bob)] == ["release 1"]
    # both record events at once, on different tags
    run("-C", bob, "tag", "m@v2", "staging", "-m", "bob's")
    monkeypatch.setenv("MODELREG_USER", "alice")
    run("-C", alice, "tag", "m@v3", "canary", "-m", "alice's")
    assert run("-C", bob, "push").exit_code == 0
    r = run("-C", alice, "push")
    assert r.exit_code == 0, r.output  # no conflict: the events merge
    assert run("-C", bob, "pull").exit_code == 0
    assert run("-C", alice, "pull").exit_code == 0
    want = ["release 1", "bob's", "alice's"]
    for root in (alice, bob):
        assert sorted(str(e["message"]) for e in _history(run, root)) == sorted(want)
    assert sorted(str(e["message"]) for e in _remote_refs(remote_url).history) == sorted(want)
    assert ModelRegistry(alice).get("m", "staging")["version"] == "v2"


def test_push_refuses_to_move_a_tag_protected_on_the_remote_without_force(
    tmp_path: Path, remote_url: str, run: CliRun
) -> None:
    alice = tmp_path / "alice"
    run("init", alice)
    _three(alice, run)
    run("-C", alice, "tag", "m@v1", "production")
    run("-C", alice, "tag", "--protect", "m", "production")
    run("-C", alice, "remote", "add", "origin", remote_url)
    assert run("-C", alice, "push").exit_code == 0
    assert _remote_refs(remote_url).protected == ["production"]
    assert run("clone", remote_url, tmp_path / "bob").exit_code == 0
    bob = tmp_path / "bob"
    assert run("-C", bob, "tag", "m@v2", "production").exit_code == 1  # protected here too
    # bob lifts it locally, moves it: the remote still protects it
    assert run("-C", bob, "tag", "--unprotect", "m", "production").exit_code == 0
    assert run("-C", bob, "tag", "m@v2", "production").exit_code == 0
    r = run("-C", bob, "push")
    assert r.exit_code == 1
    assert r.stderr.splitlines() == [
        "error: tag 'production' of m is protected on origin (it points at v1 there); "
        "'modelreg push --force' moves it anyway (the history records it)"
    ]
    assert _remote_refs(remote_url).tags["production"] == "v1"
    assert run("-C", bob, "push", "--force").exit_code == 0
    theirs = _remote_refs(remote_url)
    assert theirs.tags["production"] == "v2"
    assert [e["op"] for e in theirs.history if e["tag"] == "production"] == [
        "create",
        "protect",
        "unprotect",
        "move",
    ]
    assert theirs.protected == []  # bob's unprotect is the latest protection event
