"""What register takes in: folders without the registry itself, .modelregignore, non-regular
files, the umask, params, inherited metadata, and the notes and warnings it prints."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from modelreg import ModelRegistry
from modelreg.errors import UnrecognizedFormatWarning
from modelreg.ignore import IgnoreRules

from .conftest import CliRun, write_bytes


def _registered_paths(run: CliRun, spec: str) -> list[str]:
    folder = Path(run("get", spec).stdout.strip())
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_registering_the_registry_root_leaves_out_the_store_and_checkouts(
    repo_dir: Path, run: CliRun
) -> None:
    write_bytes(repo_dir / "w.bin", 100)
    assert run("register", "single", "w.bin").exit_code == 0
    assert run("get", "single").exit_code == 0  # models/ now holds a checkout
    r = run("register", "whole", ".")
    assert r.exit_code == 0, r.output
    assert _registered_paths(run, "whole") == ["w.bin"]


def test_the_checkout_folder_itself_is_refused(repo_dir: Path, run: CliRun) -> None:
    write_bytes(repo_dir / "w.bin", 100)
    run("register", "single", "w.bin")
    run("get", "single")
    r = run("register", "x", "models")
    assert r.exit_code == 1
    assert "is the checkout folder, which holds every version" in r.stderr


def test_modelregignore_leaves_files_out(repo_dir: Path, run: CliRun) -> None:
    model = repo_dir / "m"
    for rel in ["w.bin", "logs/a.txt", "ckpt/keep.bin", "ckpt/tmp.bin", "sub/logs/b.txt"]:
        (model / rel).parent.mkdir(parents=True, exist_ok=True)
        write_bytes(model / rel, 10)
    (model / ".modelregignore").write_text("# scratch\nlogs/\n/ckpt/*.bin\n!/ckpt/keep.bin\n")
    assert run("register", "m", "m").exit_code == 0
    assert _registered_paths(run, "m") == ["ckpt/keep.bin", "w.bin"]


@pytest.mark.parametrize(
    ("pattern", "path", "is_dir", "ignored"),
    [
        ("*.log", "a.log", False, True),
        ("*.log", "deep/er/a.log", False, True),
        ("/top.bin", "top.bin", False, True),
        ("/top.bin", "sub/top.bin", False, False),
        ("build/", "build", True, True),
        ("build/", "build", False, False),
        ("a/*.bin", "a/x.bin", False, True),
        ("a/*.bin", "a/b/x.bin", False, False),
        ("a/**/x.bin", "a/b/c/x.bin", False, True),
        ("a/**/x.bin", "a/x.bin", False, True),
        ("**/cache", "p/q/cache", True, True),
        ("logs/**", "logs/a/b", False, True),
        ("?.pt", "a.pt", False, True),
        ("?.pt", "ab.pt", False, False),
        ("[ab].pt", "b.pt", False, True),
        ("[!ab].pt", "b.pt", False, False),
        ("\\#x", "#x", False, True),
        ("# comment", "# comment", False, False),
        ("x\\*", "x*", False, True),
        ("x\\*", "xy", False, False),
    ],
)
def test_ignore_patterns_follow_gitignore(
    pattern: str, path: str, is_dir: bool, ignored: bool
) -> None:
    assert IgnoreRules.parse(pattern).ignored(path, is_dir) is ignored


def test_a_negation_cannot_reach_into_an_ignored_folder(repo_dir: Path, run: CliRun) -> None:
    model = repo_dir / "m"
    (model / "logs").mkdir(parents=True)
    write_bytes(model / "w.bin", 10)
    write_bytes(model / "logs" / "keep.bin", 10)
    (model / ".modelregignore").write_text("logs/\n!logs/keep.bin\n")
    assert run("register", "m", "m").exit_code == 0
    assert _registered_paths(run, "m") == ["w.bin"]


def test_a_fifo_given_as_the_file_is_refused_at_once(repo_dir: Path) -> None:
    os.mkfifo(repo_dir / "pipe.pt")
    done = subprocess.run(
        [sys.executable, "-m", "modelreg", "register", "p", "pipe.pt"],
        cwd=repo_dir,
        capture_output=True,
        text=True,
        timeout=60,  # before the fix this never ended: reading a FIFO waits for a writer
    )
    assert done.returncode == 1
    assert "pipe.pt is not a regular file (a device, pipe or socket)" in done.stderr


def test_created_files_follow_the_umask(tmp_path: Path) -> None:
    script = (
        "import os, sys; os.umask(0o077)\n"
        "from modelreg.cli import main\n"
        "sys.argv = ['modelreg'] + sys.argv[1:]\n"
        "main()\n"
    )
    root = tmp_path / "private"
    root.mkdir()
    write_bytes(root / "w.bin", 5000)
    for args in (["init"], ["register", "m", "w.bin"], ["get", "m"]):
        done = subprocess.run(
            [sys.executable, "-c", script, *args], cwd=root, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
    created = [p for p in root.rglob("*") if p != root / "w.bin"]
    assert root / "models" / "m" / "v1" / "w.bin" in created
    assert any(p.parent.name == "objects" or "objects" in p.parts for p in created)
    open_to_others = [str(p) for p in created if p.lstat().st_mode & (stat.S_IRWXG | stat.S_IRWXO)]
    assert open_to_others == []


def test_params_are_stored_shown_and_diffed(repo_dir: Path, run: CliRun) -> None:
    write_bytes(repo_dir / "a.bin", 100)
    write_bytes(repo_dir / "b.bin", 100, seed=1)
    r = run("register", "m", "a.bin", "--param", "lr=0.001", "--param", "optimizer=adam w")
    assert r.exit_code == 0
    assert run("register", "m", "b.bin", "--param", "lr=1e-4").exit_code == 0
    shown = json.loads(run("show", "m@v1", "--json").stdout)
    assert shown["params"] == {"lr": "0.001", "optimizer": "adam w"}  # text, kept as given
    assert "optimizer: adam w" in run("show", "m@v1").stdout
    # v2 gave lr and inherited optimizer from its parent
    v2 = {"lr": "1e-4", "optimizer": "adam w"}
    assert json.loads(run("show", "m", "--json").stdout)["params"] == v2
    diff = json.loads(run("diff", "m@v1", "m@v2", "--json").stdout)
    assert diff["metadata"]["params"] == [{"lr": "0.001", "optimizer": "adam w"}, v2]


def test_a_new_version_inherits_descriptive_fields_from_its_parent(
    repo_dir: Path, run: CliRun
) -> None:
    write_bytes(repo_dir / "a.bin", 100)
    write_bytes(repo_dir / "b.bin", 100, seed=1)
    write_bytes(repo_dir / "c.bin", 100, seed=2)
    write_bytes(repo_dir / "d.bin", 100, seed=3)
    run(
        "register", "m", "a.bin", "--framework", "pytorch", "--dataset", "ImageNet",
        "--architecture", "torchvision.models.resnet18", "--input-shape", "1,3,224,224",
        "--metric", "acc=0.9", "-m", "baseline", "--param", "lr=0.1",
    )  # fmt: skip
    run("register", "m", "b.bin", "--dataset", "CIFAR-10")
    v2 = json.loads(run("show", "m@v2", "--json").stdout)
    assert v2["framework"] == "pytorch" and v2["architecture"] == "torchvision.models.resnet18"
    assert v2["input_shape"] == [1, 3, 224, 224] and v2["params"] == {"lr": "0.1"}
    assert v2["dataset"] == "CIFAR-10"  # given, so not inherited
    assert v2["metrics"] == {} and v2["description"] is None  # never inherited
    run("register", "m", "c.bin", "--no-inherit")
    v3 = json.loads(run("show", "m@v3", "--json").stdout)
    assert v3["framework"] is None and v3["architecture"] is None and v3["params"] == {}
    run("register", "other", "d.bin", "--parent", "m@v1")
    assert json.loads(run("show", "other", "--json").stdout)["dataset"] == "ImageNet"


def test_the_api_inherits_too(repo_dir: Path) -> None:
    registry = ModelRegistry(".")
    registry.register("m", write_bytes(repo_dir / "a.bin", 100), framework="pytorch")
    v2 = registry.register("m", write_bytes(repo_dir / "b.bin", 100, seed=1))
    assert v2["framework"] == "pytorch"
    v3 = registry.register("m", write_bytes(repo_dir / "c.bin", 100, seed=2), inherit=False)
    assert v3["framework"] is None


def test_registering_the_same_bytes_says_so(repo_dir: Path, run: CliRun) -> None:
    write_bytes(repo_dir / "a.bin", 100)
    assert "note:" not in run("register", "m", "a.bin").stderr
    r = run("register", "m", "a.bin")
    assert r.exit_code == 0 and "note: same content as m@v1" in r.stderr
    assert run("show", "m@v2").exit_code == 0  # the version is still made


def test_a_resave_of_the_same_tensors_says_so(repo_dir: Path, run: CliRun, torch_mod) -> None:  # type: ignore[no-untyped-def]
    from .models import save_torch, small_state_dict

    state = small_state_dict()
    save_torch(repo_dir / "a.pt", state)
    save_torch(repo_dir / "b.pt", state)  # new serialization id: other bytes, same tensors
    assert (repo_dir / "a.pt").read_bytes() != (repo_dir / "b.pt").read_bytes()
    run("register", "m", "a.pt")
    r = run("register", "m", "b.pt")
    assert "note: same tensors as m@v1" in r.stderr
    state["fc.bias"] = state["fc.bias"] + 1
    save_torch(repo_dir / "c.pt", state)
    assert "note:" not in run("register", "m", "c.pt").stderr


def test_a_file_that_is_no_model_format_gets_a_warning(repo_dir: Path, run: CliRun) -> None:
    write_bytes(repo_dir / "notes.bin", 100)
    r = run("register", "m", "notes.bin")
    assert r.exit_code == 0
    assert (
        "warning: notes.bin is not a file in a recognised model format "
        "(torch checkpoint, safetensors, GGUF, ONNX); stored as plain bytes"
    ) in r.stderr
    with pytest.warns(UnrecognizedFormatWarning, match="notes.bin is not a file"):
        ModelRegistry(".").register("m", repo_dir / "notes.bin")


def test_a_torch_checkpoint_gets_no_format_warning(repo_dir: Path, torch_mod) -> None:  # type: ignore[no-untyped-def]
    from .models import save_torch, small_state_dict

    save_torch(repo_dir / "a.pt", small_state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ModelRegistry(".").register("m", repo_dir / "a.pt")


def test_the_readme_tour_v2_still_loads_as_a_module(repo_dir: Path, torch_mod) -> None:  # type: ignore[no-untyped-def]
    import torchvision

    torch_mod.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    torch_mod.save(model.state_dict(), repo_dir / "resnet18.pth")
    model.fc.bias.data += 1
    torch_mod.save(model.state_dict(), repo_dir / "resnet18_ft.pth")
    registry = ModelRegistry(".")
    registry.register(
        "resnet18", "resnet18.pth", architecture="torchvision.models.resnet18", framework="pytorch"
    )
    registry.register("resnet18", "resnet18_ft.pth", metrics={"accuracy": 0.94})  # as README
    loaded = registry.load("resnet18")
    assert isinstance(loaded, torch_mod.nn.Module)
    assert torch_mod.equal(loaded.fc.bias, model.fc.bias)
