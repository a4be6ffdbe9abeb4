"""A compromised remote: nothing it sends is believed. Junk refs files are skipped with a
warning, malformed or forged objects are refused with one line naming the remote and the
object, and nothing local changes. Against a folder remote and an S3 remote (moto)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
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
from .remote_packs import rewrite_remote, unpack_remote


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


def _publish_alice(tmp_path: Path, remote_url: str) -> ModelRegistry:
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
def alice(tmp_path: Path, remote_url: str) -> ModelRegistry:
    return _publish_alice(tmp_path, remote_url)


@pytest.fixture
def bob(tmp_path: Path, remote_url: str, run: CliRun) -> Path:
    bob = tmp_path / "bob"
    run("init", bob)
    run("-C", bob, "remote", "add", "origin", remote_url)
    return bob


SKIPPED = (
    "; skipped family {} (the registry that pushed it can replace the remote's copy with "
    "'modelreg push --force')"
)


def _refused(run: CliRun, bob: Path, message: str, family: str = "m", other: str = "d") -> None:
    """Pulling everything skips the family with one warning and pulls the others; pulling
    that family by name is a one-line error that changes nothing."""
    r = run("-C", bob, "pull")
    assert r.exit_code == 0, r.output
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: remote origin: "), r.stderr
    assert message in lines[0] and lines[0].endswith(SKIPPED.format(family)), lines[0]
    assert ModelRegistry(bob).list_families() == [other]
    before = tree_snapshot(bob / ".modelreg")
    r = run("-C", bob, "pull", family)
    assert r.exit_code == 1
    assert r.stderr.startswith("error: remote origin: ") and r.stderr.count("\n") == 1, r.stderr
    assert message in r.stderr and "internal error" not in r.stderr
    assert "'modelreg push --force'" in r.stderr
    assert tree_snapshot(bob / ".modelreg") == before


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
    r = run("clone", "--full", remote_url, tmp_path / "victim")
    assert r.exit_code == 0 and r.stderr.count("\n") == 1, r.output
    said = (
        "it claims inspect verdict 'safe'; its content gives 'unsafe'"
        if claim == "inspect"
        else f"it claims content_hash '{good['content_hash']}'"
    )
    assert r.stderr.startswith(f"warning: remote origin: m@v2: record {oid} is refused: {said}")
    assert r.stderr.endswith(SKIPPED.format("m") + "\n")
    assert ModelRegistry(tmp_path / "victim").list_families() == ["d"]


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
    _refused(
        run,
        bob,
        f"d@v2: object {rec['root']} is not a well-formed tree: it has an unsafe",
        family="d",
        other="m",
    )


def test_a_manifest_too_large_to_be_one_is_refused_before_it_is_parsed(
    alice: ModelRegistry, remote_url: str, run: CliRun, bob: Path
) -> None:
    huge = b" " * ((64 << 20) + 1)
    open_remote(remote_url).put_object(oid_of(huge), huge)
    rec = alice.repo.record(alice.repo.family("m").versions["v1"])
    rec["version"], rec["root"] = "v2", oid_of(huge)
    point(remote_url, "m", "v2", put_json(remote_url, rec))
    _refused(run, bob, f"object {oid_of(huge)} is larger than 64 MiB, too large for a record")


# --- a folder remote cannot hang a pull or make it read without end --------------------------


def _chunk_of(registry: ModelRegistry, spec: str = "d@v1") -> tuple[str, int]:
    """(id, length) of a chunk of ``spec``."""
    rec = registry.repo.lookup(spec)
    tree = registry.repo.objects.get_json(rec["root"])
    manifest = registry.repo.objects.get_json(next(iter(tree["entries"].values()))["manifest"])
    part = next(p for p in manifest["parts"] if "o" in p)
    return part["o"], part["n"]


def _cli(*args: object, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process: a hang is a failed test, not a hung suite."""
    return subprocess.run(
        [sys.executable, "-m", "modelreg", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


@pytest.fixture
def folder_alice(tmp_path: Path) -> tuple[ModelRegistry, Path]:
    """alice (m@v1, d@v1) pushed to a folder remote."""
    remote = tmp_path / "rem"
    return _publish_alice(tmp_path, str(remote)), remote


def test_a_fifo_under_the_remotes_refs_is_skipped_not_waited_on(
    folder_alice: tuple[ModelRegistry, Path], tmp_path: Path
) -> None:
    _alice, remote = folder_alice
    os.mkfifo(remote / "refs" / "fifo.yaml")
    os.symlink(remote / "refs" / "m.yaml", remote / "refs" / "link.yaml")
    r = _cli("clone", remote, tmp_path / "bob")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stderr.splitlines()) == [
        "warning: refs file refs/fifo.yaml on remote origin is a FIFO, not a regular file; "
        "skipped it",
        "warning: refs file refs/link.yaml on remote origin is a symbolic link, not a regular "
        "file; skipped it",
    ]
    assert ModelRegistry(tmp_path / "bob").list_families() == ["d", "m"]
    r = _cli("-C", tmp_path / "bob", "pull", "fifo")
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "refs/fifo.yaml on remote " in r.stderr and "is a FIFO, not a regular file" in r.stderr


@pytest.mark.parametrize("what", ["fifo", "link to /dev/zero", "link to a good copy"])
def test_an_object_that_is_not_a_regular_file_is_one_line_error(
    folder_alice: tuple[ModelRegistry, Path], tmp_path: Path, what: str
) -> None:
    alice, remote = folder_alice
    oid, _n = _chunk_of(alice)
    unpack_remote(str(remote))  # a remote written before packs: objects are loose files
    path = remote / "objects" / oid[:2] / oid[2:]
    copy = tmp_path / "copy"
    copy.write_bytes(path.read_bytes())
    path.unlink()
    if what == "fifo":
        os.mkfifo(path)
    else:
        os.symlink("/dev/zero" if what == "link to /dev/zero" else copy, path)
    r = _cli("clone", "--full", remote, tmp_path / "bob", timeout=30)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    kind = "a FIFO" if what == "fifo" else "a symbolic link"
    assert r.stderr.startswith(f"error: object {oid} on remote {remote} is {kind}, not a regular")
    assert not (tmp_path / "bob").exists()


@pytest.mark.parametrize("what", ["fifo", "link to /dev/zero"])
def test_a_pack_that_is_not_a_regular_file_is_one_line_error(
    folder_alice: tuple[ModelRegistry, Path], tmp_path: Path, what: str
) -> None:
    _alice, remote = folder_alice
    (name,) = open_remote(str(remote)).list_packs()
    path = remote / "packs" / f"pack-{name}.pack"
    path.unlink()
    if what == "fifo":
        os.mkfifo(path)
    else:
        os.symlink("/dev/zero", path)
    r = _cli("clone", remote, tmp_path / "bob", timeout=30)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    kind = "a FIFO" if what == "fifo" else "a symbolic link"
    assert r.stderr.startswith(f"error: packs/pack-{name}.pack on remote {remote} is {kind}")
    assert not (tmp_path / "bob").exists()


def test_a_packed_chunk_larger_than_its_manifest_says_is_not_read(
    alice: ModelRegistry, remote_url: str, run: CliRun, bob: Path
) -> None:
    oid, n = _chunk_of(alice)
    rewrite_remote(remote_url, {oid: b"\0" * (n + (8 << 20))})
    _refused(
        run,
        bob,
        f"d@v1: object {oid} is larger than the {n} bytes its manifest gives it",
        family="d",
        other="m",
    )


def test_a_pack_index_that_lies_about_lengths_is_refused(
    alice: ModelRegistry, remote_url: str, run: CliRun, bob: Path
) -> None:
    """An index whose entry gives a raw object more stored bytes than its size (a read that
    would run past the object) is refused before any byte of the pack is read."""
    from modelreg import packs
    from modelreg.remotes.base import MAX_INDEX_BYTES, pack_key

    oid, n = _chunk_of(alice)
    remote = open_remote(remote_url)
    (name,) = remote.list_packs()
    raw = remote.read_key(pack_key(name, "idx"), MAX_INDEX_BYTES)
    assert raw is not None
    table = packs.IndexTable(raw, name)
    entries = {o: e for o, e in table}
    e = entries[oid]
    entries[oid] = packs.Entry(e.offset, e.stored - 1, e.size, e.encoding, e.itemsize)
    index = packs.build_index(entries, 0, table.pack_size)
    forged = index[-packs.SUM_LEN :].hex()
    data = b"".join(remote.read_range(pack_key(name, "pack"), 0, table.pack_size))
    put_raw(remote_url, pack_key(forged, "pack"), data)
    put_raw(remote_url, pack_key(forged, "idx"), index)
    for ext in ("idx", "pack"):
        key = pack_key(name, ext)
        if remote_url.startswith("s3://"):
            remote.client.delete_object(Bucket=remote.bucket, Key=remote.prefix + key)  # type: ignore[attr-defined]
        else:
            os.unlink(Path(remote_url, *key.split("/")))
    r = run("-C", str(bob), "pull", "d")
    assert r.exit_code == 1
    assert f"gives object {oid} {n - 1} stored bytes for {n}" in r.output


def test_a_chunk_longer_than_its_manifest_says_is_not_read_past_it(
    alice: ModelRegistry, remote_url: str, run: CliRun, bob: Path
) -> None:
    oid, n = _chunk_of(alice)
    unpack_remote(remote_url)  # a remote written before packs: objects are loose keys
    put_raw(remote_url, f"objects/{oid[:2]}/{oid[2:]}", b"\0" * (n + (8 << 20)))
    _refused(
        run,
        bob,
        f"d@v1: object {oid} is larger than the {n} bytes its manifest gives it",
        family="d",
        other="m",
    )


@pytest.mark.parametrize("kind", ["folder", "s3"])
def test_a_remotes_object_is_read_only_up_to_its_bound(
    tmp_path: Path, request: pytest.FixtureRequest, kind: str
) -> None:
    from modelreg.remotes.base import ObjectTooLargeError, bounded

    def endless() -> Iterator[bytes]:
        while True:
            yield b"\0" * 4096

    with pytest.raises(ObjectTooLargeError, match="larger than the 10000 bytes it may have"):
        for _ in bounded(endless(), "r", "x" * 32, 10_000):
            pass
    if kind == "folder":
        url = str(tmp_path / "r")
    else:
        from .conftest import new_bucket

        url = f"s3://{new_bucket(request.getfixturevalue('s3'))}/x"
    remote = open_remote(url)
    remote.check(create=True)
    body = b"z" * 100_000
    remote.put_object(oid_of(body), body)
    assert remote.get_object(oid_of(body), 100_000) == body
    with pytest.raises(ObjectTooLargeError, match=f"object {oid_of(body)} on remote {url} is "):
        remote.get_object(oid_of(body), 99_999)


# --- records are checked as register checks its input ---------------------------------------


NAN = float("nan")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("metrics", {"f1": NAN}, "its metrics is invalid: metric 'f1' is nan"),
        ("metrics", {"acc": float("inf")}, "its metrics is invalid: metric 'acc' is inf"),
        ("metrics", {"k\nfake": 1}, "its metrics is invalid: invalid metric name 'k\\nfake'"),
        ("metrics", {"acc": "\x1b[2J"}, "its metrics is invalid: metric 'acc' holds a control"),
        ("description", "\x1b]0;owned\x07", "its description is invalid: description"),
        ("framework", "torch\r", "its framework is invalid: framework"),
        ("input_shape", ["x", {"a": 1}], "its input_shape is invalid: input_shape ['x', {'a"),
        ("params", {"p": {"nested": [1]}}, "its params is invalid: param 'p' must be text"),
        ("params", {"p": 2**70}, "its params is invalid: param 'p' is too large"),
        ("registered_at", "yesterday", "its registered_at 'yesterday' is not an ISO 8601 time"),
        ("parent", "m@v2", "its parent m@v2 is the version itself"),
        ("source", "a\x1b[1m", "its source 'a\\x1b[1m' is not a plain file or folder name"),
    ],
)
def test_a_record_is_checked_as_register_checks_metadata(
    alice: ModelRegistry,
    remote_url: str,
    run: CliRun,
    bob: Path,
    field: str,
    value: Any,
    message: str,
) -> None:
    rec = alice.repo.record(alice.repo.family("m").versions["v1"])
    rec["version"], rec[field] = "v2", value
    oid = put_json(remote_url, rec)
    point(remote_url, "m", "v2", oid)
    _refused(run, bob, f"m@v2: object {oid} is not a well-formed version record: {message}")


