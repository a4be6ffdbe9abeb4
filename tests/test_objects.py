from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from modelreg.errors import CorruptObjectError, NotFoundError
from modelreg.hashing import oid_of
from modelreg.objects import ObjectStore, canonical_json


def test_object_is_named_by_its_hash_and_read_only(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    oid = store.add(b"hello")
    assert oid == oid_of(b"hello") and len(oid) == 32
    path = store.path(oid)
    assert path == tmp_path / oid[:2] / oid[2:]
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert store.get(oid) == b"hello"


def test_adding_the_same_bytes_twice_writes_once(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    oid = store.add(b"x" * 10)
    before = store.path(oid).stat().st_mtime_ns
    store.sync()
    assert store.add(b"x" * 10) == oid
    assert store.path(oid).stat().st_mtime_ns == before
    assert list(store) == [oid]


def test_read_refuses_an_object_whose_bytes_changed(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    oid = store.add(b"payload")
    path = store.path(oid)
    os.chmod(path, 0o644)
    path.write_bytes(b"pAyload")
    with pytest.raises(CorruptObjectError, match=f"object {oid} is corrupt"):
        store.get(oid)


def test_missing_object_is_reported_by_id(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    with pytest.raises(NotFoundError, match=r"object 0{32} is missing"):
        store.get("0" * 32)


def test_malformed_ids_never_become_paths(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    for bad in ["../../etc/passwd", "AB" * 16, "0" * 31, ""]:
        with pytest.raises(CorruptObjectError, match="malformed object id"):
            store.path(bad)


def test_canonical_json_is_independent_of_key_order() -> None:
    assert canonical_json({"b": 1, "a": [1, 2]}) == canonical_json({"a": [1, 2], "b": 1})
    assert canonical_json({"a": 1}) == b'{"a":1}'


def test_iteration_skips_temporary_files(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    oid = store.add(b"data")
    (store.path(oid).parent / ".tmp-1-abc-x").write_bytes(b"partial")
    assert list(store) == [oid]
    assert [p.name for p in store.leftovers()] == [".tmp-1-abc-x"]
