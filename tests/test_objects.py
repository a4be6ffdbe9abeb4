"""The object store's contract, run against every store: on disk loose, packed (objects of an
unfinished pack, and after sync), packed and compressed as objects are added, and in memory
(``store_api.MemoryObjectStore``). ``TestContract`` holds what every store must do; the
tests after it are about how the disk store keeps its bytes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from modelreg.errors import CorruptObjectError, NotFoundError
from modelreg.hashing import oid_of
from modelreg.objects import Copy, ObjectStore, canonical_json
from modelreg.store_api import MemoryObjectStore, Store

KINDS = ["loose", "packed", "compressed"]


def make_store(root: Path, kind: str) -> ObjectStore:
    return ObjectStore(root, packed=kind != "loose", compress=kind == "compressed")


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    return make_store(tmp_path / "objects", request.param)


def floats(n: int) -> bytes:
    """Bytes that compress when grouped as 4-byte elements (small float32 values)."""
    return b"".join((i % 251).to_bytes(2, "little") + b"\x80\x3f" for i in range(n))


def file_of(store: ObjectStore, copy: Copy) -> Path:
    return Path(copy.where) if copy.kind == "loose" else store.pack_dir / copy.where


def flip(store: ObjectStore, copy: Copy, at: int = 5) -> None:
    path = file_of(store, copy)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[copy.offset + at % copy.stored] ^= 0x01
    path.write_bytes(bytes(data))


# --- the contract every store keeps --------------------------------------------------------
ALL_KINDS = [*KINDS, "memory"]


def damage(store: Store, oid: str) -> None:
    """Flip one bit of every stored copy of ``oid``, where that store keeps its bytes."""
    if isinstance(store, MemoryObjectStore):
        blob = bytearray(store.blobs[oid])
        blob[len(blob) // 2] ^= 0x01
        store.blobs[oid] = bytes(blob)
        return
    assert isinstance(store, ObjectStore)
    for copy in [c for c in store.copies() if c.oid == oid]:
        flip(store, copy, at=copy.stored // 2)


def reopened(store: Store) -> Store:
    """The same objects as another process sees them (after ``sync``)."""
    return ObjectStore(store.root) if isinstance(store, ObjectStore) else store


class TestContract:
    @pytest.fixture(params=ALL_KINDS)
    def any_store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Store:
        if request.param == "memory":
            return MemoryObjectStore()
        return make_store(tmp_path / "objects", request.param)

    def test_add_names_an_object_by_the_hash_of_its_raw_bytes(self, any_store: Store) -> None:
        data = floats(20_000)
        oid = any_store.add(data, itemsize=4)
        assert oid == oid_of(data)
        assert any_store.exists(oid) and any_store.get(oid) == data
        any_store.sync()
        other = reopened(any_store)
        assert other.exists(oid) and other.get(oid) == data
        assert other.size(oid) == len(data) and other.verify(oid) == len(data)
        assert 0 < other.stored_size(oid) <= len(data)

    def test_every_read_gives_the_same_bytes(self, any_store: Store) -> None:
        data = floats(40_000)
        oid = any_store.add(data, itemsize=4)
        any_store.sync()
        other = reopened(any_store)
        assert b"".join(other.read_blocks(oid)) == data
        mapped = other.open_mapped(oid)
        assert bytes(mapped.view) == data
        mapped.close()
        with other.as_file(oid) as path:
            assert path.read_bytes() == data

    def test_adding_the_same_bytes_twice_keeps_one_object(self, any_store: Store) -> None:
        first = any_store.add(b"same" * 5000)
        cost = any_store.added_bytes
        assert any_store.add(b"same" * 5000) == first
        assert any_store.added_bytes == cost
        any_store.sync()
        assert reopened(any_store).add(b"same" * 5000) == first
        assert list(reopened(any_store)) == [first]

    def test_json_objects_round_trip(self, any_store: Store) -> None:
        oid = any_store.add_json({"type": "file", "parts": [1, 2]})
        any_store.sync()
        assert oid == oid_of(canonical_json({"parts": [1, 2], "type": "file"}))
        assert reopened(any_store).get_json(oid) == {"type": "file", "parts": [1, 2]}

    def test_a_missing_object_is_not_found_by_its_id(self, any_store: Store) -> None:
        absent = "0" * 32
        assert not any_store.exists(absent)
        for read in (any_store.get, any_store.get_json, any_store.size, any_store.verify):
            with pytest.raises(NotFoundError, match=f"object {absent} is missing"):
                read(absent)
        with pytest.raises(NotFoundError, match=f"object {absent} is missing"):
            any_store.open_mapped(absent)

    def test_a_malformed_id_is_refused(self, any_store: Store) -> None:
        for bad in ["../../etc/passwd", "AB" * 16, "0" * 31]:
            with pytest.raises(CorruptObjectError, match="malformed object id"):
                any_store.get(bad)

    def test_iteration_lists_every_object_once_sorted(self, any_store: Store) -> None:
        ids = {any_store.add(bytes([i]) * 3000) for i in range(20)}
        ids.add(any_store.add_json({"n": 1}))
        any_store.sync()
        assert list(reopened(any_store)) == sorted(ids)
        assert {c.oid for c in reopened(any_store).copies()} == ids

    def test_a_flipped_bit_is_refused_naming_the_object(self, any_store: Store) -> None:
        data = floats(30_000)
        oid = any_store.add(data, itemsize=4)
        keep = any_store.add(b"untouched" * 1000)
        any_store.sync()
        damage(any_store, oid)
        other = reopened(any_store)
        corrupt = f"object {oid} is corrupt"
        with pytest.raises(CorruptObjectError, match=corrupt):
            other.get(oid)
        with pytest.raises(CorruptObjectError, match=corrupt):
            other.verify(oid)
        with pytest.raises(CorruptObjectError, match=corrupt):
            other.open_mapped(oid)
        with pytest.raises(CorruptObjectError, match=corrupt):
            b"".join(other.read_blocks(oid))
        for copy in [c for c in other.copies() if c.oid == oid]:
            with pytest.raises(CorruptObjectError, match=corrupt):
                other.verify_copy(copy)
        assert other.get(keep) == b"untouched" * 1000

    def test_a_copy_found_corrupt_is_not_present_and_adding_it_again_repairs_it(
        self, any_store: Store
    ) -> None:
        data = floats(30_000)
        oid = any_store.add(data, itemsize=4)
        any_store.sync()
        damage(any_store, oid)
        assert any_store.exists(oid)  # nothing has read it yet: presence is not a read
        with pytest.raises(CorruptObjectError):
            reopened(any_store).get(oid)
        writer = reopened(any_store)  # another process: the failed read is remembered
        assert not writer.exists(oid)
        assert writer.add(data, itemsize=4) == oid
        writer.sync()
        assert reopened(any_store).get(oid) == data and reopened(any_store).exists(oid)

    def test_remove_takes_every_copy_and_nothing_else(self, any_store: Store) -> None:
        gone, kept = any_store.add(b"gone" * 3000), any_store.add(b"kept" * 3000)
        any_store.sync()
        any_store.remove(gone)
        assert not any_store.exists(gone) and not reopened(any_store).exists(gone)
        assert reopened(any_store).get(kept) == b"kept" * 3000
        assert list(reopened(any_store)) == [kept]

    def test_a_stream_is_stored_only_if_it_hashes_to_its_id(self, any_store: Store) -> None:
        data = b"streamed" * 4000
        oid = oid_of(data)
        with pytest.raises(CorruptObjectError, match=f"object {oid} is corrupt"):
            any_store.add_stream(oid, [data[:100], b"not the rest"])
        assert not any_store.exists(oid)
        assert any_store.add_stream(oid, [data[:100], data[100:]]) == len(data)
        any_store.sync()
        assert reopened(any_store).get(oid) == data

    def test_prune_and_repack_keep_exactly_the_live_objects(self, any_store: Store) -> None:
        live = [any_store.add(bytes([i]) * 5000) for i in range(5)]
        dead = [any_store.add(bytes([100 + i]) * 5000) for i in range(5)]
        any_store.sync()
        store = reopened(any_store)
        store.prune(set(live), among=store.pack_names())
        store.repack(((oid, None) for oid in live), merge=store.pack_names())
        after = reopened(any_store)
        assert list(after) == sorted(live)
        assert all(not after.exists(oid) for oid in dead)
        assert [after.get(oid) for oid in live] == [bytes([i]) * 5000 for i in range(5)]
        assert after.is_compact() and not list(after.leftovers())
        assert after.index_problems() == []


# --- how the disk store keeps its bytes ----------------------------------------------------
def test_object_is_named_by_the_hash_of_its_raw_bytes(store: ObjectStore) -> None:
    data = floats(5000)
    oid = store.add(data, itemsize=4)
    assert oid == oid_of(data) and len(oid) == 32
    assert store.get(oid) == data  # readable before sync (an unfinished pack)
    store.sync()
    assert store.get(oid) == data
    assert store.size(oid) == len(data)
    other = ObjectStore(store.root)  # another process
    assert other.get(oid) == data and other.exists(oid)


def test_objects_are_read_only_on_disk(store: ObjectStore) -> None:
    oid = store.add(b"hello" * 2000)
    store.sync()
    (copy,) = [c for c in store.copies() if c.oid == oid]
    assert stat.S_IMODE(file_of(store, copy).stat().st_mode) == 0o444


def test_adding_the_same_bytes_twice_stores_one_copy(store: ObjectStore) -> None:
    oid = store.add(b"x" * 10_000)
    assert store.add(b"x" * 10_000) == oid
    store.sync()
    again = ObjectStore(store.root, packed=store.packed)
    assert again.add(b"x" * 10_000) == oid
    again.sync()
    assert [c.oid for c in again.copies()] == [oid]
    assert list(again) == [oid]


def test_nothing_is_visible_to_others_before_sync(store: ObjectStore) -> None:
    oid = store.add(b"p" * 9000)
    if store.packed:
        assert not ObjectStore(store.root).exists(oid)
    store.sync()
    assert ObjectStore(store.root).exists(oid)


def test_read_refuses_an_object_whose_bytes_changed(store: ObjectStore) -> None:
    data = floats(3000)
    oid = store.add(data, itemsize=4)
    store.sync()
    (copy,) = store.copies()
    flip(store, copy)
    fresh = ObjectStore(store.root)
    with pytest.raises(CorruptObjectError, match=f"object {oid} is corrupt .* in "):
        fresh.get(oid)
    with pytest.raises(CorruptObjectError, match=f"object {oid} is corrupt"):
        fresh.open_mapped(oid)
    with pytest.raises(CorruptObjectError, match=copy.where.rsplit("/", 1)[-1]):
        fresh.verify_copy(copy)


def test_a_good_second_copy_is_read_past_a_damaged_one(store: ObjectStore) -> None:
    data = b"twice" * 4000
    oid = store.add(data)
    store.sync()
    (first,) = store.copies()
    flip(store, first)
    # a second copy, as a concurrent writer or an interrupted gc leaves one
    second = ObjectStore(store.root.parent / "second", packed=True)
    second.add(data)
    second.add(b"another object, so that the pack differs")
    second.sync()
    for name in second.pack_names():
        for suffix in (".pack", ".idx"):
            src = second.pack_dir / f"pack-{name}{suffix}"
            store.pack_dir.mkdir(exist_ok=True)
            os.link(src, store.pack_dir / src.name)
    fresh = ObjectStore(store.root)
    assert fresh.get(oid) == data
    assert bytes(fresh.open_mapped(oid).view) == data


def test_malformed_ids_never_become_paths(store: ObjectStore) -> None:
    for bad in ["../../etc/passwd", "AB" * 16, "0" * 31, ""]:
        with pytest.raises(CorruptObjectError, match="malformed object id"):
            store.path(bad)
        with pytest.raises(CorruptObjectError, match="malformed object id"):
            store.get(bad)


def test_canonical_json_is_independent_of_key_order() -> None:
    assert canonical_json({"b": 1, "a": [1, 2]}) == canonical_json({"a": [1, 2], "b": 1})
    assert canonical_json({"a": 1}) == b'{"a":1}'


def test_open_mapped_is_a_verified_view(store: ObjectStore) -> None:
    big = floats(100_000)
    oids = [store.add(big, itemsize=4), store.add(b"s" * 100)]
    for oid, data in zip(oids, [big, b"s" * 100], strict=True):
        m = store.open_mapped(oid)
        assert bytes(m.view) == data
        m.close()
    store.sync()
    for oid, data in zip(oids, [big, b"s" * 100], strict=True):
        m = ObjectStore(store.root).open_mapped(oid)
        assert bytes(m.view) == data
        m.close()


def test_stored_size_shows_compression(store: ObjectStore) -> None:
    data = floats(50_000)
    oid = store.add(data, itemsize=4)
    store.sync()
    assert store.size(oid) == len(data)
    if store.compress:
        assert store.stored_size(oid) < len(data) // 2
    else:
        assert store.stored_size(oid) == len(data)


def test_iteration_skips_temporary_files(store: ObjectStore) -> None:
    oid = store.add(b"data" * 2000)
    store.sync()
    store.path(oid).parent.mkdir(parents=True, exist_ok=True)
    (store.path(oid).parent / ".tmp-1-abc-x").write_bytes(b"partial")
    assert list(store) == [oid]
    assert [p.name for p in store.leftovers()] == [".tmp-1-abc-x"]


def test_a_decode_buffer_still_viewed_is_never_reused(tmp_path: Path) -> None:
    store = make_store(tmp_path, "compressed")
    first, second = floats(40_000), floats(40_000)[::-1]
    a, b = store.add(first, itemsize=4), store.add(second, itemsize=4)
    store.sync()
    mapped = store.open_mapped(a)
    kept = mapped.view[:100]  # a reader that kept a slice past close()
    mapped.close()
    again = store.open_mapped(b)
    assert bytes(again.view) == second
    assert bytes(kept) == first[:100]
    again.close()


def test_prune_drops_only_packs_that_hold_nothing_live(tmp_path: Path) -> None:
    store = make_store(tmp_path, "packed")
    dead_only = [store.add(bytes([i]) * 4000) for i in range(3)]
    first = store.sync()
    live, dead = store.add(b"live" * 1000), store.add(b"dead" * 1000)
    mixed = store.sync()
    loose_dead = store.add(b"loose" * 1000, loose=True)
    store.sync()
    assert store.prune({live}) == [first]
    assert store.pack_names() == [mixed]
    assert not any(store.exists(oid) for oid in [*dead_only, loose_dead])
    assert store.exists(dead)  # in a pack that also holds a live object: repack drops it
    store.repack([(live, None)], merge=store.pack_names())
    assert list(ObjectStore(store.root)) == [live]


def test_a_damage_mark_is_lifted_once_a_sound_copy_is_found(tmp_path: Path) -> None:
    store = make_store(tmp_path, "packed")
    data = b"marked" * 3000
    oid = store.add(data)
    store.sync()
    (copy,) = store.copies()
    flip(store, copy)
    with pytest.raises(CorruptObjectError):
        ObjectStore(store.root).get(oid)
    assert (store.root / "damaged" / oid).exists()
    writer = ObjectStore(store.root)
    writer.add(data)  # the damaged packed copy stays; a sound loose one joins it
    writer.sync()
    assert [c.kind for c in ObjectStore(store.root).copies()] == ["loose", "packed"]
    assert ObjectStore(store.root).exists(oid)
    assert not (store.root / "damaged").exists()
