from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelreg import files, formats
from modelreg.chunking import ChunkParams
from modelreg.hashing import oid_of
from modelreg.objects import ObjectStore

from .conftest import write_bytes
from .models import save_safetensors, save_torch, small_state_dict

SMALL = ChunkParams(inline_max=64, split=4096, cdc_min=1024, cdc_avg_bits=11, cdc_max=8192)


def roundtrip(tmp_path: Path, path: Path, params: ChunkParams = SMALL) -> dict:
    store = ObjectStore(tmp_path / "objects")
    _oid, manifest = files.store_file(store, path, params, plan=formats.plan)
    assert b"".join(bytes(p) for p in files.iter_file(store, manifest)) == path.read_bytes()
    return manifest


def plan_of(path: Path) -> tuple[str, list | None]:
    with open(path, "rb") as f:
        return formats.plan(f, path.stat().st_size)


def test_torch_checkpoint_is_cut_at_each_tensor_record(tmp_path: Path, torch_mod) -> None:
    path = save_torch(tmp_path / "m.pt", small_state_dict())
    fmt, spans = plan_of(path)
    assert fmt == "torch-zip"
    assert spans is not None
    named = {name for _s, _n, name in spans if name}
    assert any(n.endswith("/data.pkl") for n in named)
    assert sum(1 for n in named if "/data/" in n) == 6  # one storage per tensor
    assert sum(length for _s, length, _n in spans) == path.stat().st_size
    roundtrip(tmp_path, path)


def test_resaving_the_same_state_dict_reuses_every_tensor_chunk(tmp_path: Path, torch_mod) -> None:
    state = small_state_dict()
    a = save_torch(tmp_path / "model_final.pt", state)
    b = save_torch(tmp_path / "model_real_final.pt", state)
    assert a.read_bytes() != b.read_bytes()  # torch.save never repeats its bytes
    store = ObjectStore(tmp_path / "objects")
    params = ChunkParams(inline_max=1024)  # headers and the zip directory stay inline
    _, ma = files.store_file(store, a, params, plan=formats.plan)
    _, mb = files.store_file(store, b, params, plan=formats.plan)
    assert files.chunk_ids(ma) and set(files.chunk_ids(mb)) <= set(files.chunk_ids(ma))


def test_safetensors_is_cut_into_header_and_tensors(tmp_path: Path, torch_mod) -> None:
    path = save_safetensors(tmp_path / "m.safetensors", small_state_dict())
    fmt, spans = plan_of(path)
    assert fmt == "safetensors"
    assert spans is not None
    assert {n for _s, _l, n in spans if n} == set(small_state_dict())
    roundtrip(tmp_path, path)


def test_large_tensors_are_split_so_a_partial_change_stores_only_its_piece(
    tmp_path: Path, torch_mod
) -> None:
    state = small_state_dict(big=256)
    a = save_torch(tmp_path / "a.pt", state)
    state["fc.weight"][0, 0] += 1  # one value in the first piece of one tensor
    b = save_torch(tmp_path / "b.pt", state)
    store = ObjectStore(tmp_path / "objects")
    params = ChunkParams(inline_max=1024, split=4096)
    _, ma = files.store_file(store, a, params, plan=formats.plan)
    _, mb = files.store_file(store, b, params, plan=formats.plan)
    new = set(files.chunk_ids(mb)) - set(files.chunk_ids(ma))
    assert len(files.chunk_ids(mb)) > 10 and len(new) == 1


