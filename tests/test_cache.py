"""The shared per-user object cache: where it is, read-through, LRU prune, concurrency."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from modelreg import ModelRegistry
from modelreg.cache import Cache, cache_root
from modelreg.errors import CorruptObjectError, NotFoundError
from modelreg.files import chunk_ids
from modelreg.hashing import oid_of

from .conftest import CliRun
from .models import save_torch, small_state_dict


def test_the_cache_is_found_the_way_xdg_says(tmp_path: Path, monkeypatch) -> None:
    assert cache_root() == Path.home() / ".cache" / "modelreg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "modelreg"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the spec: absolute paths only
    assert cache_root() == Path.home() / ".cache" / "modelreg"
    monkeypatch.setenv("MODELREG_CACHE", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"


def _move_chunks_to_cache(registry: ModelRegistry, rec: dict) -> list[str]:
    """Leave the registry without the version's chunks, which only the cache then holds
    (what a lazy clone looks like once another project fetched them)."""
    store = registry.repo.objects
    ids = chunk_ids(store.get_json(rec["root"]))
    cache = Cache()
    for oid in ids:
        cache.add(store.get(oid), oid)
        store.remove(oid)
    cache.sync()
    assert not any(store.exists(oid) for oid in ids)
    return ids


def test_a_registry_reads_what_it_lacks_from_the_cache(repo_dir: Path, torch_mod) -> None:
    state = small_state_dict()
    registry = ModelRegistry(".")
    rec = registry.register("m", save_torch(repo_dir / "m.pt", state))
    ids = _move_chunks_to_cache(registry, rec)
    got = registry.load("m")
    assert all(bool((got[k] == state[k]).all()) for k in state)
    assert bool(
        (registry.load("m", tensors=["fc.weight"])["fc.weight"] == state["fc.weight"]).all()
    )
    assert not any(registry.repo.objects.exists(oid) for oid in ids)  # read, not copied in
    assert Cache().stats().objects == len(ids)

    Cache().prune(0)  # nothing has the objects any more: the error is the store's own
    with pytest.raises(CorruptObjectError, match=r"cannot load m@v1: object .* is missing"):
        registry.load("m")


def test_a_damaged_cache_copy_is_refused_and_dropped(repo_dir: Path, torch_mod) -> None:
    registry = ModelRegistry(".")
    rec = registry.register("m", save_torch(repo_dir / "m.pt", small_state_dict()))
    ids = _move_chunks_to_cache(registry, rec)
    victim = Cache().store.path(ids[0])
    victim.chmod(0o644)
    data = bytearray(victim.read_bytes())
    data[5] ^= 1
    victim.write_bytes(bytes(data))
    with pytest.raises(CorruptObjectError, match=r"cannot load m@v1: object .* is missing"):
        registry.load("m")
    assert not victim.exists()


def test_prune_drops_the_least_recently_used_first(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    blobs = [bytes([i]) * 1000 for i in range(3)]
    ids = [cache.add(b) for b in blobs]
    cache.sync()
    for i, oid in enumerate(ids):  # written long ago, oldest first
        os.utime(cache.store.path(oid), (1000 + i, 1000 + i))
    assert cache.get(ids[0]) == blobs[0]  # reading marks it used now
    plan = cache.prune(2000, dry_run=True)
    assert [e.oid for e in plan.removed] == [ids[1]] and cache.exists(ids[1])
    plan = cache.prune(2000)
    assert plan.freed == 1000 and plan.kept_objects == 2
    assert cache.exists(ids[0]) and not cache.exists(ids[1]) and cache.exists(ids[2])
    assert cache.stats().bytes == 2000


def _add_many(root: str, blob: bytes, rounds: int) -> None:
    cache = Cache(Path(root))
    for _ in range(rounds):
        cache.add(blob)
        cache.sync()
        cache.prune(0)


def _read_many(root: str, oid: str, rounds: int, out: multiprocessing.Queue) -> None:
    cache = Cache(Path(root))
    counts = {"read": 0, "missing": 0, "corrupt": 0}
    for _ in range(rounds):
        try:
            cache.store.get(oid)  # the verifying read itself, without the cache's excuse
            counts["read"] += 1
        except NotFoundError:
            counts["missing"] += 1
        except CorruptObjectError:
            counts["corrupt"] += 1
    out.put(counts)


def test_writers_pruners_and_readers_in_other_processes_never_see_part_of_a_file(
    tmp_path: Path,
) -> None:
    root = str(tmp_path / "c")
    blob = os.urandom(4 << 20)
    oid = oid_of(blob)
    ctx = multiprocessing.get_context("fork")
    out: multiprocessing.Queue = ctx.Queue()
    writers = [ctx.Process(target=_add_many, args=(root, blob, 30)) for _ in range(2)]
    readers = [ctx.Process(target=_read_many, args=(root, oid, 150, out)) for _ in range(2)]
    for p in writers + readers:
        p.start()
    counts = [out.get(timeout=120) for _ in readers]
    for p in writers + readers:
        p.join(timeout=120)
        assert p.exitcode == 0
    assert sum(c["corrupt"] for c in counts) == 0
    assert sum(c["read"] + c["missing"] for c in counts) == 300
    cache = Cache(Path(root))
    cache.add(blob)
    cache.sync()
    assert cache.get(oid) == blob and cache.stats().objects == 1
    assert not list(cache.store.leftovers())


def test_cache_commands(tmp_path: Path, run: CliRun, monkeypatch) -> None:
    import json

    monkeypatch.setenv("MODELREG_CACHE", str(tmp_path / "c"))
    cache = Cache()
    cache.add(b"x" * 3000)
    cache.add(b"y" * 1000)
    cache.sync()
    result = run("cache", "stats", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["objects"] == 2 and json.loads(result.stdout)["bytes"] == 4000
    assert "2 objects, 3.9 KiB" in run("cache", "stats").stdout
    result = run("cache", "prune", "--max-size", "2K", "--dry-run")
    assert result.exit_code == 0 and "Would free" in result.stdout
    assert cache.stats().objects == 2
    result = run("cache", "prune", "--max-size", "2K")
    assert "Freed" in result.stdout and cache.stats().objects == 1
    result = run("cache", "prune", "--max-size", "lots")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: --max-size 'lots' is not a size; give bytes or 500M, 20G, 1.5GiB"
    ]
    assert cache.stats().objects == 1
    assert run("cache", "prune").exit_code == 0 and cache.stats().objects == 0
