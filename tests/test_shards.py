"""A folder of shards is one model: one tensor namespace for diff, one state dict for load()."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelreg import ModelRegistry
from modelreg.errors import ModelregError

from .conftest import CliRun
from .models import save_safetensors, save_torch, small_state_dict


def resnet_state(torch_mod) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    import torchvision

    torch_mod.manual_seed(0)
    return torchvision.models.resnet18(weights=None).state_dict()


def shard(
    state: dict[str, Any], folder: Path, count: int, *, torch_files: bool = False, index: bool
) -> Path:
    """Save ``state`` as ``count`` shards the way Hugging Face names them."""
    folder.mkdir()
    names = list(state)
    per = -(-len(names) // count)
    weight_map = {}
    for i in range(count):
        part = {k: state[k] for k in names[i * per : (i + 1) * per]}
        if torch_files:
            file = f"pytorch_model-{i + 1:05d}-of-{count:05d}.bin"
            save_torch(folder / file, part)
        else:
            file = f"model-{i + 1:05d}-of-{count:05d}.safetensors"
            save_safetensors(folder / file, part)
        weight_map.update(dict.fromkeys(part, file))
    if index:
        name = "pytorch_model.bin.index.json" if torch_files else "model.safetensors.index.json"
        (folder / name).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    (folder / "config.json").write_text('{"model_type": "resnet"}')
    return folder


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)


def test_resharded_safetensors_diff_as_unchanged(repo_dir: Path, run: CliRun, torch_mod) -> None:
    state = resnet_state(torch_mod)
    run("register", "m", shard(state, repo_dir / "two", 2, index=True))
    run("register", "m", shard(state, repo_dir / "three", 3, index=False))
    d = json.loads(run("diff", "m@v1", "m@v2", "--json").stdout)
    t = d["tensors"]
    assert (t["changed"], t["added"], t["removed"]) == ([], [], [])
    assert t["unchanged"] == len(state) == 122
    text = run("diff", "m@v1", "m@v2").stdout
    assert "tensors: 0 changed, 0 added, 0 removed, 122 unchanged" in text
    assert len(text.splitlines()) < 20

    state["fc.bias"] = state["fc.bias"] + 1
    run("register", "m", shard(state, repo_dir / "four", 4, index=True))
    t = json.loads(run("diff", "m@v2", "m@v3", "--json").stdout)["tensors"]
    assert [c["name"] for c in t["changed"]] == ["fc.bias"] and t["unchanged"] == 121


def test_resharded_torch_shards_with_an_index_diff_as_unchanged(
    repo_dir: Path, run: CliRun, torch_mod
) -> None:
    state = small_state_dict()
    run("register", "t", shard(state, repo_dir / "a", 2, torch_files=True, index=True))
    run("register", "t", shard(state, repo_dir / "b", 3, torch_files=True, index=True))
    t = json.loads(run("diff", "t@v1", "t@v2", "--json").stdout)["tensors"]
    assert (t["changed"], t["added"], t["removed"], t["unchanged"]) == ([], [], [], 6)


@pytest.mark.parametrize(("torch_files", "index"), [(False, True), (False, False), (True, True)])
def test_load_merges_the_shards(repo_dir: Path, torch_mod, torch_files: bool, index: bool) -> None:
    state = small_state_dict()
    folder = shard(state, repo_dir / "s", 3, torch_files=torch_files, index=index)
    registry = ModelRegistry(".")
    registry.register("s", folder)
    assert _same(registry.load("s"), state)


def test_load_builds_a_module_from_shards(repo_dir: Path, torch_mod) -> None:
    import torchvision

    state = resnet_state(torch_mod)
    registry = ModelRegistry(".")
    registry.register(
        "r", shard(state, repo_dir / "r", 2, index=True), architecture="torchvision.models.resnet18"
    )
    model = registry.load("r")
    assert isinstance(model, torchvision.models.ResNet)
    assert _same(model.state_dict(), state)


def test_a_folder_shipping_safetensors_and_torch_copies_loads_the_safetensors(
    repo_dir: Path, torch_mod
) -> None:
    state = small_state_dict()
    folder = shard(state, repo_dir / "both", 2, index=True)
    save_torch(folder / "pytorch_model.bin", state)
    registry = ModelRegistry(".")
    registry.register("both", folder)
    assert _same(registry.load("both"), state)


def test_load_refuses_a_folder_of_several_models(repo_dir: Path, torch_mod) -> None:
    folder = repo_dir / "two"
    folder.mkdir()
    save_torch(folder / "a.pt", small_state_dict())
    save_torch(folder / "b.pt", small_state_dict(seed=1))
    registry = ModelRegistry(".")
    registry.register("two", folder)
    with pytest.raises(
        ModelregError, match=r"two@v1 is a folder with 2 model files, not all shards of one model"
    ):
        registry.load("two")
    sharded = shard(small_state_dict(), repo_dir / "mixed", 2, index=True)
    save_torch(sharded / "other.pt", small_state_dict(seed=1))
    registry.register("mixed", sharded)
    with pytest.raises(ModelregError, match=r"\(model-00001-of-00002\.safetensors \+ model-"):
        registry.load("mixed")


def test_load_refuses_a_tensor_held_by_two_shards(repo_dir: Path, torch_mod) -> None:
    folder = repo_dir / "dup"
    folder.mkdir()
    save_safetensors(folder / "a.safetensors", small_state_dict())
    save_safetensors(folder / "b.safetensors", {"conv.bias": small_state_dict()["conv.bias"]})
    registry = ModelRegistry(".")
    registry.register("dup", folder)
    with pytest.raises(ModelregError, match=r"dup@v1: tensor conv\.bias is in two shards"):
        registry.load("dup")


def test_diff_stat_and_limit(repo_dir: Path, run: CliRun, torch_mod) -> None:
    state = resnet_state(torch_mod)
    run("register", "m", save_torch(repo_dir / "a.pt", state))
    run("register", "m", save_torch(repo_dir / "b.pt", {k: v + 1 for k, v in state.items()}))
    default = run("diff", "m@v1", "m@v2").stdout.splitlines()
    assert "tensors: 122 changed, 0 added, 0 removed, 0 unchanged" in default
    assert sum(line.startswith("  ~ ") for line in default) == 50
    assert default[-1] == "  ... and 72 more"
    five = run("diff", "m@v1", "m@v2", "--limit", "5").stdout.splitlines()
    assert sum(line.startswith("  ~ ") for line in five) == 5 and five[-1] == "  ... and 117 more"
    everything = run("diff", "m@v1", "m@v2", "--limit", "0").stdout
    assert everything.count("\n  ~ ") == 122 and "more" not in everything
    stat = run("diff", "m@v1", "m@v2", "--stat").stdout
    assert "tensors: 122 changed" in stat and "  ~ " not in stat
    bad = run("diff", "m@v1", "m@v2", "--limit", "-1")
    assert bad.exit_code == 2 and "-1 is not in the range x>=0" in bad.stderr


def test_a_content_key_never_equates_two_tensors_inside_one_chunk() -> None:
    import base64

    from modelreg.modelinfo import StoredFile

    part = {"b": base64.b64encode(b"A" * 32 + b"B" * 32).decode()}
    manifest = {"size": 64, "parts": [part], "spans": [["x", 0, 32], ["y", 32, 32]]}
    f = StoredFile(None, manifest)  # type: ignore[arg-type]
    assert f.content_key(0, 32) != f.content_key(32, 32)
