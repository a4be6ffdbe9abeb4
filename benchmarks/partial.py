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
    return {
        "version_bytes": source.stat().st_size,
        "tensor_bytes": size,
        "table_read_bytes": table_bytes,
        "store_read_bytes": read,
        "read_vs_tensor": read / size,
        "partial_load_s": t["partial"],
        "full_load_s": t["full"],
        "partial_vs_full_load": t["partial"] / t["full"],
    }


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
