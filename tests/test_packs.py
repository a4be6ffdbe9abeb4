"""Pack files and their indexes: layout, damage, leftovers, gc repacking and gc --auto."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from modelreg import ModelRegistry, maintenance, packs, repack
from modelreg.errors import NotFoundError
from modelreg.hashing import hash_file
from modelreg.objects import ObjectStore
from modelreg.refs import yaml_load
from modelreg.repo import Repository

from .conftest import CliRun, write_bytes

FIXTURE = Path(__file__).parent / "fixtures" / "format1-registry.tar.gz"


def test_a_pack_and_its_index_appear_only_at_sync(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    oids = [store.add(bytes([i]) * 10_000) for i in range(5)]
    listed = os.listdir(tmp_path / "pack")
    assert len(listed) == 1 and listed[0].startswith(".tmp-")  # only the writer's temp file
    name = store.sync()
    assert name is not None
    assert sorted(os.listdir(tmp_path / "pack")) == [f"pack-{name}.idx", f"pack-{name}.pack"]
    raw = (tmp_path / "pack" / f"pack-{name}.pack").read_bytes()
    assert raw[:8] == packs.PACK_MAGIC and len(raw) == 8 + 5 * 10_000
    pack = packs.Pack(tmp_path / "pack", name)
    assert pack.count == 5 and sorted(oid for oid, _e in pack) == sorted(oids)


def test_an_index_names_its_pack_by_its_checksum(tmp_path: Path) -> None:
    a, b = ObjectStore(tmp_path / "a"), ObjectStore(tmp_path / "b")
    for store in (a, b):
        store.add(b"same" * 5000)
    assert a.sync() == b.sync()  # the same objects in the same order: the same bytes


def test_a_bit_flip_in_an_index_is_refused_whole_and_named(repo_dir: Path, run: CliRun) -> None:
    ModelRegistry(".").register("m", write_bytes(repo_dir / "a.pt", 300_000))
    (name,) = Repository(repo_dir).objects.pack_names()
    idx = repo_dir / ".modelreg" / "objects" / "pack" / f"pack-{name}.idx"
    for at in (3, 20, 200, 1100, -30, -1):
        pristine = idx.read_bytes()
        os.chmod(idx, 0o644)
        data = bytearray(pristine)
        data[at] ^= 0x10
        idx.write_bytes(bytes(data))
        r = run("fsck")
        assert r.exit_code == 1
        assert f"pack-{name}.idx: pack-{name}.idx" in r.stdout and "missing object" in r.stdout
        r = run("get", "m")
        assert r.exit_code == 1 and "a pack index is damaged" in r.stderr
        assert run("gc").exit_code == 1  # nothing is removed while objects are unreadable
        idx.write_bytes(pristine)
    assert run("fsck").exit_code == 0


def test_a_bit_flip_in_a_pack_names_the_pack(repo_dir: Path, run: CliRun) -> None:
    ModelRegistry(".").register("m", write_bytes(repo_dir / "a.pt", 300_000))
    repo = Repository(repo_dir)
    (name,) = repo.objects.pack_names()
    pack = repo.objects.pack_dir / f"pack-{name}.pack"
    os.chmod(pack, 0o644)
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0x04
    pack.write_bytes(bytes(data))
    r = run("fsck")
    assert r.exit_code == 1 and f"in pack-{name}.pack (used by m@v1)" in r.stdout
    r = run("get", "m")
    assert r.exit_code == 1 and "corrupt" in r.stderr and f"pack-{name}.pack" in r.stderr


def test_a_killed_writer_leaves_only_leftovers(repo_dir: Path, run: CliRun) -> None:
    repo = Repository(repo_dir)
    oid = repo.objects.add(b"never published" * 1000)
    writer_tmp = next((repo.objects.pack_dir).iterdir())
    orphan = repo.objects.pack_dir / ("pack-" + "e" * 32 + ".pack")
    orphan.write_bytes(packs.PACK_MAGIC)  # killed between renaming the pack and the index
    other = Repository(repo_dir)
    assert not other.objects.exists(oid) and other.objects.pack_names() == []
    report = maintenance.fsck(other)
    assert report.ok and report.checked == 0 and report.leftovers == 2
    plan = maintenance.gc(other)
    assert sorted(plan.leftovers) == sorted([writer_tmp, orphan])
    assert not orphan.exists() and not writer_tmp.exists()


def test_gc_packs_compresses_and_stays_byte_exact(repo_dir: Path, run: CliRun) -> None:
    torch = pytest.importorskip("torch")
    registry = ModelRegistry(".")
    torch.manual_seed(0)
    state = {"w": torch.randn(256, 1024) * 0.01, "b": torch.zeros(1024), "n": torch.tensor(3)}
    torch.save(state, repo_dir / "a.pt")
    state["b"] = state["b"].to(torch.bfloat16) + 1
    torch.save(state, repo_dir / "b.pt")
    write_bytes(repo_dir / "c.bin", 200_000)
    for name in ("a.pt", "b.pt", "c.bin"):
        registry.register("m", repo_dir / name)
    repo = registry.repo
    before = maintenance.stats(repo).stored_bytes
    assert len(repo.objects.pack_names()) == 3 and repo.objects.count_loose() == 3

    r = run("gc", "--dry-run")
    assert "Would pack" in r.stdout and "merging 3 packs and 3 loose objects" in r.stdout
    plan = maintenance.gc(repo)
    assert plan.compress >= 1  # the float tensor; the random .bin has no dtype
    assert repo.objects.pack_names() == [plan.new_pack] and repo.objects.count_loose() == 0
    encodings = {c.encoding for c in repo.objects.copies()}
    assert {"shuffle4+zstd", "raw"} <= encodings
    assert maintenance.stats(repo).stored_bytes < before - 100_000  # randn: ~0.85 of raw
    assert maintenance.fsck(repo).ok
    for version, name in (("v1", "a.pt"), ("v2", "b.pt"), ("v3", "c.bin")):
        got = Path(ModelRegistry(".").get("m", version)["file_path"])
        assert hash_file(got) == hash_file(repo_dir / name)
    assert "nothing to repack" in run("gc").stdout  # one gc pack: a second gc has no work


def test_gc_drops_unreachable_objects_from_packs(repo_dir: Path, run: CliRun) -> None:
    registry = ModelRegistry(".")
    registry.register("m", write_bytes(repo_dir / "a.pt", 300_000, seed=1))
    registry.register("m", write_bytes(repo_dir / "b.pt", 300_000, seed=2))
    run("rm", "m@v2")
    plan = maintenance.gc(registry.repo)
    assert len(plan.objects) == 3  # its chunk, manifest and record
    assert 300_000 < plan.bytes < 310_000
    assert maintenance.stats(registry.repo).stored_bytes < 310_000
    assert hash_file(Path(registry.get("m", "v1")["file_path"])) == hash_file(repo_dir / "a.pt")


def test_compression_at_register_is_a_setting(repo_dir: Path) -> None:
    torch = pytest.importorskip("torch")
    config = repo_dir / ".modelreg" / "config.yaml"
    config.write_text(config.read_text().replace("at: gc", "at: register"))
    torch.save({"w": torch.zeros(100_000)}, repo_dir / "z.pt")
    registry = ModelRegistry(".")
    registry.register("z", repo_dir / "z.pt")
    assert "shuffle4+zstd" in {c.encoding for c in registry.repo.objects.copies()}
    assert hash_file(Path(registry.get("z")["file_path"])) == hash_file(repo_dir / "z.pt")


def test_a_bad_compression_setting_is_one_clear_error(repo_dir: Path, run: CliRun) -> None:
    config = repo_dir / ".modelreg" / "config.yaml"
    config.write_text(config.read_text().replace("at: gc", "at: never"))
    r = run("list")
    assert (
        r.exit_code == 1 and "compression.at is 'never'" in r.stderr and "gc, register" in r.stderr
    )


def test_gc_auto_does_nothing_under_the_limits(repo_dir: Path, run: CliRun) -> None:
    ModelRegistry(".").register("m", write_bytes(repo_dir / "a.pt", 10_000))
    r = run("gc", "--auto")
    assert r.exit_code == 0 and "under its gc.auto limits" in r.stdout


def test_register_keeps_the_store_packed(repo_dir: Path) -> None:
    config = repo_dir / ".modelreg" / "config.yaml"
    config.write_text(config.read_text().replace("auto_packs: 16", "auto_packs: 4"))
    registry = ModelRegistry(".")
    for i in range(12):
        registry.register("m", write_bytes(repo_dir / f"{i}.bin", 20_000, seed=i))
        assert len(registry.repo.objects.pack_names()) < 4
    assert maintenance.fsck(registry.repo).ok
    for i in range(12):
        got = Path(registry.get("m", f"v{i + 1}")["file_path"])
        assert hash_file(got) == hash_file(repo_dir / f"{i}.bin")


def test_loose_objects_past_the_limit_are_packed(repo_dir: Path, run: CliRun) -> None:
    config = repo_dir / ".modelreg" / "config.yaml"
    config.write_text(config.read_text().replace("auto_loose: 256", "auto_loose: 3"))
    registry = ModelRegistry(".")
    for i in range(3):
        registry.register("m", write_bytes(repo_dir / f"{i}.bin", 20_000, seed=i))
    assert registry.repo.objects.count_loose() == 0  # the third record crossed the limit


def test_geometric_merge_keeps_big_packs() -> None:
    assert repack.geometric({"a": 1, "b": 1, "c": 1}) == ["a", "b", "c"]
    assert repack.geometric({"big": 1000, "s1": 1, "s2": 1}) == ["s1", "s2"]
    assert repack.geometric({"big": 1000, "mid": 100, "s": 10}) == []
    assert repack.geometric({"only": 5}) == []


def _unpack_fixture(tmp_path: Path) -> Path:
    root = tmp_path / "old"
    root.mkdir()
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(root, filter="data")
    return root


def test_a_format_1_registry_opens_works_and_upgrades(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: CliRun
) -> None:
    root = _unpack_fixture(tmp_path)
    monkeypatch.chdir(root)
    config = root / ".modelreg" / "config.yaml"
    assert yaml_load(config.read_bytes())["format"] == 1
    sources = root / "sources"
    expected = {
        ("tiny", "v1", "tiny.pt"): sources / "tiny.pt",
        ("tiny", "v2", "tiny2.pt"): sources / "tiny2.pt",
    }

    def check_all() -> None:
        for (name, version, fname), src in expected.items():
            got = Path(ModelRegistry(".").get(name, version)["file_path"])
            assert got.name == fname and hash_file(got) == hash_file(src)
        folder = Path(ModelRegistry(".").get("folder", "v1")["file_path"])
        for f in (sources / "folder").iterdir():
            assert hash_file(folder / f.name) == hash_file(f)

    assert [r["version"] for r in ModelRegistry(".").list("tiny")] == ["v1", "v2"]
    check_all()
    assert run("fsck").exit_code == 0
    assert yaml_load(config.read_bytes())["format"] == 1  # reading changed nothing

    registry = ModelRegistry(".")
    registry.register("tiny", sources / "tiny.pt", metrics={"acc": 0.7})
    expected[("tiny", "v3", "tiny.pt")] = sources / "tiny.pt"
    assert yaml_load(config.read_bytes())["format"] == 1  # every object was there: no pack
    registry.register("tiny", write_bytes(tmp_path / "new.pt", 50_000))
    expected[("tiny", "v4", "new.pt")] = tmp_path / "new.pt"
    # its first pack (format 2) and the first line of a refs journal (3) upgraded it; the
    # first write to its old refs file rewrote it as a snapshot a journal continues
    assert yaml_load(config.read_bytes())["format"] == 3
    assert (root / ".modelreg" / "refs" / "tiny.journal").read_bytes().count(b"\n") == 2
    check_all()
    plan = maintenance.gc(Repository(root))
    assert plan.loose > 10 and plan.new_pack is not None
    repo = Repository(root)
    assert repo.objects.count_loose() == 0 and repo.objects.pack_names() == [plan.new_pack]
    check_all()
    assert run("fsck").exit_code == 0


def test_a_format_1_registry_upgrades_at_gc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _unpack_fixture(tmp_path)
    monkeypatch.chdir(root)
    maintenance.gc(Repository(root))
    assert yaml_load((root / ".modelreg" / "config.yaml").read_bytes())["format"] == 2
    assert "tiny" in Repository(root).families()


def test_a_missing_object_says_so(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="is missing"):
        ObjectStore(tmp_path).get("1" * 32)


def test_threads_adding_while_packs_roll_lose_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from modelreg import objects

    monkeypatch.setattr(objects, "PACK_ROLL", 50_000)  # a new pack every few objects
    store = ObjectStore(tmp_path)
    blobs = [i.to_bytes(4, "little") * 5000 for i in range(300)]
    with ThreadPoolExecutor(8) as pool:
        oids = list(pool.map(store.add, blobs))
    store.sync()
    fresh = ObjectStore(tmp_path)
    assert len(fresh.pack_names()) > 10
    assert all(fresh.get(oid) == blob for oid, blob in zip(oids, blobs, strict=True))


def test_a_pull_past_the_loose_limit_leaves_the_store_packed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    Repository.init(src)
    registry = ModelRegistry(src)
    for i in range(6):
        registry.register("m", write_bytes(tmp_path / f"{i}.bin", 20_000, seed=i))
    remote = tmp_path / "remote"
    registry.add_remote("origin", str(remote))
    registry.push()
    dst = tmp_path / "dst"
    dst.mkdir()
    Repository.init(dst)
    config = dst / ".modelreg" / "config.yaml"
    config.write_text(config.read_text().replace("auto_loose: 256", "auto_loose: 4"))
    mirror = ModelRegistry(dst)
    mirror.add_remote("origin", str(remote))
    mirror.pull()
    assert mirror.repo.objects.count_loose() == 0 and mirror.repo.objects.pack_names()
    assert hash_file(Path(mirror.get("m", "v6")["file_path"])) == hash_file(tmp_path / "5.bin")
