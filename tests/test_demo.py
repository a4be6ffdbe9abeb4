from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from modelreg import ModelRegistry
from modelreg.maintenance import fsck

from .conftest import CliRun, tree_snapshot, write_bytes

NEW_OR_EMPTY = "pass a new or empty folder to --dir, or leave --dir out for a temporary one"


def test_demo_runs_offline_and_v2_costs_almost_nothing(tmp_path: Path, torch_mod) -> None:
    outer = ModelRegistry(tmp_path / "project")
    outer.register("resnet18", write_bytes(tmp_path / "project" / "w.pt", 5000))
    before = tree_snapshot(tmp_path / "project")
    target = tmp_path / "project" / "demo"  # new, but inside someone's registry
    done = subprocess.run(
        [sys.executable, "-m", "modelreg", "demo", "--dir", str(target)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "random weights (seed 0)" in out or "pretrained weights found" in out
    for step in ("get resnet18@latest", "list", "families", "summary", "checkout", "stats"):
        assert step in out
    registry = ModelRegistry(target)
    assert [(r["name"], r["version"]) for r in registry.list()] == [
        ("mobilenet_v2", "v1"),
        ("resnet18", "v1"),
        ("resnet18", "v2"),
    ]
    v2 = registry.get("resnet18", "v2")
    assert (
        Path(v2["file_path"]).read_bytes()
        == (target / "checkpoints" / "resnet18_final.pth").read_bytes()
    )
    added_line = next(x for x in out.splitlines() if "resnet18@v2" in x and "added only" in x)
    assert "KiB" in added_line  # tens of MiB registered, well under a MiB stored
    assert fsck(registry.repo).ok
    assert registry.root == target
    after = tree_snapshot(tmp_path / "project")
    assert {k: v for k, v in after.items() if not k.startswith("demo/")} == before


def _run_demo(target: Path, torch_home: Path) -> subprocess.CompletedProcess[str]:
    """`modelreg demo` in a child process whose torch hub cache is ``torch_home``."""
    import os

    env = {**os.environ, "TORCH_HOME": str(torch_home)}
    return subprocess.run(
        [sys.executable, "-m", "modelreg", "demo", "--dir", str(target)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def test_demo_uses_weights_already_in_the_torch_cache(tmp_path: Path, torch_mod) -> None:
    """The pretrained branch, offline: files placed where torch.hub keeps downloads."""
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
    assert registry.get("resnet18")["metrics"] == {"acc@1": 0.69758, "acc@5": 0.89078}
    assert registry.get("resnet18", "v1")["description"] == (
        "ResNet-18, pretrained (local torch cache)"
    )


def test_demo_never_runs_a_hostile_file_in_the_torch_cache(tmp_path: Path, torch_mod) -> None:
    from .test_modelinfo import Evil

    marker = tmp_path / "MARKER_was_executed"
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch_mod.save({"payload": Evil(marker)}, cache / "resnet18-f37072fd.pth")
    done = _run_demo(tmp_path / "demo", torch_home=tmp_path / "torch")
    assert done.returncode == 0, done.stderr
    assert "resnet18: cached weights" in done.stdout and "not used" in done.stdout
    assert (
        "resnet18: no usable pretrained weights in the local torch cache, so random" in done.stdout
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
