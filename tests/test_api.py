"""The seed's Python API, used as its README used it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from modelreg import ModelRegistry
from modelreg.errors import AlreadyExistsError, NotFoundError

from .conftest import write_bytes


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_seed_constructor_creates_registry_beside_models_folder(project: Path) -> None:
    registry = ModelRegistry(storage_path="./models", metadata_file="./registry.yaml")
    assert registry.root == project
    assert (project / ".modelreg" / "config.yaml").is_file()
    model = write_bytes(project / "resnet18.pth", 5000)
    info = registry.register(
        name="resnet18",
        model_path=str(model),
        framework="pytorch",
        metrics={"accuracy": 0.92, "f1": 0.89},
        description="baseline",
        dataset="ImageNet",
        architecture="torchvision.models.resnet18",
        input_shape=[1, 3, 224, 224],
    )
    assert info["version"] == "v1"
    got = registry.get("resnet18", "latest")
    assert got["file_path"] == str(project / "models" / "resnet18" / "v1" / "resnet18.pth")
    assert Path(got["file_path"]).read_bytes() == model.read_bytes()
    for key, value in {
        "name": "resnet18",
        "framework": "pytorch",
        "metrics": {"accuracy": 0.92, "f1": 0.89},
        "description": "baseline",
        "dataset": "ImageNet",
        "input_shape": [1, 3, 224, 224],
        "architecture": "torchvision.models.resnet18",
        "size": 5000,
        "source": "resnet18.pth",
        "parent": None,
    }.items():
        assert got[key] == value, key
    assert got["registered_at"] and len(got["content_hash"]) == 32


def test_dot_constructor_uses_models_subfolder(project: Path) -> None:
    registry = ModelRegistry(".")
    registry.register("m", write_bytes(project / "m.pt", 100))
    assert registry.get("m")["file_path"] == str(project / "models" / "m" / "v1" / "m.pt")


def test_registry_is_found_from_a_subfolder(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ModelRegistry(".").register("m", write_bytes(project / "m.pt", 100))
    sub = project / "src" / "deep"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    registry = ModelRegistry(".")
    assert registry.root == project
    assert registry.list_families() == ["m"]


def test_versions_count_up_and_latest_is_the_highest(project: Path) -> None:
    registry = ModelRegistry(".")
    for i in range(3):
        registry.register("m", write_bytes(project / "m.pt", 100, seed=i))
    assert [v["version"] for v in registry.list("m")] == ["v1", "v2", "v3"]
    assert registry.get("m")["version"] == "v3"
    assert registry.get("m", "2")["version"] == "v2"
    assert registry.get("m", "v1")["parent"] is None
    assert registry.get("m", "v3")["parent"] == "m@v2"


def test_explicit_version_and_tags(project: Path) -> None:
    registry = ModelRegistry(".")
    f = write_bytes(project / "m.pt", 100)
    registry.register("m", f, version="v7", tags=["production"])
    assert registry.get("m", "production")["version"] == "v7"
    assert registry.register("m", f)["version"] == "v8"
    with pytest.raises(AlreadyExistsError, match="m@v7 already exists"):
        registry.register("m", f, version="v7")
    assert registry.get("m")["tags"] == ["latest"]
    assert registry.get("m", "v7")["tags"] == ["production"]


def test_list_covers_all_families_and_list_families_names_them(project: Path) -> None:
    registry = ModelRegistry(".")
    registry.register("b", write_bytes(project / "b.pt", 10))
    registry.register("a", write_bytes(project / "a.pt", 10))
    assert registry.list_families() == ["a", "b"]
    assert [(r["name"], r["version"]) for r in registry.list()] == [("a", "v1"), ("b", "v1")]


def test_get_rebuilds_a_deleted_or_modified_checkout(project: Path) -> None:
    registry = ModelRegistry(".")
    original = write_bytes(project / "m.pt", 300_000).read_bytes()
    registry.register("m", project / "m.pt")
    path = Path(registry.get("m")["file_path"])
    path.unlink()
    assert Path(registry.get("m")["file_path"]).read_bytes() == original
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(1000)
        f.write(b"tampered")
    assert Path(registry.get("m")["file_path"]).read_bytes() == original
    assert not os.access(path, os.W_OK) or os.geteuid() == 0
    assert oct(path.stat().st_mode & 0o777) == "0o444"


def test_directory_model_is_stored_and_materialized_as_a_folder(project: Path) -> None:
    src = project / "hf-model"
    (src / "sub").mkdir(parents=True)
    write_bytes(src / "model.safetensors", 20_000)
    (src / "config.json").write_text('{"hidden": 8}')
    (src / "sub" / "tok.txt").write_text("a b c")
    registry = ModelRegistry(".")
    info = registry.register("hf", src)
    assert info["kind"] == "dir" and info["size"] == 20_000 + 13 + 5
    folder = Path(registry.get("hf")["file_path"])
    assert folder == project / "models" / "hf" / "v1"
    assert (folder / "sub" / "tok.txt").read_text() == "a b c"
    (folder / "sub" / "tok.txt").unlink()
    (folder / "stray.txt").write_text("not part of the version")
    registry.get("hf")
    assert (folder / "sub" / "tok.txt").read_text() == "a b c"
    assert not (folder / "stray.txt").exists()


def test_metadata_file_is_kept_current(project: Path) -> None:
    registry = ModelRegistry("./models", metadata_file="./registry.yaml")
    registry.register("m", write_bytes(project / "m.pt", 10), metrics={"acc": 0.5})
    registry.register("m", write_bytes(project / "m.pt", 10, seed=1))
    registry.tag("m", "v1", "production")
    view = yaml.safe_load((project / "registry.yaml").read_text())
    assert set(view["models"]["m"]) == {"v1", "v2"}
    assert view["models"]["m"]["v1"]["metrics"] == {"acc": 0.5}
    assert view["models"]["m"]["v1"]["tags"] == ["production"]
    checked_out = Path(registry.get("m", "v2")["file_path"])
    registry.remove("m", "v2")
    assert not checked_out.exists() and not checked_out.parent.exists()
    view = yaml.safe_load((project / "registry.yaml").read_text())
    assert set(view["models"]["m"]) == {"v1"}


def test_print_summary_shows_a_row_per_version(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = ModelRegistry(".")
    registry.print_summary()
    assert "no models yet" in capsys.readouterr().out
    registry.register("resnet18", write_bytes(project / "r.pt", 10), metrics={"accuracy": 0.9})
    registry.print_summary()
    out = capsys.readouterr().out
    assert "1 family, 1 version" in out
    assert "resnet18" in out and "accuracy=0.9" in out and "latest" in out


def test_unknown_version_and_tag_raise_not_found(project: Path) -> None:
    registry = ModelRegistry(".")
    registry.register("m", write_bytes(project / "m.pt", 10))
    with pytest.raises(NotFoundError, match="m has no version v9"):
        registry.get("m", "v9")
    with pytest.raises(NotFoundError, match="m has no tag 'staging'"):
        registry.get("m", "staging")
    with pytest.raises(NotFoundError, match="no model named 'nope'"):
        registry.get("nope")


def test_register_records_git_commit_of_the_working_directory(project: Path) -> None:
    import subprocess

    git = ["git", "-c", "user.email=a@b", "-c", "user.name=a"]
    subprocess.run([*git, "init", "-q"], check=True)
    (project / "train.py").write_text("print(1)\n")
    subprocess.run([*git, "add", "train.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    registry = ModelRegistry(".")
    info = registry.register("m", write_bytes(project / "m.pt", 10))
    assert info["git_commit"] == head and info["git_dirty"] is False
    (project / "train.py").write_text("print(2)\n")
    info = registry.register("m", write_bytes(project / "m.pt", 10))
    assert info["git_dirty"] is True
