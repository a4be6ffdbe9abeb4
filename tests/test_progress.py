"""Long work shows a progress bar on a terminal and nothing when output is not a terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _run_on_a_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    primary, secondary = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelreg", *args],
        cwd=cwd,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:  # EIO once the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(primary)
    return proc.wait(timeout=120), b"".join(chunks).decode(errors="replace")


def test_register_and_get_show_a_bar_on_a_terminal_only(repo_dir: Path) -> None:
    big = repo_dir / "big.bin"
    big.write_bytes(os.urandom(40 << 20))  # above the 32 MiB threshold
    rc, screen = _run_on_a_terminal(["register", "big", str(big)], repo_dir)
    assert rc == 0 and "register big" in screen and "100%" in screen
    rc, screen = _run_on_a_terminal(["get", "big"], repo_dir)
    assert rc == 0 and "checkout big@v1" in screen and "100%" in screen

    quiet = subprocess.run(
        [sys.executable, "-m", "modelreg", "register", "big", str(big)],
        cwd=repo_dir,
        capture_output=True,
        text=True,
        check=True,
    )
    assert quiet.stderr == "" and quiet.stdout.strip() == "Registered big@v2 (40.0 MiB)"
    (repo_dir / "small.bin").write_bytes(b"x" * 1000)
    rc, screen = _run_on_a_terminal(["register", "small", "small.bin"], repo_dir)
    assert rc == 0 and "%" not in screen  # a moment's work shows no bar