def test_a_truncated_zip_falls_back_to_cdc_and_still_rebuilds(tmp_path: Path, torch_mod) -> None:
    whole = save_torch(tmp_path / "m.pt", small_state_dict()).read_bytes()
    broken = tmp_path / "broken.pt"
    broken.write_bytes(whole[: len(whole) // 2])
    assert plan_of(broken) == ("raw", None)
    assert roundtrip(tmp_path, broken)["format"] == "raw"


def test_a_file_that_looks_like_safetensors_but_is_not_falls_back(tmp_path: Path) -> None:
    path = tmp_path / "odd.bin"
    path.write_bytes((20).to_bytes(8, "little") + b'{"x": {"data_offsets": [0, 999]}}xxxx')
    assert plan_of(path) == ("raw", None)
    roundtrip(tmp_path, path)


def test_cdc_cuts_are_deterministic_and_survive_an_insertion(tmp_path: Path) -> None:
    data = write_bytes(tmp_path / "a", 200_000).read_bytes()
    (tmp_path / "b").write_bytes(b"inserted!" + data)
    store = ObjectStore(tmp_path / "objects")
    _, ma = files.store_file(store, tmp_path / "a", SMALL, plan=formats.plan)
    _, ma2 = files.store_file(store, tmp_path / "a", SMALL, plan=formats.plan)
    _, mb = files.store_file(store, tmp_path / "b", SMALL, plan=formats.plan)
    assert ma == ma2
    sizes = [p["n"] for p in ma["parts"] if "o" in p]
    assert min(sizes[:-1]) >= SMALL.cdc_min and max(sizes) <= SMALL.cdc_max
    shared = set(files.chunk_ids(ma)) & set(files.chunk_ids(mb))
    assert len(shared) >= len(files.chunk_ids(ma)) - 2


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=40_000), st.integers(0, 2**32))
def test_any_bytes_rebuild_exactly(tmp_path_factory, data: bytes, seed: int) -> None:
    tmp = tmp_path_factory.mktemp("rt")
    rnd = random.Random(seed)
    path = tmp / "f"
    path.write_bytes(data + rnd.randbytes(rnd.randrange(0, 20_000)))
    roundtrip(tmp, path)


@pytest.mark.parametrize("size", [0, 1, SMALL.inline_max, SMALL.inline_max + 1])
def test_edge_sizes_rebuild(tmp_path: Path, size: int) -> None:
    path = write_bytes(tmp_path / "f", size)
    roundtrip(tmp_path, path)


def test_objects_written_while_reading_ahead_match_their_ids(tmp_path: Path, torch_mod) -> None:
    """Many tensors with small inline headers between them: the pattern in which a reused read
    buffer could be refilled before its chunk was written."""
    g = torch_mod.Generator().manual_seed(7)
    state = {f"t{i}": torch_mod.randn(3000 + i, generator=g) for i in range(40)}
    path = save_torch(tmp_path / "many.pt", state)
    store = ObjectStore(tmp_path / "objects")
    _, manifest = files.store_file(store, path, ChunkParams(), plan=formats.plan)
    assert len(files.chunk_ids(manifest)) == 40
    for oid in store:
        assert oid_of(store.path(oid).read_bytes()) == oid
    assert b"".join(bytes(p) for p in files.iter_file(store, manifest)) == path.read_bytes()


def test_a_zip_whose_members_overlap_is_cut_as_raw(tmp_path: Path) -> None:
    """A zip directory can lie; a plan that does not tile the file is dropped, not trusted."""
    import zipfile

    path = tmp_path / "odd.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("a/data.pkl", b"x" * 5000)
        zf.writestr("a/data/0", b"y" * 5000)
    fmt, spans = plan_of(path)
    assert fmt == "torch-zip" and spans is not None
    data = bytearray(path.read_bytes())
    # point the second member's directory entry at the first member's local header
    last_entry = data.rfind(b"PK\x01\x02")
    data[last_entry + 42 : last_entry + 46] = (0).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    assert plan_of(path) == ("raw", None)
    roundtrip(tmp_path, path)


def test_a_legacy_torch_file_is_known_by_its_magic_number_pickle(tmp_path: Path, torch_mod) -> None:
    path = tmp_path / "legacy.pt"
    state = small_state_dict()
    state["view"] = torch_mod.arange(10.0)[2:6]  # a view saves its whole storage
    torch_mod.save(state, path, _use_new_zipfile_serialization=False)
    fmt, spans = plan_of(path)
    assert fmt == "torch-legacy" and spans is not None
    named = {name: length for _s, length, name in spans if name}
    assert len(named) == 7 and 40 in named.values()  # the view's storage: 10 float32
    assert sorted(named.values())[-1] == 10 * 64 * 16 * 4  # fc.weight
    assert roundtrip(tmp_path, path)["format"] == "torch-legacy"
    (tmp_path / "other.pkl").write_bytes(b"\x80\x02K\x07.")
    assert plan_of(tmp_path / "other.pkl") == ("raw", None)
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[:-3])  # storages no longer add up: cut by CDC
    assert plan_of(tmp_path / "cut.pt") == ("torch-legacy", None)
    roundtrip(tmp_path, tmp_path / "cut.pt")
