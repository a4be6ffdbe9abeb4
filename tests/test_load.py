"""ModelRegistry.load: real checkpoints back into memory through weights-only loaders."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelreg import ModelRegistry
from modelreg.errors import ModelregError

from .models import save_safetensors, save_torch, small_state_dict


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)


def test_load_returns_the_state_dict(repo_dir: Path, torch_mod) -> None:
    state = small_state_dict()
    registry = ModelRegistry(".")
    registry.register("m", save_torch(repo_dir / "m.pt", state))
    assert _same(registry.load("m"), state)


def test_load_reads_safetensors(repo_dir: Path, torch_mod) -> None:
    state = small_state_dict()
    registry = ModelRegistry(".")
    registry.register("s", save_safetensors(repo_dir / "m.safetensors", state))
    assert _same(registry.load("s"), state)


def test_load_builds_the_torchvision_module_the_architecture_names(
    repo_dir: Path, torch_mod
) -> None:
    import torchvision

    torch_mod.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    registry = ModelRegistry(".")
    path = save_torch(repo_dir / "r.pt", model.state_dict())
    registry.register("r", path, architecture="torchvision.models.resnet18")
    loaded = registry.load("r")
    assert isinstance(loaded, torchvision.models.ResNet) and not loaded.training
    assert _same(loaded.state_dict(), model.state_dict())
    assert isinstance(registry.load("r", as_module=False), dict)


def test_load_explains_a_state_dict_that_does_not_fit(repo_dir: Path, torch_mod) -> None:
    registry = ModelRegistry(".")
    registry.register(
        "x",
        save_torch(repo_dir / "x.pt", small_state_dict()),
        architecture="torchvision.models.resnet18",
    )
    with pytest.raises(ModelregError, match=r"x@v1 does not fit torchvision\.models\.resnet18"):
        registry.load("x")
    registry.register("y", repo_dir / "x.pt", architecture="torchvision.models.nope")
    with pytest.raises(ModelregError, match=r"'torchvision\.models\.nope' is not a torchvision"):
        registry.load("y", as_module=True)


def test_load_refuses_formats_it_cannot_read(repo_dir: Path, torch_mod) -> None:
    (repo_dir / "notes.bin").write_bytes(b"\x00" * 100)
    registry = ModelRegistry(".")
    registry.register("n", repo_dir / "notes.bin")
    with pytest.raises(ModelregError, match="n@v1 is a raw file"):
        registry.load("n")


def test_load_reads_from_the_store_and_writes_no_checkout(repo_dir: Path, torch_mod) -> None:
    state = small_state_dict()
    registry = ModelRegistry(".")
    registry.register("m", save_torch(repo_dir / "m.pt", state))
    registry.register("s", save_safetensors(repo_dir / "m.safetensors", state))
    assert _same(registry.load("m"), state) and _same(registry.load("s"), state)
    assert not (repo_dir / "models").exists()


def test_load_refuses_a_version_whose_chunk_was_damaged(repo_dir: Path, torch_mod) -> None:
    from modelreg.errors import CorruptObjectError
    from modelreg.files import chunk_ids

    registry = ModelRegistry(".")
    rec = registry.register("m", save_torch(repo_dir / "m.pt", small_state_dict()))
    store = registry.repo.objects
    victim = store.path(chunk_ids(store.get_json(rec["root"]))[0])
    victim.chmod(0o644)
    data = bytearray(victim.read_bytes())
    data[100] ^= 1
    victim.write_bytes(bytes(data))
    with pytest.raises(CorruptObjectError, match=r"cannot load m@v1: object .* is corrupt"):
        registry.load("m")


def test_a_fine_tuned_head_with_other_classes_loads_as_its_module(
    repo_dir: Path, torch_mod
) -> None:
    import torchvision

    torch_mod.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=4)
    torch_mod.save(model.state_dict(), repo_dir / "r.pth")
    registry = ModelRegistry(".")
    registry.register("r", "r.pth", architecture="torchvision.models.resnet18")
    loaded = registry.load("r")
    assert isinstance(loaded, torch_mod.nn.Module)
    assert loaded.fc.out_features == 4
    assert torch_mod.equal(loaded.fc.weight, model.fc.weight)
