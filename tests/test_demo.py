from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelreg import ModelRegistry
from modelreg.diff import diff
from modelreg.maintenance import fsck

from .conftest import CliRun, tree_snapshot, write_bytes

NEW_OR_EMPTY = "pass a new or empty folder to --dir, or leave --dir out for a temporary one"


def _run_demo(target: Path, torch_home: Path) -> subprocess.CompletedProcess[str]:
    """`modelreg demo` in a child process whose torch hub cache is ``torch_home``."""
    env = {**os.environ, "TORCH_HOME": str(torch_home)}
    return subprocess.run(
        [sys.executable, "-m", "modelreg", "demo", "--dir", str(target)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def _held_out_accuracy(state: dict, torch_mod) -> float:  # type: ignore[no-untyped-def]
    """Measured again here, from the registered file, on the demo's held-out images."""
    import torchvision

    from modelreg.demo import CLASSES, make_task

    task = make_task()
    model = torchvision.models.resnet18(weights=None, num_classes=len(CLASSES)).eval()
    model.load_state_dict(state)
    with torch_mod.no_grad():
        predicted = model(task.test_x).argmax(1)
    return int((predicted == task.test_y).sum()) / len(task.test_y)


def test_demo_fine_tunes_the_head_and_v2_costs_kilobytes(tmp_path: Path, torch_mod) -> None:
    outer = ModelRegistry(tmp_path / "project")
    outer.register("resnet18", write_bytes(tmp_path / "project" / "w.pt", 5000))
    before = tree_snapshot(tmp_path / "project")
    target = tmp_path / "project" / "demo"  # new, but inside someone's registry
    done = _run_demo(target, torch_home=tmp_path / "empty-torch-cache")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "resnet18: no usable pretrained weights in the local torch cache" in out
    registry = ModelRegistry(target)
    assert [(r["name"], r["version"]) for r in registry.list()] == [
        ("mobilenet_v2", "v1"),
        ("resnet18", "v1"),
        ("resnet18", "v2"),
    ]
    v1, v2 = registry.get("resnet18", "v1"), registry.get("resnet18", "v2")
    assert v2["parent"] == "resnet18@v1"
    assert v1["tags"] == [] and "production" in v2["tags"]
    assert v1["dataset"] == v2["dataset"]
    assert v1["dataset"].startswith("synthetic patterns, 4 classes, 64x64, seed 0")
    acc1, acc2 = v1["metrics"]["accuracy"], v2["metrics"]["accuracy"]
    assert acc2 > acc1

    s1 = registry.load("resnet18", "v1", as_module=False)
    s2 = registry.load("resnet18", "v2", as_module=False)
    assert [k for k in s1 if not torch_mod.equal(s1[k], s2[k])] == ["fc.weight", "fc.bias"]
    assert _held_out_accuracy(s1, torch_mod) == acc1
    assert _held_out_accuracy(s2, torch_mod) == acc2

    tensors = diff(registry.repo, "resnet18@v1", "resnet18@v2")["tensors"]
    assert [c["name"] for c in tensors["changed"]] == ["fc.bias", "fc.weight"]
    assert tensors["added"] == tensors["removed"] == []
    assert "tensors: 2 changed, 0 added, 0 removed, 120 unchanged" in out
    assert "~ fc.bias" in out and "~ fc.weight" in out
    assert f"accuracy: {acc1} -> {acc2} (+{acc2 - acc1:.4g})" in out
    added_line = next(x for x in out.splitlines() if "resnet18@v2" in x and "added" in x)
    assert "KiB to the store, not another 42.7 MiB" in added_line
    assert "production: resnet18@v1 -> resnet18@v2" in out
    for step in ("get resnet18@production", "list", "families", "summary", "checkout", "stats"):
        assert step in out
    assert (
        Path(v2["file_path"]).read_bytes()
        == (target / "checkpoints" / "resnet18_head_finetuned.pth").read_bytes()
    )
    assert fsck(registry.repo).ok
    assert registry.root == target
    after = tree_snapshot(tmp_path / "project")
    assert {k: v for k, v in after.items() if not k.startswith("demo/")} == before


def test_demo_uses_weights_already_in_the_torch_cache(tmp_path: Path, torch_mod) -> None:
    """The pretrained branch, offline: files placed where torch.hub keeps downloads become
    the backbones, under the new heads."""
    import torchvision

    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    for builder, weights in (
        (torchvision.models.resnet18, torchvision.models.ResNet18_Weights),
        (torchvision.models.mobilenet_v2, torchvision.models.MobileNet_V2_Weights),
    ):
        torch_mod.manual_seed(1)
        name = Path(weights.DEFAULT.url).name
        torch_mod.save(builder(weights=None).state_dict(), cache / name)
    done = _run_demo(tmp_path / "demo", torch_home=tmp_path / "torch")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("pretrained weights found in the local torch cache") == 2
    registry = ModelRegistry(tmp_path / "demo")
    assert registry.get("resnet18", "v1")["description"] == (
        "ResNet-18, pretrained backbone (local torch cache), new 4-class fc (seed 0)"
    )
    cached = torch_mod.load(cache / "resnet18-f37072fd.pth", weights_only=True)
    for version in ("v1", "v2"):
        state = registry.load("resnet18", version, as_module=False)
        backbone = [k for k in state if not k.startswith("fc.")]
        assert len(backbone) == 120
        assert all(torch_mod.equal(state[k], cached[k]) for k in backbone)
        assert state["fc.weight"].shape == (4, 512)


def test_demo_never_runs_a_hostile_file_in_the_torch_cache(
    tmp_path: Path, torch_mod, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelreg.demo import build

    from .test_modelinfo import Evil

    marker = tmp_path / "MARKER_was_executed"
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch_mod.save({"payload": Evil(marker)}, cache / "resnet18-f37072fd.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    said: list[str] = []
    _model, origin = build("resnet18", said.append)
    assert origin == "random backbone (seed 0)"
    assert said[0].startswith(
        f"  resnet18: cached weights {cache / 'resnet18-f37072fd.pth'} not used (Weights only"
    )
    assert said[1] == (
        "  resnet18: no usable pretrained weights in the local torch cache, so random weights"
    )
    assert not marker.exists()


def _refused(run: CliRun, target: Path, root: Path, problem: str) -> None:
    before = tree_snapshot(root)
    r = run("demo", "--dir", target)
    assert r.exit_code == 1
    assert r.stderr == f"error: --dir {target} {problem}; {NEW_OR_EMPTY}\n"
    assert r.stdout == ""
    assert tree_snapshot(root) == before


def test_demo_refuses_an_existing_registry_and_leaves_it_as_it_was(
    tmp_path: Path, run: CliRun
) -> None:
    registry = ModelRegistry(tmp_path / "project")
    registry.register(
        "resnet18", write_bytes(tmp_path / "project" / "w.pt", 5000), tags=["production"]
    )
    _refused(
        run,
        tmp_path / "project",
        tmp_path,
        "is already a modelreg registry; the demo never writes into one",
    )


@pytest.mark.parametrize("hidden", [False, True])
def test_demo_refuses_a_folder_that_is_not_empty(tmp_path: Path, run: CliRun, hidden: bool) -> None:
    target = tmp_path / "work"
    target.mkdir()
    write_bytes(target / (".notes" if hidden else "notes.txt"), 10)
    _refused(run, target, tmp_path, "is not empty")


def test_demo_refuses_a_file(tmp_path: Path, run: CliRun) -> None:
    target = write_bytes(tmp_path / "model.pt", 10)
    _refused(run, target, tmp_path, "is a file, not a folder")
