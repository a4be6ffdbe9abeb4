"""modelreg import DIR NAME: a folder of real checkpoints, registered oldest first."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from .conftest import CliRun, tree_snapshot
from .models import save_safetensors, save_torch, small_state_dict


def _at(path: Path, when: int) -> Path:
    os.utime(path, (when, when))
    return path


@pytest.fixture
def checkpoints(repo_dir: Path, torch_mod: Any) -> Path:
    """Three epochs saved out of name order, sidecars in JSON and YAML, a Trainer-style
    folder, and things that are not models."""
    folder = repo_dir / "runs"
    folder.mkdir()
    for epoch, when in ((0, 1000), (1, 3000), (2, 2000)):
        _at(save_torch(folder / f"epoch_{epoch}.pt", small_state_dict(seed=epoch)), when)
    (folder / "epoch_0.json").write_text(json.dumps({"val_loss": 0.9, "epoch": 0, "opt": "sgd"}))
    (folder / "epoch_2.pt.yaml").write_text("metrics: {val_loss: 0.4}\nparams: {lr: 0.1}\n")
    hf = folder / "checkpoint-30"
    hf.mkdir()
    _at(save_safetensors(hf / "model.safetensors", small_state_dict(seed=9)), 4000)
    state = {
        "global_step": 30,
        "epoch": 3.0,
        "log_history": [
            {"loss": 0.7, "step": 10, "epoch": 1.0},
            {"loss": 0.2, "learning_rate": 1e-4, "step": 30, "epoch": 3.0},
            {"eval_loss": 0.25, "eval_accuracy": 0.9, "step": 30, "epoch": 3.0},
        ],
    }
    (hf / "trainer_state.json").write_text(json.dumps(state))
    _at(hf / "trainer_state.json", 100)  # the folder's time is its newest file's
    (folder / "logs").mkdir()
    (folder / "logs" / "train.log").write_text("epoch 0\n")
    (folder / "notes.txt").write_text("not a model")
    return folder


def test_import_registers_every_model_oldest_first_with_sidecar_metrics(
    checkpoints: Path, run: CliRun
) -> None:
    r = run("import", checkpoints, "net")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [
        "Registered net@v1 from epoch_0.pt  val_loss=0.9",
        "Registered net@v2 from epoch_2.pt  val_loss=0.4",
        "Registered net@v3 from epoch_1.pt",
        "Registered net@v4 from checkpoint-30/  eval_accuracy=0.9 eval_loss=0.25 "
        "learning_rate=0.0001 loss=0.2",
        "skipped logs/: holds no model file directly",
        "Imported 4 versions of net",
    ]
    rows = {row["version"]: row for row in json.loads(run("list", "net", "--json").stdout)}
    assert rows["v1"]["params"] == {"epoch": 0, "opt": "sgd"}
    assert rows["v2"]["params"] == {"epoch": 0, "opt": "sgd", "lr": 0.1}  # v2 inherits from v1
    assert rows["v4"]["kind"] == "dir" and rows["v4"]["params"]["global_step"] == 30
    assert rows["v3"]["format"] == "torch-zip" and rows["v3"]["metrics"] == {}


def test_import_again_registers_only_what_is_new(checkpoints: Path, run: CliRun) -> None:
    run("import", checkpoints, "net")
    _at(save_torch(checkpoints / "epoch_3.pt", small_state_dict(seed=3)), 5000)
    r = run("import", checkpoints, "net")
    assert r.exit_code == 0
    assert "Registered net@v5 from epoch_3.pt" in r.stdout
    assert "skipped epoch_0.pt: already net@v1" in r.stdout
    assert "skipped checkpoint-30/: already net@v4" in r.stdout
    assert r.stdout.splitlines()[-1] == "Imported 1 version of net; 4 models already there"


def test_dry_run_says_what_it_would_store_and_writes_nothing(
    checkpoints: Path, run: CliRun, repo_dir: Path
) -> None:
    before = tree_snapshot(repo_dir / ".modelreg")
    r = run("import", checkpoints, "net", "--dry-run")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == "would register net@v1 <- epoch_0.pt  val_loss=0.9  (from epoch_0.json)"
    assert lines[3].startswith("would register net@v4 <- checkpoint-30/")
    assert lines[4] == "would skip logs/: holds no model file directly"
    assert lines[5].startswith("5 files, ") and "modelreg would add" in lines[7]
    assert tree_snapshot(repo_dir / ".modelreg") == before
    plan = json.loads(run("import", checkpoints, "net", "--dry-run", "--json").stdout)
    assert [w["version"] for w in plan["would_register"]] == [f"net@v{n}" for n in range(1, 5)]
    assert plan["estimate"]["files"] == 5 and plan["estimate"]["modelreg_bytes"] > 0
    scan = json.loads(run("stats", "--scan", checkpoints, "--json").stdout)
    assert scan["logical_bytes"] > plan["estimate"]["logical_bytes"]  # it counts every file


def test_dry_run_works_outside_a_registry(
    tmp_path: Path, run: CliRun, monkeypatch: pytest.MonkeyPatch, torch_mod: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    save_torch(tmp_path / "a.pt", small_state_dict())
    r = run("import", tmp_path, "net", "--dry-run")
    assert r.exit_code == 0 and "(to an empty registry)" in r.stdout
    r = run("import", tmp_path, "net")
    assert r.exit_code == 1 and "error: no modelreg registry in" in r.stderr


@pytest.mark.parametrize(
    ("sidecar", "text", "message"),
    [
        ("epoch_0.json", "{not json", "epoch_0.json is not valid JSON"),
        ("epoch_0.yaml", "a: [1,\n", "epoch_0.yaml is not valid YAML"),
        ("epoch_0.json", "[1, 2]", "epoch_0.json is not a mapping of names to values"),
        ("epoch_0.json", '{"metrics": {"acc": "high"}}', "metric 'acc' must be a number"),
    ],
)
def test_a_bad_sidecar_stops_the_import_before_anything_is_registered(
    checkpoints: Path, run: CliRun, repo_dir: Path, sidecar: str, text: str, message: str
) -> None:
    (checkpoints / "epoch_0.json").unlink()
    (checkpoints / sidecar).write_text(text)
    before = tree_snapshot(repo_dir / ".modelreg")
    r = run("import", checkpoints, "net")
    assert r.exit_code == 1 and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
    assert tree_snapshot(repo_dir / ".modelreg") == before


def test_a_folder_without_models_or_a_missing_folder_is_one_line(
    repo_dir: Path, run: CliRun
) -> None:
    (repo_dir / "empty").mkdir()
    (repo_dir / "empty" / "notes.txt").write_text("x")
    r = run("import", repo_dir / "empty", "net")
    assert r.exit_code == 1 and "error: found no model files in" in r.stderr
    r = run("import", repo_dir / "nope", "net")
    assert r.exit_code == 1 and "error: no such folder" in r.stderr
    r = run("import", repo_dir / "empty", "bad/name")
    assert r.exit_code == 1 and r.stderr.startswith("error: ")


def test_import_of_the_registry_root_leaves_out_its_store_and_checkouts(
    repo_dir: Path, run: CliRun, torch_mod: Any
) -> None:
    save_torch(repo_dir / "a.pt", small_state_dict())
    run("register", "other", repo_dir / "a.pt")
    run("checkout", "other")
    r = run("import", repo_dir, "net")
    assert r.exit_code == 0, r.output
    assert "Registered net@v1 from a.pt" in r.stdout and "models" not in r.stdout


def test_command_line_fields_apply_to_every_model_and_win_over_sidecars(
    checkpoints: Path, run: CliRun
) -> None:
    r = run(
        "import", checkpoints, "net", "--framework", "pytorch", "--param", "opt=adam",
        "--param", "run=7",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    rows = json.loads(run("list", "net", "--json").stdout)
    assert all(row["framework"] == "pytorch" and row["params"]["run"] == "7" for row in rows)
    assert rows[0]["params"] == {"epoch": 0, "opt": "adam", "run": "7"}
    assert rows[0]["metrics"] == {"val_loss": 0.9}
    r = run("import", checkpoints, "other", "--param", "broken")
    assert r.exit_code == 2 and "'broken' is not KEY=VALUE" in r.stderr
