from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from modelreg import ModelRegistry
from modelreg.maintenance import fsck


def test_demo_runs_offline_and_v2_costs_almost_nothing(tmp_path: Path, torch_mod) -> None:
    target = tmp_path / "demo"
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
