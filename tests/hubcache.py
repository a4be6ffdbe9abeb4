"""A Hugging Face hub cache laid out by hand, as huggingface_hub leaves it after a download."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def make_snapshot(
    cache: Path,
    repo_id: str,
    files: dict[str, bytes],
    commit: str = COMMIT,
    revision: str | None = "main",
) -> Path:
    """``files`` as blobs named by their sha256 and a snapshot of relative links to them;
    ``refs/<revision>`` names the commit. Returns the snapshot folder."""
    folder = cache / ("models--" + repo_id.replace("/", "--"))
    (folder / "blobs").mkdir(parents=True, exist_ok=True)
    snap = folder / "snapshots" / commit
    for rel, data in files.items():
        blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snap / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    if revision is not None:
        ref = folder / "refs" / revision
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(commit)
    return snap
