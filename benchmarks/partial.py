"""Partial tensor reads: what ``load(..., tensors=["block5.weight"])`` fetches from the store.

    python -m benchmarks.partial [--smoke] [--workdir DIR]   # prints the figures as JSON

A torch zip of TENSORS tensors of TENSOR_MIB each (64 x 8 MiB = a 512 MiB version) is
registered; one tensor is then loaded alone, counting the chunk bytes fetched through the
store (``tensors.StoreSource``), and timed against a full ``load``. ``run.py`` runs this in a
child process, so its own process never imports torch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from modelreg import tensors
from modelreg.repo import Repository

from .run import fresh, interleaved, noop

WANTED = "block5.weight"


def partial_figures(work: Path, count: int, numel: int, reps: int) -> dict[str, Any]:
    import torch

    source = work / "blocks.pt"
    g = torch.Generator().manual_seed(0)
    torch.save({f"block{i}.weight": torch.randn(numel, generator=g) for i in range(count)}, source)
    repo, _ = Repository.init(fresh(work / "registry"))
    rec = repo.register("blocks", source)
    found = tensors.open_tensors(repo, rec)
    table_bytes = found.source.bytes_read  # type: ignore[attr-defined]
    tensor = found[WANTED]
    read = found.source.bytes_read  # type: ignore[attr-defined]
    size = tensor.numel() * tensor.element_size()

    from modelreg import loading

    t = interleaved(
        {
            "partial": (noop, lambda: tensors.load_tensors(repo, rec, [WANTED])),
            "full": (noop, lambda: loading.load_state(repo, rec)),
        },
        reps,
    )
    lazy = lazy_clone_figures(work, repo, size)
    return {
        **lazy,
        "version_bytes": source.stat().st_size,
        "tensor_bytes": size,
        "table_read_bytes": table_bytes,
        "store_read_bytes": read,
        "read_vs_tensor": read / size,
        "partial_load_s": t["partial"],
        "full_load_s": t["full"],
        "partial_vs_full_load": t["partial"] / t["full"],
    }


def lazy_clone_figures(work: Path, repo: Repository, tensor_bytes: int) -> dict[str, Any]:
    """The same tensor loaded in a lazy clone of ``repo`` (through a folder remote): the bytes
    read from the remote, counted where the folder remote hands them out."""
    import os

    from modelreg import ModelRegistry
    from modelreg.remotes import folder

    os.environ["MODELREG_CACHE"] = str(fresh(work / "cache"))
    counted = [0]
    read_range = folder.FolderRemote.read_range

    def counting(self: Any, key: str, start: int, length: int) -> Any:
        for block in read_range(self, key, start, length):
            counted[0] += len(block)
            yield block

    try:
        owner = ModelRegistry(repo.root)
        owner.add_remote("bench", str(fresh(work / "remote")))
        owner.push()
        clone = ModelRegistry.clone(str(work / "remote"), fresh(work / "clone"))
        folder.FolderRemote.read_range = counting  # type: ignore[method-assign]
        clone.load("blocks", tensors=[WANTED])
    finally:
        folder.FolderRemote.read_range = read_range  # type: ignore[method-assign]
        os.environ.pop("MODELREG_CACHE", None)
    return {"lazy_remote_read_bytes": counted[0], "lazy_read_vs_tensor": counted[0] / tensor_bytes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="8 tensors of 64 KiB, one rep")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/modelreg-bench-partial"))
    args = parser.parse_args(argv)
    count, numel = (8, 16 << 10) if args.smoke else (64, 2 << 20)  # float32: 64 KiB / 8 MiB
    reps = args.reps or (1 if args.smoke else 3)
    figures = partial_figures(fresh(args.workdir), count, numel, reps)
    print(json.dumps(figures, sort_keys=True))
    fresh(args.workdir).rmdir()  # read-only objects made writable first, then removed
    return 0


if __name__ == "__main__":
    sys.exit(main())
