"""Partial tensor reads: load(tensors=...) and open_tensors read only the chunks they need."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from modelreg import ModelRegistry
from modelreg.errors import CorruptObjectError, InvalidInputError, NotFoundError

from .models import save_safetensors, save_torch, small_state_dict


def _odd_state() -> dict[str, Any]:
    """Tensors torch.save writes with offsets, strides and shared storages."""
    import torch

    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    state = small_state_dict()
    state["view.t"] = base.t()  # non-contiguous, shares base's storage
    state["view.row"] = base[2]  # storage offset 12
    state["view.base"] = base
    state["half"] = torch.arange(7, dtype=torch.bfloat16)
    state["empty"] = torch.zeros(0, 3)
    return state


def _big_state(n: int = 6, numel: int = 64 << 10) -> dict[str, Any]:
    import torch

    g = torch.Generator().manual_seed(1)
    return {f"block{i}.weight": torch.randn(numel, generator=g) for i in range(n)}


def _equal(a: Any, b: Any) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and bool((a == b).all())


def test_load_tensors_of_a_torch_zip_match_a_full_load(repo_dir: Path, torch_mod) -> None:
    state = _odd_state()
    registry = ModelRegistry(".")
    registry.register("m", save_torch(repo_dir / "m.pt", state))
    got = registry.load("m", tensors=list(state))
    assert list(got) == list(state)
    for name, tensor in state.items():
        assert _equal(got[name], tensor), name
        assert got[name].stride() == tensor.stride(), name


def test_load_tensors_of_safetensors_by_glob(repo_dir: Path, torch_mod) -> None:
    state = small_state_dict()
    registry = ModelRegistry(".")
    registry.register("s", save_safetensors(repo_dir / "m.safetensors", state))
    got = registry.load("s", tensors=["conv.*", "fc.bias"])
    assert sorted(got) == ["conv.bias", "conv.weight", "fc.bias"]
    for name in got:
        assert _equal(got[name], state[name])


def test_a_legacy_torch_file_is_read_whole_then_picked_from(repo_dir: Path, torch_mod) -> None:
    import torch

    state = small_state_dict()
    path = repo_dir / "old.pt"
    torch.save(state, path, _use_new_zipfile_serialization=False)
    registry = ModelRegistry(".")
    registry.register("old", path)
    got = registry.load("old", tensors=["fc.*"])
    assert sorted(got) == ["fc.bias", "fc.weight"]
    assert _equal(got["fc.weight"], state["fc.weight"])


@pytest.mark.parametrize("save", [save_torch, save_safetensors])
def test_one_tensor_costs_about_its_own_chunks(repo_dir: Path, torch_mod, save) -> None:
    state = _big_state()
    registry = ModelRegistry(".")
    registry.register("big", save(repo_dir / "big.bin", state))
    found = registry.open_tensors("big")
    assert len(found) == len(state) and found.source.bytes_read < 64 << 10  # type: ignore[attr-defined]
    tensor = found["block3.weight"]
    assert _equal(tensor, state["block3.weight"])
    size = tensor.numel() * tensor.element_size()
    total = sum(t.numel() * 4 for t in state.values())
    read = found.source.bytes_read  # type: ignore[attr-defined]
    assert size <= read <= 3 * size < total


def test_damage_elsewhere_does_not_stop_a_partial_read(repo_dir: Path, torch_mod) -> None:
    from modelreg.modelinfo import StoredFile

    state = _big_state()
    registry = ModelRegistry(".")
    rec = registry.register("big", save_torch(repo_dir / "big.pt", state))
    store = registry.repo.objects
    manifest = store.get_json(rec["root"])
    f = StoredFile(store, manifest)
    span = next(v for k, v in f.spans.items() if k.endswith("data/0"))
    victim_id = f.chunk_ids(*span)[0]
    copy = next(c for c in store.copies() if c.oid == victim_id)
    pack = store.pack_dir / copy.where
    pack.chmod(0o644)
    data = bytearray(pack.read_bytes())
    data[copy.offset + 10] ^= 1
    pack.write_bytes(bytes(data))
    got = registry.load("big", tensors=["block5.weight"])  # not in storage 0
    assert _equal(got["block5.weight"], state["block5.weight"])
    with pytest.raises(CorruptObjectError, match=r"cannot load big@v1: object .* is corrupt"):
        registry.load("big", tensors=["block0.weight"])


def test_a_name_matching_nothing_is_one_clear_error(repo_dir: Path, torch_mod) -> None:
    registry = ModelRegistry(".")
    registry.register("m", save_torch(repo_dir / "m.pt", small_state_dict()))
    with pytest.raises(NotFoundError) as e:
        registry.load("m", tensors=["fc.weights"])
    message = str(e.value)
    assert "m@v1 has no tensor 'fc.weights' (near: fc.weight" in message
    assert "\n" not in message
    with pytest.raises(NotFoundError, match=r"no tensor 'head\.\*'"):
        registry.load("m", tensors=["head.*"])
    with pytest.raises(InvalidInputError, match="cannot be combined"):
        registry.load("m", tensors=["fc.bias"], as_module=True)


def test_open_tensors_is_a_lazy_read_only_mapping(repo_dir: Path, torch_mod) -> None:
    state = small_state_dict()
    registry = ModelRegistry(".")
    registry.register("m", save_torch(repo_dir / "m.pt", state))
    found = registry.open_tensors("m")
    assert set(found) == set(state) and "fc.bias" in found
    assert _equal(found["fc.bias"], state["fc.bias"])
    with pytest.raises(KeyError):
        found["nope"]
    assert found.select(["bn.*"]) == ["bn.running_mean", "bn.num_batches_tracked"]


def test_a_sharded_folder_maps_every_shard(repo_dir: Path, torch_mod) -> None:
    import json

    folder = repo_dir / "sharded"
    folder.mkdir()
    state = small_state_dict()
    names = list(state)
    save_safetensors(folder / "a.safetensors", {k: state[k] for k in names[:3]})
    save_safetensors(folder / "b.safetensors", {k: state[k] for k in names[3:]})
    weight_map = {k: ("a" if i < 3 else "b") + ".safetensors" for i, k in enumerate(names)}
    index = {"metadata": {}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    registry = ModelRegistry(".")
    registry.register("sh", folder)
    got = registry.load("sh", tensors=["*bias"])
    assert sorted(got) == ["conv.bias", "fc.bias"]
    assert _equal(got["fc.bias"], state["fc.bias"])


def test_a_storage_shorter_than_its_tensor_is_refused(repo_dir: Path, torch_mod) -> None:
    """A zip whose data.pkl promises more elements than the storage record holds (a forged
    file): the read stops with one line, never reading past the record."""
    import zipfile

    import torch

    path = save_torch(repo_dir / "m.pt", {"a": torch.arange(100.0), "b": torch.ones(3)})
    forged = repo_dir / "forged.pt"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(forged, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("data/0"):
                data = data[:40]
            dst.writestr(info.filename, data)
    registry = ModelRegistry(".")
    registry.register("f", forged)
    with pytest.raises(CorruptObjectError, match="tensor a reaches outside its storage") as e:
        registry.load("f", tensors=["a"], trust=True)
    assert "\n" not in str(e.value)
    assert bool((registry.load("f", tensors=["b"], trust=True)["b"] == 1).all())


def test_the_chunk_source_is_pluggable(repo_dir: Path, torch_mod) -> None:
    """A source that is not the registry's store (as a remote fetcher will be) serves the
    chunks, and is told each tensor's chunks before they are read."""
    from modelreg import tensors
    from modelreg.files import chunk_ids
    from modelreg.modelinfo import StoredFile
    from modelreg.store_api import MemoryObjectStore

    state = _big_state(n=3)
    registry = ModelRegistry(".")
    rec = registry.register("big", save_torch(repo_dir / "big.pt", state))
    store = registry.repo.objects
    elsewhere = MemoryObjectStore()
    for oid in chunk_ids(store.get_json(rec["root"])):
        elsewhere.add(store.get(oid), oid)
        store.remove(oid)

    class Fetcher(tensors.StoreSource):
        announced: ClassVar[list[str]] = []
        unannounced: ClassVar[list[str]] = []

        def prefetch(self, oids):  # type: ignore[no-untyped-def]
            self.announced.extend(oids)

        def get(self, oid: str) -> bytes:
            if oid not in self.announced:
                self.unannounced.append(oid)
            return super().get(oid)

    found = tensors.open_tensors(
        registry.repo, registry.repo.lookup("big"), lambda _s: Fetcher(elsewhere)
    )
    assert _equal(found["block1.weight"], state["block1.weight"])
    assert found.source.bytes_read >= 4 * (64 << 10)  # type: ignore[attr-defined]
    assert Fetcher.announced and set(Fetcher.announced) <= set(elsewhere.blobs)
    f = StoredFile(elsewhere, store.get_json(rec["root"]))
    wanted = f.chunk_ids(*next(v for k, v in f.spans.items() if k.endswith("data/1")))
    assert wanted and set(wanted) <= set(Fetcher.announced)
    assert not set(wanted) & set(Fetcher.unannounced)  # asked for in a batch, then read
    with pytest.raises(CorruptObjectError, match="is missing"):
        registry.load("big", tensors=["block1.weight"])  # the registry alone lacks them


