"""The object store's contract, run against every way it keeps objects: loose files, packs
(objects of an unfinished pack, and after sync), and packs compressed as they are added."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from modelreg.errors import CorruptObjectError, NotFoundError
from modelreg.hashing import oid_of
from modelreg.objects import Copy, ObjectStore, canonical_json

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


def test_missing_object_is_reported_by_id(store: ObjectStore) -> None:
    with pytest.raises(NotFoundError, match=r"object 0{32} is missing"):
        store.get("0" * 32)
    assert not store.exists("0" * 32)


def test_malformed_ids_never_become_paths(store: ObjectStore) -> None:
    for bad in ["../../etc/passwd", "AB" * 16, "0" * 31, ""]:
        with pytest.raises(CorruptObjectError, match="malformed object id"):
            store.path(bad)
        with pytest.raises(CorruptObjectError, match="malformed object id"):
            store.get(bad)


def test_canonical_json_is_independent_of_key_order() -> None:
    assert canonical_json({"b": 1, "a": [1, 2]}) == canonical_json({"a": [1, 2], "b": 1})
    assert canonical_json({"a": 1}) == b'{"a":1}'


def test_json_round_trip(store: ObjectStore) -> None:
    oid = store.add_json({"type": "file", "n": [1, 2]})
    store.sync()
    assert ObjectStore(store.root).get_json(oid) == {"type": "file", "n": [1, 2]}


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


def test_remove_takes_a_loose_copy(store: ObjectStore) -> None:
    oid = store.add(b"gone" * 2000, loose=True)
    store.sync()
    store.remove(oid)
    assert not store.exists(oid)


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
