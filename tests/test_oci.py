"""export --oci DIR: an OCI image layout with CNCF ModelPack media types, every digest
present and matching."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from modelreg import oci

from .conftest import CliRun, write_bytes


def _blob(root: Path, desc: dict[str, Any]) -> bytes:
    algorithm, _, hexdigest = desc["digest"].partition(":")
    assert algorithm == "sha256"
    data = (root / "blobs" / "sha256" / hexdigest).read_bytes()
    assert hashlib.sha256(data).hexdigest() == hexdigest
    assert len(data) == desc["size"]
    return data


def validate_layout(root: Path) -> dict[str, dict[str, Any]]:
    """Every descriptor's blob is present, of its size and digest; returns ref -> manifest.
    Also checks that no blob is left that nothing names."""
    assert json.loads((root / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((root / "index.json").read_text())
    assert index["schemaVersion"] == 2 and index.get("mediaType", oci.INDEX) == oci.INDEX
    named: set[str] = set()
    found: dict[str, dict[str, Any]] = {}
    for entry in index["manifests"]:
        assert entry["mediaType"] == oci.MANIFEST
        manifest = json.loads(_blob(root, entry))
        assert manifest["schemaVersion"] == 2 and manifest["artifactType"] == oci.ARTIFACT
        assert manifest["config"]["mediaType"] == oci.CONFIG
        config = json.loads(_blob(root, manifest["config"]))
        assert config["modelfs"] == {
            "type": "layers",
            "diffIds": [layer["digest"] for layer in manifest["layers"]],
        }
        for layer in manifest["layers"]:
            _blob(root, layer)
            assert layer["mediaType"].startswith("application/vnd.cncf.model.")
            named.add(layer["digest"])
        named |= {entry["digest"], manifest["config"]["digest"]}
        found[entry["annotations"][oci.REF_NAME]] = {**manifest, "model_config": config}
    present = {f"sha256:{p.name}" for p in (root / "blobs" / "sha256").iterdir()}
    assert present == named
    return found


def _model(root: Path) -> Path:
    model = root / "m"
    model.mkdir()
    write_bytes(model / "model.safetensors", 50_000, seed=1)
    (model / "config.json").write_text('{"a": 1}')
    (model / "README.md").write_text("# m\n")
    write_bytes(model / "copy.bin", 50_000, seed=1)  # same bytes as the weights
    return model


def test_oci_layout_holds_every_file_as_an_annotated_layer(repo_dir: Path, run: CliRun) -> None:
    model = _model(repo_dir)
    r = run("register", "m", model, "--framework", "pytorch", "--metric", "acc=0.5", "-m", "hello")
    assert r.exit_code == 0, r.output
    r = run("export", "m", "--oci", repo_dir / "layout")
    assert r.exit_code == 0, r.output
    assert "oras cp --from-oci-layout" in r.stdout
    manifests = validate_layout(repo_dir / "layout")
    manifest = manifests["v1"]
    by_path = {layer["annotations"][oci.FILEPATH]: layer for layer in manifest["layers"]}
    assert set(by_path) == {"model.safetensors", "config.json", "README.md", "copy.bin"}
    assert by_path["model.safetensors"]["mediaType"] == oci.WEIGHT
    assert by_path["config.json"]["mediaType"] == oci.WEIGHT_CONFIG
    assert by_path["README.md"]["mediaType"] == oci.DOC
    for rel, layer in by_path.items():
        assert _blob(repo_dir / "layout", layer) == (model / rel).read_bytes()
    described = manifest["model_config"]["descriptor"]
    assert described["name"] == "m" and described["version"] == "v1"
    assert described["description"] == "hello"
    assert manifest["model_config"]["config"]["format"] == "pytorch"
    assert json.loads(manifest["annotations"]["dev.modelreg.metrics"]) == {"acc": 0.5}


def test_the_same_version_gives_the_same_digests(repo_dir: Path, run: CliRun) -> None:
    run("register", "m", _model(repo_dir))
    one = json.loads(run("export", "m", "--oci", repo_dir / "a", "--json").stdout)
    two = json.loads(run("export", "m", "--oci", repo_dir / "b", "--json").stdout)
    assert one["digest"] == two["digest"]


def test_versions_share_one_layout(repo_dir: Path, run: CliRun) -> None:
    model = _model(repo_dir)
    run("register", "m", model)
    (model / "config.json").write_text('{"a": 2}')
    run("register", "m", model)
    layout = repo_dir / "layout"
    assert run("export", "m@v1", "--oci", layout).exit_code == 0
    assert run("export", "m@v2", "--oci", layout).exit_code == 0
    assert run("export", "m@v1", "--oci", layout).exit_code == 0  # replaces, never duplicates
    manifests = validate_layout(layout)
    assert sorted(manifests) == ["v1", "v2"]
    index = json.loads((layout / "index.json").read_text())
    assert len(index["manifests"]) == 2


def test_oci_refuses_a_folder_that_is_not_a_layout(repo_dir: Path, run: CliRun) -> None:
    run("register", "m", write_bytes(repo_dir / "a.bin", 100))
    (repo_dir / "full").mkdir()
    (repo_dir / "full" / "x").write_text("mine")
    r = run("export", "m", "--oci", repo_dir / "full")
    assert r.exit_code == 1 and "neither empty nor an OCI image layout" in r.stderr
    assert [p.name for p in (repo_dir / "full").iterdir()] == ["x"]
    r = run("export", "m", repo_dir / "d", "--oci", repo_dir / "o")
    assert r.exit_code == 2 and "exactly one of" in r.stderr


def test_a_damaged_index_is_refused(repo_dir: Path, run: CliRun) -> None:
    run("register", "m", write_bytes(repo_dir / "a.bin", 100))
    run("export", "m", "--oci", repo_dir / "o")
    (repo_dir / "o" / "index.json").write_text("not json")
    r = run("export", "m", "--oci", repo_dir / "o")
    assert r.exit_code == 1 and "not an OCI index" in r.stderr


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")
def test_skopeo_copies_the_layout(repo_dir: Path, tmp_path: Path, run: CliRun) -> None:
    model = _model(repo_dir)
    run("register", "m", model)
    run("export", "m", "--oci", repo_dir / "layout")
    copy = tmp_path / "copied"
    done = subprocess.run(
        ["skopeo", "copy", f"oci:{repo_dir / 'layout'}:v1", f"oci:{copy}:v1"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    copied = validate_layout(copy)
    paths = {layer["annotations"][oci.FILEPATH] for layer in copied["v1"]["layers"]}
    assert paths == {"model.safetensors", "config.json", "README.md", "copy.bin"}
