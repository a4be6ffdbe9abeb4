"""register(name, model=...): a module or state dict in memory, stored without a file the
user has to write or clean up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelreg import ModelRegistry, _fs, maintenance
from modelreg.errors import InvalidInputError
from modelreg.repo import Repository

from .models import small_state_dict


def _staging_files(root: Path) -> list[str]:
    return [p.name for p in (root / ".modelreg").iterdir() if p.name.startswith(_fs.TMP_PREFIX)]


def test_a_module_is_stored_as_safetensors_and_loads_back_equal(
    repo_dir: Path, torch_mod: Any
) -> None:
    torch = torch_mod
    net = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    registry = ModelRegistry(".")
    info = registry.register("mlp", model=net, metrics={"loss": 0.5})
    assert (info["version"], info["source"], info["format"]) == (
        "v1",
        "model.safetensors",
        "safetensors",
    )
    assert info["inspect"]["safety"] == "safe" and info["architecture"] is None
    loaded = registry.load("mlp")
    assert loaded.keys() == net.state_dict().keys()
    assert all(torch.equal(loaded[k], v) for k, v in net.state_dict().items())
    assert _staging_files(repo_dir) == []
    assert Path(registry.get("mlp")["file_path"]).name == "model.safetensors"


def test_a_torchvision_module_gets_its_builder_as_architecture(
    repo_dir: Path, torch_mod: Any
) -> None:
    torchvision = pytest.importorskip("torchvision")
    net = torchvision.models.resnet18(num_classes=4)  # a remade head still matches resnet18
    registry = ModelRegistry(".")
    info = registry.register("r18", model=net)
    assert info["architecture"] == "torchvision.models.resnet18"
    again = registry.load("r18")
    assert type(again).__name__ == "ResNet" and again.fc.out_features == 4
    assert torch_mod.equal(again.fc.weight, net.fc.weight)
    explicit = registry.register("r18", model=net, architecture="my.own.Net")
    assert explicit["architecture"] == "my.own.Net"


def test_tied_weights_and_non_tensor_values_go_to_a_torch_checkpoint(
    repo_dir: Path, torch_mod: Any
) -> None:
    torch = torch_mod

    class Tied(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Linear(6, 6)
            self.head = torch.nn.Linear(6, 6)
            self.head.weight = self.embed.weight  # shared memory: safetensors refuses it

    registry = ModelRegistry(".")
    tied = registry.register("tied", model=Tied())
    assert (tied["source"], tied["format"], tied["inspect"]["safety"]) == (
        "model.pt",
        "torch-zip",
        "safe",
    )
    state = {**small_state_dict(), "step": 7}
    mixed = registry.register("mixed", model=state)
    assert mixed["format"] == "torch-zip"
    loaded = registry.load("mixed")
    assert loaded["step"] == 7 and torch.equal(loaded["fc.weight"], state["fc.weight"])
    assert _staging_files(repo_dir) == []


def test_a_plain_state_dict_twice_stores_its_tensors_once(repo_dir: Path, torch_mod: Any) -> None:
    registry = ModelRegistry(".")
    state = small_state_dict()
    registry.register("sd", model=state)
    before = maintenance.stats(registry.repo).stored_bytes
    registry.register("sd", model={k: v.clone() for k, v in state.items()})
    assert maintenance.stats(registry.repo).stored_bytes - before < 2000  # the record only


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": object()}, "must be a torch.nn.Module or a state dict"),
        ({"model": {}}, "has no tensors"),
        ({}, "give either model_path or model"),
    ],
)
def test_bad_models_are_refused_before_anything_is_written(
    repo_dir: Path, torch_mod: Any, kwargs: dict[str, Any], message: str
) -> None:
    registry = ModelRegistry(".")
    with pytest.raises(InvalidInputError, match=message):
        registry.register("m", **kwargs)
    assert registry.list() == [] and _staging_files(repo_dir) == []


def test_both_a_path_and_a_model_is_refused(repo_dir: Path, torch_mod: Any) -> None:
    with pytest.raises(InvalidInputError, match="not both or neither"):
        ModelRegistry(".").register("m", "x.pt", model=small_state_dict())


def test_a_staging_file_left_by_a_killed_process_is_a_gc_leftover(repo: Repository) -> None:
    left = _fs.tmp_name(repo.dir / "staged-model")
    left.write_bytes(b"half a model")
    plan = maintenance.gc(repo)
    assert left in plan.leftovers and not left.exists()
