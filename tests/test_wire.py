"""Packs on the wire, counted on the server's side: a moto S3 server behind a middleware that
counts every request it serves (benchmarks/s3counter.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks import s3counter
from modelreg import ModelRegistry
from modelreg.errors import RemoteError
from modelreg.hashing import hash_file
from modelreg.maintenance import fsck
from modelreg.remotes import open_remote
from modelreg.remotes import s3 as s3_module

from .conftest import S3_ENV, new_bucket, write_bytes
from .remote_packs import packed_ids, unpack_remote


@pytest.fixture(scope="session")
def counter() -> Iterator[str]:
    proc, url = s3counter.start({**os.environ, **S3_ENV})
    yield url
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture
def counted(counter: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The URL of a fresh bucket prefix on the counting server, with AWS settings for it."""
    for key, value in S3_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", counter)
    import boto3

    return f"s3://{new_bucket(boto3.client('s3', endpoint_url=counter))}/team"


class Requests:
    def __init__(self, url: str) -> None:
        self.url = url
        self.before = s3counter.requests(url)

    def since(self) -> dict[str, int]:
        now = s3counter.requests(self.url)
        out = s3counter.since(self.before, now)
        self.before = now
        return out


def test_push_and_pull_count_few_requests_and_never_list_objects(
    tmp_path: Path, counted: str, counter: str
) -> None:
    alice = ModelRegistry(tmp_path / "alice")
    for i in range(3):
        alice.register("m", write_bytes(tmp_path / f"{i}.bin", 3_000_000, seed=i))
    alice.add_remote("origin", counted)
    seen = Requests(counter)
    report = alice.push()
    pushed = seen.since()
    # marker GET, emptiness check (a listing of one key) and marker PUT (the first push
    # only), refs GET, the packs listing, one pack and its index, the refs PUT
    assert pushed == {"GET": 2, "LIST team/": 1, "LIST packs/": 1, "PUT": 4}, pushed
    assert report["skipped_bytes"] == 0 and report["total_bytes"] >= 9_000_000
    assert len(open_remote(counted).list_objects()) == 0  # nothing loose: all in packs
    seen.since()  # (that listing was the test's)

    again = alice.push()
    assert seen.since() == {"GET": 2} and again["objects"] == 0  # marker, refs
    assert again["skipped_bytes"] == again["total_bytes"] > 0  # all of it was there

    bob = ModelRegistry.clone(counted, tmp_path / "bob", full=True)
    cloned = seen.since()
    assert "LIST objects/" not in cloned
    assert hash_file(Path(bob.get("m", "v3")["file_path"])) == hash_file(tmp_path / "2.bin")
    assert fsck(bob.repo).ok
    bob.pull()
    # marker, refs listing, refs, the family's signatures file (signatures/m.json, absent here)
    assert seen.since() == {"GET": 3, "LIST refs/": 1}

    alice.register("m", write_bytes(tmp_path / "3.bin", 3_000_000, seed=3))
    report = alice.push()
    assert "LIST objects/" not in seen.since()
    assert 0 < report["bytes"] < 3_200_000 and report["skipped_bytes"] >= 9_000_000
    got = bob.pull()
    fetched = seen.since()
    assert got["versions"] == ["m@v4"]
    # three levels (record, manifest, chunks): a ranged GET each, plus the refs and the
    # one new index; the index fetched by the clone is cached
    assert fetched.get("GET", 0) <= 9, fetched