def test_text_metrics_of_old_records_are_accepted(
    alice: ModelRegistry, remote_url: str, run: CliRun, bob: Path
) -> None:
    rec = alice.repo.record(alice.repo.family("m").versions["v1"])
    rec["version"], rec["metrics"] = "v2", {"acc": "high", "f1": 0.5}
    rec["registered_at"] = "2024-03-01T12:00:00+00:00"
    point(remote_url, "m", "v2", put_json(remote_url, rec))
    r = run("-C", bob, "pull")
    assert r.exit_code == 0 and r.stderr == "", r.output
    assert ModelRegistry(bob).get("m", "v2")["metrics"] == {"acc": "high", "f1": 0.5}


def test_fsck_names_a_record_with_metadata_register_refuses(
    alice: ModelRegistry, run: CliRun
) -> None:
    rec = alice.repo.record(alice.repo.family("m").versions["v1"])
    rec.update(
        metrics={"acc": "high", "f1": NAN, "k\nfake": 1},
        description="\x1b]0;owned\x07",
        input_shape=["x", {"a": 1}],
        params={"p": {"nested": [1]}},
        registered_at="yesterday",
        parent="m@v1",
    )
    for said in ("its parent m@v1 is the version itself", "its metrics is invalid: metric"):
        oid = alice.repo.objects.add_json(rec)
        alice.repo.objects.sync()

        def swap(refs: FamilyRefs, oid: str = oid) -> None:
            refs.versions["v1"] = oid

        alice.repo.refs.update("m", swap)
        r = run("-C", alice.root, "fsck")
        assert r.exit_code == 1
        assert f"m@v1: object {oid} is not a well-formed version record: {said}" in r.stdout
        rec = {**rec, "parent": None, "registered_at": "2024-03-01T12:00:00Z"}
        rec = {**rec, "description": None, "input_shape": None, "params": None}


