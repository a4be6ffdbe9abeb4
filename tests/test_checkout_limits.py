"""What a checkout refuses before anything lands in models/: a file whose chunks do not add up
to its recorded hash, a version over the size limit, a version that cannot fit on the disk."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from modelreg.hashing import new_hasher
from modelreg.refs import FamilyRefs, yaml_dump, yaml_load
from modelreg.repo import Repository

from .conftest import CliRun, write_bytes


def _publish(repo: Repository, base: dict[str, Any], version: str, **changes: Any) -> None:
    """Store a crafted version record and point ``version`` at it, as a remote could."""
    record = {**base, **changes, "version": version}
    record.pop("tags", None)
    oid = repo.objects.add_json(record)
    repo.objects.sync()  # durable and visible before the ref names it

    def point(refs: FamilyRefs) -> None:
        refs.versions[version] = oid

    repo.refs.update(record["name"], point)


def test_a_manifest_whose_chunks_do_not_make_its_hash_is_refused(
    repo_dir: Path, run: CliRun, repo: Repository
) -> None:
    run("register", "m", write_bytes(repo_dir / "m.pt", 300_000))
    rec = repo.lookup("m@v1")
    manifest = repo.objects.get_json(rec["root"])
    forged_hash = "0" * 32
    forged = repo.objects.add_json({**manifest, "hash": forged_hash})
    _publish(repo, rec, "v2", root=forged, content_hash=forged_hash)

    for args in (["get", "m@v2"], ["checkout", "m@v2"]):
        r = run(*args)
        assert r.exit_code == 1
        assert "cannot check out m@v2: m.pt rebuilt from its chunks does not match its " in (
            r.stderr
        )
        assert r.stderr.count("\n") == 1
        assert not (repo_dir / "models" / "m" / "v2").exists()


def test_a_record_that_disagrees_with_its_manifest_is_refused(
    repo_dir: Path, run: CliRun, repo: Repository
) -> None:
    run("register", "m", write_bytes(repo_dir / "m.pt", 300_000))
    _publish(repo, repo.lookup("m@v1"), "v2", content_hash="1" * 32)
    r = run("get", "m@v2")
    assert r.exit_code == 1
    assert "cannot check out m@v2: its record's content_hash is not its manifest's hash" in (
        r.stderr
    )
    assert not (repo_dir / "models" / "m").exists()


def test_a_version_over_the_limit_is_refused_with_where_the_limit_is_set(
    repo_dir: Path, run: CliRun, repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("register", "m", write_bytes(repo_dir / "m.pt", 5000))
    config = repo.dir / "config.yaml"
    settings = yaml_load(config.read_bytes())
    config.write_text(yaml_dump({**settings, "checkout": {"max_bytes": "4K"}}))
    r = run("get", "m")
    assert r.exit_code == 1
    assert r.stderr == (
        f"error: m@v1 is 4.9 KiB, more than the checkout limit of 4.0 KiB (checkout.max_bytes "
        f"in {config}); raise the limit (e.g. MODELREG_MAX_CHECKOUT_BYTES=5000) if you mean to "
        "check it out\n"
    )
    assert not (repo_dir / "models").exists()

    monkeypatch.setenv("MODELREG_MAX_CHECKOUT_BYTES", "1000")
    r = run("checkout", "m")
    assert r.exit_code == 1
    assert "m@v1 is 4.9 KiB, more than the checkout limit of 1000 bytes " in r.stderr
    assert "(MODELREG_MAX_CHECKOUT_BYTES)" in r.stderr

    monkeypatch.setenv("MODELREG_MAX_CHECKOUT_BYTES", "1M")
    assert run("get", "m").exit_code == 0

    monkeypatch.setenv("MODELREG_MAX_CHECKOUT_BYTES", "lots")
    r = run("get", "m")
    assert r.exit_code == 1
    assert r.stderr == (
        "error: MODELREG_MAX_CHECKOUT_BYTES is 'lots', not a size; give bytes or a size such as "
        "500M or 20G\n"
    )


def test_a_version_that_cannot_fit_on_the_disk_is_refused_before_writing(
    repo_dir: Path, run: CliRun, repo: Repository
) -> None:
    """A folder model of many 1 GiB files that all repeat one chunk (cheap in the store, huge
    once checked out). The chunk itself is left out of the store, so code that started
    writing before checking the space would fail at once instead of filling the disk."""
    run("register", "m", write_bytes(repo_dir / "m.pt", 5000))
    absent_chunk, chunk_size, repeats = "c" * 32, 1 << 20, 1024
    file_size, file_hash = repeats * chunk_size, "2" * 32
    manifest = repo.objects.add_json(
        {
            "type": "file",
            "size": file_size,
            "hash": file_hash,
            "format": "raw",
            "parts": [{"o": absent_chunk, "n": chunk_size}] * repeats,
        }
    )
    count = shutil.disk_usage(repo_dir).free // file_size + 16
    entries = {
        f"shard-{i:05d}.bin": {"manifest": manifest, "size": file_size, "hash": file_hash}
        for i in range(count)
    }
    tree_hash = new_hasher()
    for rel, entry in sorted(entries.items()):
        tree_hash.update(f"{rel}\0{entry['hash']}\n".encode())
    total = count * file_size
    tree = repo.objects.add_json(
        {"type": "tree", "entries": entries, "size": total, "hash": tree_hash.hexdigest()}
    )
    _publish(
        repo,
        repo.lookup("m@v1"),
        "v2",
        kind="dir",
        root=tree,
        size=total,
        content_hash=tree_hash.hexdigest(),
        format="dir",
        source="shards",
    )
    r = run("get", "m@v2")
    assert r.exit_code == 1
    assert f"error: m@v2 needs {count}.0 GiB in {repo_dir / 'models'} but only " in r.stderr
    assert "is free; free some space, or set checkout_dir in .modelreg/config.yaml" in r.stderr
    assert not (repo_dir / "models").exists()
