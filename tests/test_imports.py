"""torch costs seconds to import: no command that does not need it may import it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from .conftest import write_bytes

PROBE = textwrap.dedent(
    """
    import sys
    from modelreg.cli import cli
    try:
        cli(sys.argv[1:], prog_name="modelreg", standalone_mode=False)
    finally:
        heavy = sorted(m for m in ("torch", "torchvision", "safetensors", "numpy",
                                   "lightning", "pytorch_lightning", "transformers")
                       if m in sys.modules)
        print("HEAVY:" + ",".join(heavy))
    """
)


def _heavy_modules(cwd: Path, *args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True, text=True, check=True
    )
    line = [x for x in done.stdout.splitlines() if x.startswith("HEAVY:")][-1]
    return [m for m in line[len("HEAVY:") :].split(",") if m]


def test_importing_the_cli_does_not_import_torch() -> None:
    code = (
        "import sys, modelreg.cli, modelreg, modelreg.integrations; "
        "print(any(m in sys.modules for m in ('torch', 'lightning', 'transformers')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


def test_help_get_list_and_log_import_neither_torch_nor_numpy(repo_dir: Path) -> None:
    from modelreg import ModelRegistry

    ModelRegistry(".").register("m", write_bytes(repo_dir / "m.pt", 1000))
    for args in (
        ["--help"],
        ["get", "m"],
        ["list"],
        ["log", "m"],
        ["show", "m"],
        ["import", "--help"],
        ["list", "--where", "size>1", "--sort", "-size"],
        ["report", "-o", "report.html"],
    ):
        assert _heavy_modules(repo_dir, *args) == [], args
