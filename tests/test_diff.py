from __future__ import annotations

import json
from pathlib import Path

from .conftest import CliRun
from .models import save_safetensors, save_torch, small_state_dict


def test_diff_names_changed_added_and_removed_tensors(
    repo_dir: Path, run: CliRun, torch_mod
) -> None:
    state = small_state_dict()
    run("register", "m", save_torch(repo_dir / "a.pt", state), "--metric", "acc=0.5")
    state["fc.weight"] = state["fc.weight"] + 1
    state["conv.bias"] = state["conv.bias"].double()
    state["head.new"] = torch_mod.ones(3)
    del state["bn.running_mean"]
    run("register", "m", save_torch(repo_dir / "b.pt", state), "--metric", "acc=0.75")
    d = json.loads(run("diff", "m@v1", "m@v2", "--json").stdout)
    t = d["tensors"]
    assert {c["name"]: c["change"] for c in t["changed"]} == {
        "fc.weight": "values",
        "conv.bias": "dtype/shape",
    }
    assert [x["name"] for x in t["added"]] == ["head.new"]
    assert [x["name"] for x in t["removed"]] == ["bn.running_mean"]
    assert t["unchanged"] == 3
    assert d["metrics"] == {"acc": {"a": 0.5, "b": 0.75, "delta": 0.25}}
    assert d["metadata"]["source"] == ["a.pt", "b.pt"]
    text = run("diff", "m@1", "m").stdout
    assert "tensors: 2 changed, 1 added, 1 removed, 3 unchanged" in text
    assert "~ conv.bias  float32[64] -> float64[64]" in text
    assert "acc: 0.5 -> 0.75 (+0.25)" in text


def test_diff_of_a_resave_finds_no_tensor_change(repo_dir: Path, run: CliRun, torch_mod) -> None:
    state = small_state_dict()
    run("register", "m", save_torch(repo_dir / "a.pt", state))
    run("register", "m", save_torch(repo_dir / "b.pt", state))
    d = json.loads(run("diff", "m@v1", "m@v2", "--json").stdout)
    assert d["tensors"]["changed"] == [] and d["tensors"]["unchanged"] == 6


def test_diff_of_safetensors_and_directories(repo_dir: Path, run: CliRun, torch_mod) -> None:
    folder = repo_dir / "bundle"
    folder.mkdir()
    state = small_state_dict()
    save_safetensors(folder / "model.safetensors", state)
    (folder / "config.json").write_text('{"a": 1}')
    run("register", "b", folder)
    state["fc.bias"] = state["fc.bias"] * 2
    save_safetensors(folder / "model.safetensors", state)
    (folder / "config.json").write_text('{"a": 2}')
    (folder / "README.md").write_text("hi")
    run("register", "b", folder)
    d = json.loads(run("diff", "b@v1", "b@v2", "--json").stdout)
    assert d["files"] == {
        "changed": ["config.json", "model.safetensors"],
        "added": ["README.md"],
        "removed": [],
    }
    assert [c["name"] for c in d["tensors"]["changed"]] == ["fc.bias"]  # one namespace


def test_diff_of_identical_versions_says_so(repo_dir: Path, run: CliRun) -> None:
    (repo_dir / "a.bin").write_bytes(b"x" * 10)
    run("register", "m", repo_dir / "a.bin")
    assert run("diff", "m", "m@v1").stdout.strip().endswith("no differences")


def test_diff_errors_name_the_missing_version(repo_dir: Path, run: CliRun) -> None:
    (repo_dir / "a.bin").write_bytes(b"x")
    run("register", "m", repo_dir / "a.bin")
    r = run("diff", "m@v1", "m@v5")
    assert r.exit_code == 1 and "m has no version v5" in r.stderr


def test_diff_of_legacy_checkpoints_compares_tensors(
    repo_dir: Path, run: CliRun, torch_mod
) -> None:
    """A pre-zip torch.save file is cut at its storages too, so a re-save is no change."""
    state = small_state_dict()
    for name in ("a", "b"):
        torch_mod.save(state, repo_dir / f"{name}.pt", _use_new_zipfile_serialization=False)
        run("register", "old", repo_dir / f"{name}.pt")
    state["fc.bias"] = state["fc.bias"] + 1
    torch_mod.save(state, repo_dir / "c.pt", _use_new_zipfile_serialization=False)
    run("register", "old", repo_dir / "c.pt")
    same = json.loads(run("diff", "old@v1", "old@v2", "--json").stdout)["tensors"]
    assert same["changed"] == [] and same["unchanged"] == 6
    one = json.loads(run("diff", "old@v2", "old@v3", "--json").stdout)["tensors"]
    assert [c["name"] for c in one["changed"]] == ["fc.bias"] and one["unchanged"] == 5