# --- push --force republishes a version from the registry that pushed it ---------------------


def test_push_force_replaces_a_forged_copy_of_a_version_this_registry_pushed(
    alice: ModelRegistry, remote_url: str, run: CliRun, tmp_path: Path
) -> None:
    carol = tmp_path / "carol"
    assert run("clone", remote_url, carol).exit_code == 0
    second = tmp_path / "second.pkl"
    second.write_bytes(pickle.dumps({"w": [3.0]}, protocol=2))
    alice.register("m", second)
    alice.push()
    mine = alice.repo.family("m").versions["v2"]
    forged = {**alice.repo.record(mine), "registered_at": "yesterday"}
    point(remote_url, "m", "v2", put_json(remote_url, forged))

    r = run("clone", remote_url, tmp_path / "bob")
    assert r.exit_code == 0 and "skipped family m" in r.stderr

    r = run("-C", alice.root, "push")
    assert r.exit_code == 1 and r.stderr.count("\n") == 1
    assert r.stderr == (
        "error: the remote's copy of m@v2 differs from yours, which you pushed there; version "
        "numbers never change, so it is damaged or forged; 'modelreg push --force' replaces it "
        "with yours\n"
    )
    # a registry that never pushed m@v2 cannot replace it, even with --force
    third = tmp_path / "third.pkl"
    third.write_bytes(pickle.dumps({"w": [4.0]}, protocol=2))
    run("-C", carol, "register", "m", third)
    r = run("-C", carol, "push", "--force")
    assert r.exit_code == 1 and "the remote moved: it has a different m@v2" in r.stderr

    r = run("-C", alice.root, "push", "--force")
    assert r.exit_code == 0, r.output
    assert "  m@v2 (replaced the remote's copy)" in r.stdout.splitlines()
    got = open_remote(remote_url).read_ref("m")
    assert got is not None and FamilyRefs.from_yaml("m", got[0], "r").versions["v2"] == mine
    r = run("-C", tmp_path / "bob", "pull")
    assert r.exit_code == 0 and r.stderr == "", r.output
    assert ModelRegistry(tmp_path / "bob").repo.family("m").versions["v2"] == mine


def test_a_lazy_clone_checks_a_version_whose_data_is_inline_at_once(
    evil: tuple[dict[str, Any], dict[str, Any]], remote_url: str, run: CliRun, tmp_path: Path
) -> None:
    """A small file lives in its manifest: a lazy clone has its data, and checks it."""
    bad, good = evil
    oid = put_json(remote_url, {**bad, "inspect": good["inspect"]})
    point(remote_url, "m", "v2", oid)
    r = run("clone", remote_url, tmp_path / "victim")
    assert r.exit_code == 0 and "it claims inspect verdict 'safe'" in r.stderr, r.output
    assert ModelRegistry(tmp_path / "victim").list_families() == ["d"]