def test_a_remote_written_before_packs_is_read_and_then_written_as_packs(
    tmp_path: Path, remote_url: str
) -> None:
    alice = ModelRegistry(tmp_path / "alice")
    alice.register("m", write_bytes(tmp_path / "a.bin", 2_000_000, seed=1))
    alice.add_remote("origin", remote_url)
    alice.push()
    unpack_remote(remote_url)  # as today's main wrote it: objects/ab/cdef...
    loose = open_remote(remote_url).list_objects()
    assert loose and not packed_ids(remote_url)

    bob = ModelRegistry.clone(remote_url, tmp_path / "bob")
    assert hash_file(Path(bob.get("m")["file_path"])) == hash_file(tmp_path / "a.bin")
    bob.register("m", write_bytes(tmp_path / "b.bin", 2_000_000, seed=2))
    report = bob.push()
    # the new version's objects only: what the remote's refs name was there already
    assert packed_ids(remote_url).isdisjoint(loose)
    assert report["objects"] == len(packed_ids(remote_url)) > 0
    carol = ModelRegistry.clone(remote_url, tmp_path / "carol")  # loose and packed at once
    assert hash_file(Path(carol.get("m", "v2")["file_path"])) == hash_file(tmp_path / "b.bin")
    assert fsck(carol.repo).ok


def test_an_interrupted_multipart_upload_resumes_with_the_missing_parts(
    tmp_path: Path, counted: str, counter: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_module, "MULTIPART_ABOVE", 6 << 20)
    monkeypatch.setattr(s3_module, "PART", 5 << 20)
    alice = ModelRegistry(tmp_path / "alice")
    alice.register("m", write_bytes(tmp_path / "a.bin", 22 << 20, seed=1))
    alice.add_remote("origin", counted)
    real = s3_module.S3Remote._upload_part
    calls: list[int] = []

    def dies_at_the_third(
        self: s3_module.S3Remote, key: str, uid: str, n: int, data: bytes
    ) -> None:
        calls.append(n)
        if len(calls) == 3:
            raise RemoteError("connection lost")  # as a kill would leave it
        real(self, key, uid, n, data)

    monkeypatch.setattr(s3_module.S3Remote, "_upload_part", dies_at_the_third)
    with pytest.raises(RemoteError, match="connection lost"):
        alice.push()
    monkeypatch.setattr(s3_module.S3Remote, "_upload_part", real)
    assert open_remote(counted).read_ref("m") is None and not packed_ids(counted)
    (journal,) = (alice.repo.dir / "remotes" / "origin" / "outgoing").glob("*.upload")
    remote = open_remote(counted)
    assert isinstance(remote, s3_module.S3Remote)
    listed = remote.client.list_parts(
        Bucket=remote.bucket,
        Key=remote.prefix + "packs/" + journal.name.replace(".upload", ".pack"),
        UploadId=json.loads(journal.read_text())["upload_id"],
    )
    landed = len(listed.get("Parts", []))
    assert landed >= 1
    seen = Requests(counter)
    report = alice.push()
    parts = seen.since().get("PUT ?uploadId&partNumber", 0)
    assert parts == 5 - landed  # 22 MiB in 5 MiB parts: only those missing went up
    assert report["versions"] == ["m@v1"]
    bob = ModelRegistry.clone(counted, tmp_path / "bob")
    assert hash_file(Path(bob.get("m")["file_path"])) == hash_file(tmp_path / "a.bin")
    assert not list((alice.repo.dir / "remotes" / "origin" / "outgoing").iterdir())


def test_push_pull_and_clone_never_list_the_remotes_objects(
    tmp_path: Path, remote_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However many objects a remote holds, no transfer lists them: what is there is known
    from its refs and its pack indexes."""
    from modelreg.remotes.base import Remote

    alice = ModelRegistry(tmp_path / "alice")
    alice.register("m", write_bytes(tmp_path / "a.bin", 500_000, seed=1))
    alice.add_remote("origin", remote_url)
    alice.push()
    remote_type = type(open_remote(remote_url))

    def refuse(self: Remote) -> set[str]:
        raise AssertionError("listed every object")

    monkeypatch.setattr(remote_type, "list_objects", refuse)
    alice.register("m", write_bytes(tmp_path / "b.bin", 500_000, seed=2))
    assert alice.push()["versions"] == ["m@v2"]
    bob = ModelRegistry.clone(remote_url, tmp_path / "bob")
    alice.register("m", write_bytes(tmp_path / "c.bin", 500_000, seed=3))
    alice.push()
    assert bob.pull()["versions"] == ["m@v3"]
    assert hash_file(Path(bob.get("m", "v3")["file_path"])) == hash_file(tmp_path / "c.bin")
