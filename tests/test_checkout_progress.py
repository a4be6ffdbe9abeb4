"""A progress bar says how many bytes of the total are done and how fast."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .test_progress import _run_on_a_terminal

RATE = r"\d+(?:\.\d)? (?:B|KiB|MiB|GiB|TiB)/s"


def test_register_and_checkout_bars_show_bytes_done_of_total_and_the_rate(
    repo_dir: Path,
) -> None:
    big = repo_dir / "big.bin"
    big.write_bytes(os.urandom(40 << 20))
    rc, screen = _run_on_a_terminal(["register", "big", str(big)], repo_dir)
    assert rc == 0
    assert re.search(rf"register big .*100% +40\.0 MiB/40\.0 MiB +{RATE}", screen), screen
    rc, screen = _run_on_a_terminal(["get", "big"], repo_dir)
    assert rc == 0
    assert re.search(rf"checkout big@v1 .*100% +40\.0 MiB/40\.0 MiB +{RATE}", screen), screen
