"""Long work shows a progress bar on a terminal and nothing when output is not a terminal."""

from __future__ import annotations

import os
import re
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
    assert "\r" not in quiet.stderr and "register big" not in quiet.stderr
    assert quiet.stdout.startswith("Registered big@v2 (40.0 MiB; ")
    (repo_dir / "small.bin").write_bytes(b"x" * 1000)
    rc, screen = _run_on_a_terminal(["register", "small", "small.bin"], repo_dir)
    assert rc == 0 and "%" not in screen  # a moment's work shows no bar


def test_push_and_pull_show_bytes_done_of_total_and_rate_on_a_terminal(
    repo_dir: Path, tmp_path: Path
) -> None:
    (repo_dir / "m.bin").write_bytes(os.urandom(3 << 20))
    modelreg = [sys.executable, "-m", "modelreg"]
    subprocess.run(
        [*modelreg, "register", "m", "m.bin"], cwd=repo_dir, check=True, capture_output=True
    )
    subprocess.run(
        [*modelreg, "remote", "add", "origin", str(tmp_path / "remote")],
        cwd=repo_dir,
        check=True,
        capture_output=True,
    )
    rc, screen = _run_on_a_terminal(["push"], repo_dir)
    done_of_total = r"3\.0 MiB / 3\.0 MiB, [\d.]+ [KMG]?i?B/s *\r?\n"
    assert rc == 0 and re.search(r"\rpush: " + done_of_total, screen), screen
    rc, screen = _run_on_a_terminal(
        ["clone", "--full", str(tmp_path / "remote"), str(tmp_path / "c")], tmp_path
    )
    assert rc == 0 and re.search(r"\rclone: " + done_of_total, screen), screen
    quiet = subprocess.run([*modelreg, "pull"], cwd=repo_dir, capture_output=True, text=True)
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_a_push_says_how_many_bytes_dedup_kept_from_being_sent(
    repo_dir: Path, tmp_path: Path
) -> None:
    """One number could not tell dedup happened: the totals say what was already there."""
    modelreg = [sys.executable, "-m", "modelreg"]

    def run(*args: str) -> str:
        r = subprocess.run([*modelreg, *args], cwd=repo_dir, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout

    (repo_dir / "a.bin").write_bytes(os.urandom(2 << 20))
    run("register", "m", "a.bin")
    run("remote", "add", "origin", str(tmp_path / "remote"))
    first = run("push")
    assert "there already" not in first
    run("register", "m2", "a.bin")  # the same bytes under another name: nothing new to send
    second = run("push")
    assert re.search(
        r"^Sent 1 object \([\d.]+ KiB\) .*; 2\.0 MiB of the 2\.0 MiB these versions "
        r"need were there already \(not sent\)$",
        second,
        re.M,
    ), second
