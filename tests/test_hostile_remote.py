"""A compromised remote: nothing it sends is believed. Junk refs files are skipped with a
warning, malformed or forged objects are refused with one line naming the remote and the
object, and nothing local changes. Against a folder remote and an S3 remote (moto)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from modelreg import ModelRegistry
from modelreg.hashing import oid_of
from modelreg.objects import canonical_json
from modelreg.refs import FamilyRefs
from modelreg.remotes import open_remote
from modelreg.remotes.s3 import S3Remote

from .conftest import CliRun, tree_snapshot, write_bytes


class _RunsCode:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("echo owned",))


def put_raw(url: str, key: str, data: bytes) -> None:
    """Write any bytes under any key, as someone with write access to the remote could."""
    remote = open_remote(url)
    if isinstance(remote, S3Remote):
        remote.client.put_object(Bucket=remote.bucket, Key=remote.prefix + key, Body=data)
        return
    path = Path(url).joinpath(*key.split("/"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def put_json(url: str, obj: dict[str, Any]) -> str:
    body = canonical_json(obj)
    open_remote(url).put_object(oid_of(body), body)
    return oid_of(body)


def point(url: str, family: str, version: str, oid: str) -> None:
    remote = open_remote(url)
    got = remote.read_ref(family)
    assert got is not None
    refs = FamilyRefs.from_yaml(family, got[0], url)
    refs.versions[version] = oid
    remote.write_ref(family, refs.to_yaml(), got[1])


@pytest.fixture
def alice(tmp_path: Path, remote_url: str) -> ModelRegistry:
    """A registry that published m@v1 (a benign pickle) and d@v1 (a folder)."""
    registry = ModelRegistry(tmp_path / "alice")
    good = tmp_path / "good.pkl"
    good.write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=2))
    registry.register("m", good)
    folder = tmp_path / "folder"
    folder.mkdir()
    write_bytes(folder / "w.bin", 20_000)
    registry.register("d", folder)
    registry.add_remote("origin", remote_url)
    registry.push()
    return registry


@pytest.fixture
def bob(tmp_path: Path, remote_url: str, run: CliRun) -> Path:
    bob = tmp_path / "bob"
    run("init", bob)
    run("-C", bob, "remote", "add", "origin", remote_url)
    return bob


def _refused(run: CliRun, bob: Path, message: str) -> None:
    before = tree_snapshot(bob / ".modelreg" / "refs")
    r = run("-C", bob, "pull")
    assert r.exit_code == 1
    assert r.stderr.startswith("error: remote origin: ") and r.stderr.count("\n") == 1, r.stderr
    assert message in r.stderr and "internal error" not in r.stderr
    assert tree_snapshot(bob / ".modelreg" / "refs") == before


def _alias_bomb(depth: int) -> bytes:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, depth + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    lines += ["name: bomb", f"versions: *a{depth}"]
    return "\n".join(lines).encode()


def test_junk_refs_files_are_skipped_with_a_warning_and_the_rest_is_pulled(
    alice: ModelRegistry, remote_url: str, run: CliRun, tmp_path: Path
) -> None:
    put_raw(remote_url, "refs/bomb.yaml", _alias_bomb(6))
    put_raw(remote_url, "refs/Bad name!.yaml", b"name: x\n")
    put_raw(remote_url, "refs/broken.yaml", b"versions: [oops")
    r = run("clone", remote_url, tmp_path / "bob")
    assert r.exit_code == 0, r.output
    assert sorted(r.stderr.splitlines()) == [
        "warning: refs file refs/Bad name!.yaml on remote origin has no valid model name; "
        "skipped it",
        "warning: refs file refs/bomb.yaml on remote origin is refused: it uses YAML anchors "
        "or aliases, which modelreg never writes; skipped it",
        "warning: refs file refs/broken.yaml on remote origin is damaged; skipped it",
    ]
    assert ModelRegistry(tmp_path / "bob").list_families() == ["d", "m"]
    r = run("-C", tmp_path / "bob", "pull", "bomb")
    assert r.exit_code == 1 and r.stderr.count("\n") == 1
    assert "refs file refs/bomb.yaml on remote origin is refused: it uses YAML" in r.stderr


def test_an_oversized_refs_file_is_skipped_unread(
    alice: ModelRegistry, remote_url: str, run: CliRun, bob: Path
) -> None:
    put_raw(remote_url, "refs/huge.yaml", b"#" * ((16 << 20) + 1))
    r = run("-C", bob, "pull")
    assert r.exit_code == 0, r.output
    assert "refs file refs/huge.yaml on remote " in r.stderr
    assert "is larger than 16 MiB; skipped it" in r.stderr
    assert ModelRegistry(bob).list_families() == ["d", "m"]


def _forge(alice: ModelRegistry, url: str, how: str) -> str:
    """Publish a forged m@v2 made from m@v1; return the id of the object that is wrong."""
    rec = alice.repo.record(alice.repo.family("m").versions["v1"])
    rec["version"] = "v2"
    if how == "root is a list":
        rec["root"] = [rec["root"]]
    elif how == "file kind on a tree":
        rec["root"] = alice.repo.lookup("d@v1")["root"]
    elif how in ("source ../x", "source a/b"):
        rec["source"] = how.split()[1]
    elif how == "metrics a list":
        rec["metrics"] = [0.9]
    elif how == "parent a tag":
        rec["parent"] = "m@production"
    elif how == "parts do not add up":
        manifest = alice.repo.objects.get_json(rec["root"])
        manifest["size"] += 1
        rec["root"] = put_json(url, manifest)
        rec["size"] += 1
        oid = put_json(url, rec)
        point(url, "m", "v2", oid)
        return str(rec["root"])
    oid = put_json(url, rec)
    point(url, "m", "v2", oid)
    return oid


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("root is a list", "is not a well-formed version record: its root ["),
        ("file kind on a tree", "is not a well-formed version record: its kind is file but its"),
        ("source ../x", "is not a well-formed version record: its source '../x' is not a plain"),
        ("source a/b", "is not a well-formed version record: its source 'a/b' is not a plain"),
        ("parts do not add up", "is not a well-formed file manifest: its parts add up to"),
        ("metrics a list", "is not a well-formed version record: its metrics has the wrong"),
        ("parent a tag", "is not a well-formed version record: its parent 'm@production' is"),
    ],
)
def test_a_malformed_object_is_one_line_naming_the_remote_and_the_object(
    alice: ModelRegistry, remote_url: str, run: CliRun, bob: Path, how: str, message: str
) -> None:
    wrong = _forge(alice, remote_url, how)
    _refused(run, bob, f"m@v2: object {wrong} {message}")


@pytest.fixture
def evil(alice: ModelRegistry, tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """m@v2 is a pickle that runs code, published honestly; (its record, m@v1's record)."""
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps(_RunsCode(), protocol=2))
    with pytest.warns(UserWarning):
        alice.register("m", bad)
    alice.push()
    refs = alice.repo.family("m")
    return alice.repo.record(refs.versions["v2"]), alice.repo.record(refs.versions["v1"])


