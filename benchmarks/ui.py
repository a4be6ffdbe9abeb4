"""``modelreg ui`` at scale: how long the pages of a family of 1,000 versions take.

    python -m benchmarks.ui            # a family of 1,000 versions (about 20 s)
    python -m benchmarks.ui --smoke    # 100 versions, one repetition; the test suite runs this

The family is built in bulk as benchmarks/scale.py builds its registries (records made as
``register`` makes them, refs published once). Each page is then fetched over HTTP from a
running ``modelreg ui`` server (the time a browser waits for the HTML), and built in
process; the median of the repetitions is kept. The target is absolute, as the issue
states it: the family page in at most 1 s.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

from modelreg.ui import make_server, url_of
from modelreg.ui.server import render_time

from .run import fresh
from .scale import Targets, arguments, build, median_of, publish

TARGETS: Targets = [
    ("family of 1,000 versions renders in <= 1 s (HTTP)", ("family", "http_s"), 1.0)
]


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=60) as response:
        return len(response.read())


def page_figures(root: Path, versions: int, reps: int) -> dict[str, dict[str, Any]]:
    family = "fam00000"
    pages = {
        "family": f"/m/{family}",
        "family_filtered": f"/m/{family}?where=accuracy%3E%3D0.5&sort=-accuracy",
        "version": f"/m/{family}/v{versions // 2}",
        "home": "/",
        "compare": f"/compare?a={family}@v1&b={family}@v{versions}",
    }
    server = make_server(root, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = url_of(server).rstrip("/")
    figures: dict[str, dict[str, Any]] = {}
    try:
        for label, path in pages.items():
            size = _get(base + path)  # once before timing: the index is built and cached
            figures[label] = {
                "versions": versions,
                "html_bytes": size,
                "http_s": median_of(lambda path=path: _get(base + path), reps),
                "in_process_s": median_of(lambda path=path: render_time(root, path), reps),
            }
    finally:
        server.shutdown()
        server.server_close()
    return figures


def main(argv: list[str] | None = None) -> int:
    args = arguments(__doc__, "ui", argv)
    reps = args.reps or (1 if args.smoke else 7)
    versions = 100 if args.smoke else 1_000
    work = fresh(args.workdir)
    build_s = build(work / "registry", 1, versions)
    figures = page_figures(work / "registry", versions, reps)
    figures["build"] = {"versions": versions, "build_s": build_s}
    publish(args, reps, figures, TARGETS)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MODELREG_LOCK_TIMEOUT", "120")
    sys.exit(main())