def test_a_second_project_reads_what_the_first_fetched_from_the_cache(
    tmp_path: Path, torch_mod
) -> None:
    """Two registries that hold a version's manifests but not its chunks (as lazy clones
    do): the first fetches one tensor's chunks from the "remote" into the shared cache, the
    second reads them from there and fetches nothing."""
    from modelreg import tensors
    from modelreg.files import chunk_ids
    from modelreg.repo import Repository
    from modelreg.store_api import MemoryObjectStore, Store

    state = _big_state(n=4)
    source = save_torch(tmp_path / "big.pt", state)
    remote = MemoryObjectStore()
    asked: list[list[str]] = []

    def fetch(into: Store, ids: list[str]) -> None:
        asked.append(ids)
        for oid in ids:
            into.add(remote.get(oid), oid)

    projects = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        repo, _ = Repository.init(tmp_path / name)
        rec = repo.register("big", source)
        for oid in chunk_ids(repo.objects.get_json(rec["root"])):
            remote.add(repo.objects.get(oid), oid)
            repo.objects.remove(oid)
        projects.append((repo, rec))

    sources = []
    for repo, rec in projects:
        found = tensors.open_tensors(repo, rec, lambda s: tensors.FetchingSource(s, fetch))
        assert _equal(found["block2.weight"], state["block2.weight"])
        sources.append(found.source)
    first, second = sources
    assert first.fetched > 0 and len(asked) >= 1  # type: ignore[attr-defined]
    assert second.fetched == 0  # type: ignore[attr-defined]
    assert second.bytes_read == first.bytes_read  # type: ignore[attr-defined]
    assert sum(map(len, asked)) < len(remote.blobs)  # only block2's chunks moved


def test_a_lazy_clone_reads_one_tensor_fetching_only_its_chunks(tmp_path: Path, torch_mod) -> None:
    from modelreg.cache import Cache

    state = _big_state(n=4)
    alice = ModelRegistry(tmp_path / "alice")
    alice.register("big", save_torch(tmp_path / "big.pt", state))
    alice.add_remote("origin", str(tmp_path / "remote"))
    alice.push()
    bob = ModelRegistry.clone(str(tmp_path / "remote"), tmp_path / "bob")
    got = bob.load("big", tensors=["block2.weight"])
    assert _equal(got["block2.weight"], state["block2.weight"])
    stored = alice.list("big")[0]["size"]
    assert 0 < Cache().stats().bytes < stored / 2  # one of four blocks, not the file
