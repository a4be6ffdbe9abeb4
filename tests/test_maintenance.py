"""fsck, gc and what a damaged object does to every reader."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from modelreg import ModelRegistry, maintenance
from modelreg.errors import CorruptObjectError
from modelreg.objects import Copy
from modelreg.refs import FamilyRefs
from modelreg.repo import Repository

from .conftest import CliRun, write_bytes


def _flip(path: Path, at: int) -> None:
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[at % len(data)] ^= 0x01
    path.write_bytes(bytes(data))


def _file_of(repo: Repository, copy: Copy) -> Path:
    return Path(copy.where) if copy.kind == "loose" else repo.objects.pack_dir / copy.where


def _flip_copy(repo: Repository, copy: Copy, at: int) -> Path:
    """Flip one bit inside one stored copy of an object (loose file or pack region)."""
    path = _file_of(repo, copy)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[copy.offset + at % copy.stored] ^= 0x01
    path.write_bytes(bytes(data))
    return path


def _copy_of(repo: Repository, oid: str) -> Copy:
    return next(c for c in repo.objects.copies() if c.oid == oid)


class _RunsCode:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("echo owned",))


def _populated(repo_dir: Path) -> Repository:
    registry = ModelRegistry(".")
    registry.register("m", write_bytes(repo_dir / "a.pt", 600_000, seed=1))
    registry.register("m", write_bytes(repo_dir / "b.pt", 600_000, seed=2))
    return registry.repo


def test_fsck_of_a_healthy_registry_is_clean(repo_dir: Path, run: CliRun) -> None:
    _populated(repo_dir)
    r = run("fsck")
    assert r.exit_code == 0 and " 0 corrupt, 0 missing" in r.stdout


def test_every_object_flipped_is_named_by_fsck_and_refused_by_readers(
    repo_dir: Path, run: CliRun
) -> None:
    repo = _populated(repo_dir)
    copies = list(repo.objects.copies())
    assert len(copies) > 3
    assert {c.kind for c in copies} == {"loose", "packed"}  # records loose, the rest packed
    for i, copy in enumerate(copies):
        oid = copy.oid
        path = _file_of(repo, copy)
        pristine = path.read_bytes()
        _flip_copy(repo, copy, 7 * i + 3)
        r = run("fsck")
        assert r.exit_code == 1
        assert f"corrupt object {oid} in {copy.where}" in r.stdout
        users = maintenance.fsck(repo).corrupt[oid]
        for label in users:
            # both readers of that version refuse, naming it, and leave nothing in models/
            for args in (["get", label], ["checkout", label]):
                r = run(*args)
                assert r.exit_code == 1, (args, r.output)
                assert label in r.stderr and "corrupt" in r.stderr
            name, version = label.split("@")
            folder = repo_dir / "models" / name / version
            assert not folder.exists() or not any(folder.iterdir())
        os.chmod(path, 0o644)
        path.write_bytes(pristine)
        os.chmod(path, 0o444)
    assert run("fsck").exit_code == 0


def test_a_corrupt_object_never_replaces_a_good_checkout(repo_dir: Path) -> None:
    repo = _populated(repo_dir)
    registry = ModelRegistry(".")
    good = Path(registry.get("m", "v1")["file_path"])
    good.unlink()
    rec = repo.lookup("m@v1")
    manifest = repo.objects.get_json(rec["root"])
    _flip_copy(repo, _copy_of(repo, manifest["parts"][-1]["o"]), 10)
    with pytest.raises(CorruptObjectError, match="cannot check out m@v1"):
        registry.get("m", "v1")
    assert not good.exists()
    assert not good.parent.exists() or not any(good.parent.iterdir())


def test_missing_object_is_reported_by_fsck_with_its_version(repo_dir: Path, run: CliRun) -> None:
    repo = _populated(repo_dir)
    record = repo.family("m").versions["v2"]  # kept loose: remove() can take it
    repo.objects.remove(record)
    r = run("fsck")
    assert r.exit_code == 1 and f"missing object {record} (used by m@v2)" in r.stdout
    r = run("gc")
    assert r.exit_code == 1 and "gc stopped: m@v2: missing object" in r.stderr


def test_damaged_refs_file_is_one_clear_error(repo_dir: Path, run: CliRun) -> None:
    _populated(repo_dir)
    (repo_dir / ".modelreg" / "refs" / "m.yaml").write_text("versions: [oops")
    r = run("list")
    assert r.exit_code == 1 and "refs file" in r.stderr and "is damaged" in r.stderr


def test_gc_keeps_everything_reachable_and_removes_leftovers(repo_dir: Path) -> None:
    repo = _populated(repo_dir)
    leftover = repo.objects.root / "ab" / ".tmp-999-x-cdef"
    leftover.parent.mkdir(exist_ok=True)
    leftover.write_bytes(b"half-written")
    orphan = repo.objects.add(b"o" * 5000)
    repo.objects.sync()
    plan = maintenance.gc(repo, dry_run=True)
    assert plan.objects == [orphan] and plan.leftovers == [leftover]
    assert leftover.exists() and repo.objects.exists(orphan)
    maintenance.gc(repo)
    assert not leftover.exists() and not repo.objects.exists(orphan)
    report = maintenance.fsck(repo)
    assert report.ok and report.dangling == 0 and report.leftovers == 0
    registry = ModelRegistry(".")
    assert (
        Path(registry.get("m", "v1")["file_path"]).read_bytes() == (repo_dir / "a.pt").read_bytes()
    )


def test_stats_counts_logical_and_stored_bytes(repo_dir: Path) -> None:
    repo = _populated(repo_dir)
    s = maintenance.stats(repo)
    assert s.families == 1 and s.versions == 2
    assert s.logical_bytes == 1_200_000
    assert 1_200_000 <= s.stored_bytes < 1_210_000
    assert s.disk_bytes >= s.stored_bytes


def test_stats_says_what_removing_each_version_frees(repo_dir: Path, run: CliRun) -> None:
    import json

    _populated(repo_dir)
    s = json.loads(run("stats", "--json").stdout)
    assert set(s["freeable"]) == {"m@v1", "m@v2"}
    assert all(600_000 <= v < 610_000 for v in s["freeable"].values())
    before = s["stored_bytes"]
    run("rm", "m@v2")
    freed = json.loads(run("gc", "--json").stdout)["bytes"]
    assert freed == s["freeable"]["m@v2"]
    assert json.loads(run("stats", "--json").stdout)["stored_bytes"] == before - freed


def test_stats_counts_checkouts_apart_from_the_store(
    repo_dir: Path, run: CliRun, tmp_path: Path
) -> None:
    import json

    _populated(repo_dir)
    s = json.loads(run("stats", "--json").stdout)
    assert (s["checkout_bytes"], s["checkout_files"], s["checked_out"]) == (0, 0, 0)
    assert s["checkout_dir"] == str(repo_dir / "models")
    store_disk = s["disk_bytes"]

    run("checkout", "m")
    big_outside = write_bytes(tmp_path / "outside.bin", 900_000)
    v1 = repo_dir / "models" / "m" / "v1"
    os.link(v1 / "a.pt", v1 / "same-inode.pt")  # a hard link is counted once
    os.symlink(big_outside, v1 / "link.bin")  # a link's target is not the checkout's
    s = json.loads(run("stats", "--json").stdout)
    assert 1_200_000 <= s["checkout_bytes"] < 1_300_000
    assert (s["checkout_files"], s["checked_out"]) == (2, 2)
    assert store_disk <= s["disk_bytes"] < store_disk + 64_000  # + the stat cache only
    assert s["total_disk_bytes"] == s["disk_bytes"] + s["checkout_bytes"]

    text = run("stats").stdout
    assert f"2 versions, 2 files in {repo_dir / 'models'} (plain copies, rebuilt on demand" in text
    assert "total on disk" in text


def test_stats_scan_estimates_without_writing(
    repo_dir: Path, run: CliRun, tmp_path: Path, monkeypatch
) -> None:
    import json

    from .conftest import tree_snapshot

    folder = tmp_path / "ckpts"
    folder.mkdir()
    write_bytes(folder / "a.bin", 500_000, seed=1)
    write_bytes(folder / "b.bin", 500_000, seed=1)  # a byte-identical copy
    write_bytes(folder / "c.bin", 300_000, seed=3)
    before = tree_snapshot(tmp_path)
    est = json.loads(run("stats", "--scan", folder, "--json").stdout)
    assert est["files"] == 3 and est["logical_bytes"] == 1_300_000
    assert est["file_dedup_bytes"] == 800_000
    assert 800_000 <= est["modelreg_bytes"] < 810_000
    assert tree_snapshot(tmp_path) == before
    run("register", "a", folder / "a.bin")
    est = json.loads(run("stats", "--scan", folder, "--json").stdout)
    assert 300_000 <= est["modelreg_bytes"] < 310_000  # a.bin is already stored
    monkeypatch.chdir(tmp_path)  # outside any registry
    r = run("stats", "--scan", folder)
    assert r.exit_code == 0 and "to an empty registry" in r.stdout
    r = run("stats", "--scan", tmp_path / "nope")
    assert r.exit_code == 1 and "no such file or folder" in r.stderr


def test_registering_the_file_again_repairs_a_truncated_loose_object(
    repo_dir: Path, run: CliRun
) -> None:
    registry = ModelRegistry(".")
    repo = registry.repo
    repo.objects.packed = False  # as a format-1 registry stored it: every object loose
    registry.register("m", write_bytes(repo_dir / "a.pt", 600_000, seed=1))
    rec = repo.lookup("m@v1")
    chunk = repo.objects.get_json(rec["root"])["parts"][0]["o"]
    path = repo.objects.path(chunk)
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes()[:100])
    assert run("fsck").exit_code == 1
    run("register", "m", repo_dir / "a.pt")
    assert run("fsck").exit_code == 0
    assert oct(path.stat().st_mode & 0o777) == "0o444"


def test_fsck_counts_each_missing_object_once(repo_dir: Path, run: CliRun) -> None:
    registry = ModelRegistry(".")
    same = write_bytes(repo_dir / "a.pt", 600_000, seed=1)
    registry.register("m", same)
    registry.register("m", same)
    root = registry.repo.lookup("m@v1")["root"]
    assert registry.repo.lookup("m@v2")["root"] == root
    registry.repo.objects.remove(root)
    r = run("fsck")
    assert r.exit_code == 1
    assert f"missing object {root} (used by m@v1, m@v2)" in r.stdout
    assert " 1 missing," in r.stdout
    report = json.loads(run("fsck", "--json").stdout)
    assert report["missing"] == {root: ["m@v1", "m@v2"]}


def _forged(repo: Repository, label: str, **changes: object) -> str:
    """Replace a version's record by one with ``changes``; returns the new record's id."""
    name, version = label.split("@")
    rec = repo.record(repo.family(name).versions[version])
    rec.update(changes)
    oid = repo.objects.add_json(rec)
    repo.objects.sync()  # durable and visible before the ref names it

    def swap(refs: FamilyRefs) -> None:
        refs.versions[version] = oid

    repo.refs.update(name, swap)
    return oid


def test_fsck_names_a_version_whose_record_does_not_match_its_content(
    repo_dir: Path, run: CliRun
) -> None:
    registry = ModelRegistry(".")
    bad = repo_dir / "bad.pkl"
    bad.write_bytes(pickle.dumps(_RunsCode(), protocol=2))
    with pytest.warns(UserWarning):
        registry.register("m", bad)
    registry.register("n", write_bytes(repo_dir / "n.bin", 50_000))
    assert run("fsck").exit_code == 0
    forged = _forged(registry.repo, "m@v1", inspect={"format": "pickle", "safety": "safe"})
    rec = registry.repo.lookup("n@v1")
    manifest = registry.repo.objects.get_json(rec["root"])
    manifest["hash"] = "0" * 32
    lying = registry.repo.objects.add_json(manifest)
    forged_n = _forged(registry.repo, "n@v1", root=lying, content_hash="0" * 32)
    r = run("fsck")
    assert r.exit_code == 1
    assert (
        f"inconsistent version m@v1: record {forged}: it claims inspect verdict 'safe'; "
        "its content gives 'unsafe'" in r.stdout
    )
    assert (
        f"inconsistent version n@v1: record {forged_n}: the bytes of manifest {lying} do not "
        "hash to its hash" in r.stdout
    )
    assert "2 inconsistent" in r.stdout


def test_fsck_repair_fetches_corrupt_and_missing_objects_from_the_remote(
    repo_dir: Path, run: CliRun, remote_url: str
) -> None:
    repo = _populated(repo_dir)
    run("remote", "add", "origin", remote_url)
    assert run("push").exit_code == 0
    chunk = repo.objects.get_json(repo.lookup("m@v1")["root"])["parts"][0]["o"]
    _flip_copy(repo, _copy_of(repo, chunk), 5)  # inside its pack
    v2 = repo.family("m").versions["v2"]
    root = repo.record(v2)["root"]
    repo.objects.remove(v2)
    repo.objects.remove(root)  # found missing only once the record is back
    r = run("fsck")
    assert r.exit_code == 1 and "modelreg fsck --repair" in r.stdout
    r = run("fsck", "--repair")
    assert r.exit_code == 0, r.output
    for oid in (chunk, v2, root):
        assert f"repaired object {oid} from remote origin" in r.stdout
    assert "0 corrupt, 0 missing, 0 unused, 0 leftovers; 0 inconsistent, 3 repaired" in r.stdout
    assert run("fsck").exit_code == 0
    assert oct(repo.objects.path(chunk).stat().st_mode & 0o777) == "0o444"


def test_fsck_repair_without_a_copy_says_what_is_still_missing(repo_dir: Path, run: CliRun) -> None:
    repo = _populated(repo_dir)
    root = repo.lookup("m@v2")["root"]
    repo.objects.remove(root)
    r = run("fsck", "--repair")
    assert r.exit_code == 1
    assert f"missing object {root} (used by m@v2)" in r.stdout and "0 repaired" in r.stdout


def test_fsck_text_and_json_use_the_same_words(repo_dir: Path, run: CliRun) -> None:
    _populated(repo_dir)
    text = run("fsck").stdout
    report = json.loads(run("fsck", "--json").stdout)
    for word in (
        "checked",
        "corrupt",
        "missing",
        "unused",
        "leftovers",
        "inconsistent",
        "repaired",
    ):
        assert word in report and word in text


def test_a_refs_file_with_yaml_aliases_is_refused_before_it_expands(
    repo_dir: Path, run: CliRun
) -> None:
    _populated(repo_dir)
    bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    bomb += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 7)]
    (repo_dir / ".modelreg" / "refs" / "m.yaml").write_text("\n".join([*bomb, "name: m"]))
    r = run("list")
    assert r.exit_code == 1 and r.stderr.count("\n") == 1
    assert "is refused: it uses YAML anchors or aliases, which modelreg never writes" in r.stderr


def test_gc_removes_a_dead_index_writers_leftovers_only(repo_dir: Path, run) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    write_bytes(repo_dir / "w.bin", 100)
    run("register", "m", "w.bin")
    run("list")
    index = repo_dir / ".modelreg" / "index"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    orphan = index / f".tmp-{dead}-abcdef-m.idx"
    live = index / f".tmp-{os.getpid()}-abcdef-m.idx"
    orphan.write_bytes(b"half")
    live.write_bytes(b"being written")
    assert run("gc").exit_code == 0
    assert not orphan.exists() and live.exists()


def test_stats_counts_what_gc_would_drop(repo: Repository, repo_dir: Path) -> None:
    """``stats`` names the objects no version uses, as ``gc --dry-run`` plans to drop them
    (the ui's storage page shows it without a second walk)."""
    for seed in (1, 2):
        repo.register("m", write_bytes(repo_dir / f"m{seed}.bin", 300_000, seed=seed))
    assert maintenance.stats(repo).unused_objects == 0
    repo.remove("m@v1")
    s = maintenance.stats(repo)
    plan = maintenance.plan_gc(repo)
    assert s.unused_objects == len(plan.objects) > 0
    assert s.unused_bytes == plan.bytes - sum(p.stat().st_size for p in plan.leftovers) > 0