@pytest.mark.parametrize("claim", ["inspect", "content_hash"])
def test_clone_refuses_a_record_that_claims_the_benign_models_verdict(
    evil: tuple[dict[str, Any], dict[str, Any]],
    remote_url: str,
    run: CliRun,
    tmp_path: Path,
    claim: str,
) -> None:
    bad, good = evil
    assert bad["inspect"]["safety"] == "unsafe" and good["inspect"]["safety"] == "safe"
    forged = {**bad, "inspect": good["inspect"]}
    if claim == "content_hash":
        forged["content_hash"] = good["content_hash"]
    oid = put_json(remote_url, forged)
    point(remote_url, "m", "v2", oid)
    r = run("clone", remote_url, tmp_path / "victim")
    assert r.exit_code == 1 and r.stderr.count("\n") == 1
    said = (
        "it claims inspect verdict 'safe'; its content gives 'unsafe'"
        if claim == "inspect"
        else f"it claims content_hash '{good['content_hash']}'"
    )
    assert f"error: remote origin: m@v2: record {oid} is refused: {said}" in r.stderr
    assert not (tmp_path / "victim").exists()


def test_one_record_filed_under_two_numbers_is_refused(
    alice: ModelRegistry, remote_url: str, run: CliRun, bob: Path
) -> None:
    point(remote_url, "m", "v2", alice.repo.family("m").versions["v1"])
    _refused(run, bob, "m@v2 names a record of m@v1")


def test_a_tree_with_a_path_out_of_its_folder_is_refused(
    alice: ModelRegistry, remote_url: str, run: CliRun, bob: Path
) -> None:
    rec = alice.repo.lookup("d@v1")
    tree = alice.repo.objects.get_json(rec["root"])
    tree["entries"]["../evil.bin"] = tree["entries"]["w.bin"]
    rec = {k: v for k, v in rec.items() if k != "tags"}
    rec["version"], rec["root"] = "v2", put_json(remote_url, tree)
    point(remote_url, "d", "v2", put_json(remote_url, rec))
    _refused(run, bob, f"d@v2: object {rec['root']} is not a well-formed tree: it has an unsafe")


def test_a_manifest_too_large_to_be_one_is_refused_before_it_is_parsed(
    alice: ModelRegistry, remote_url: str, run: CliRun, bob: Path
) -> None:
    huge = b" " * ((64 << 20) + 1)
    open_remote(remote_url).put_object(oid_of(huge), huge)
    rec = alice.repo.record(alice.repo.family("m").versions["v1"])
    rec["version"], rec["root"] = "v2", oid_of(huge)
    point(remote_url, "m", "v2", put_json(remote_url, rec))
    _refused(run, bob, f"object {oid_of(huge)} is larger than 64 MiB, too large for a record")
