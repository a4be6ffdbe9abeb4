"""GGUF and ONNX pairs where a few tensors changed: disk against the tensor-level lower bound.

    python -m benchmarks.formats             # 128 MiB files, about a minute
    python -m benchmarks.formats --smoke     # tiny sizes; the test suite runs this

Each pair is registered twice: as modelreg cuts it (each tensor a span of its own) and, for
comparison, with every file cut by content (what these formats got before they were known).
The files are written with the ``gguf`` and ``onnx`` packages, and the lower bound is
computed with those packages too, independently of modelreg's own readers: each distinct
tensor payload counted once, every other byte in full.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

from modelreg import formats, maintenance
from modelreg.hashing import oid_of
from modelreg.repo import Repository

from .run import fresh

Files = list[tuple[str, Path]]
TENSORS = 32
CHANGED = (5, 17, 30)  # the tensors the second file of each pair changes


def _arrays(total_bytes: int, seed: int) -> list[Any]:
    """``TENSORS`` float32 matrices of 256 columns, about ``total_bytes`` together."""
    import numpy as np

    rows = max(1, total_bytes // TENSORS // (256 * 4))
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((rows, 256)).astype(np.float32) for _ in range(TENSORS)]


def _changed(arrays: list[Any]) -> list[Any]:
    out = list(arrays)
    for i in CHANGED:
        out[i] = arrays[i] + 0.01
    return out


def _write_gguf(path: Path, arrays: list[Any]) -> Path:
    """Every third tensor quantized to Q8_0, every third float16, the rest float32."""
    import numpy as np
    from gguf import GGMLQuantizationType, GGUFWriter, quants

    writer = GGUFWriter(str(path), "llama")
    writer.add_block_count(TENSORS)
    writer.add_token_list([f"token{i}" for i in range(2000)])
    for i, a in enumerate(arrays):
        name = f"blk.{i}.weight"
        if i % 3 == 0:
            q8 = GGMLQuantizationType.Q8_0
            writer.add_tensor(name, quants.quantize(a, q8), raw_dtype=q8)
        else:
            writer.add_tensor(name, a.astype(np.float16) if i % 3 == 1 else a)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _write_onnx(path: Path, arrays: list[Any], external: bool) -> Path:
    """A chain of Adds over the arrays; with ``external``, a folder holding model.onnx and
    model.onnx.data (``path`` is the folder)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(a, f"layer{i}.weight") for i, a in enumerate(arrays)]
    cols = arrays[0].shape[1]
    nodes = [
        helper.make_node("Add", [f"x{i}" if i else "x", f"layer{i}.weight"], [f"x{i + 1}"])
        for i in range(len(arrays))
    ]
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cols])],
        [helper.make_tensor_value_info(f"x{len(arrays)}", TensorProto.FLOAT, None)],
        initializer=inits,
    )
    model = helper.make_model(graph)
    if not external:
        onnx.save(model, str(path))
        return path
    path.mkdir(parents=True, exist_ok=True)
    onnx.save(
        model,
        str(path / "model.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="model.onnx.data",
        size_threshold=0,
    )
    return path


def gguf_pair(folder: Path, total_bytes: int) -> Files:
    folder.mkdir(parents=True, exist_ok=True)
    first = _arrays(total_bytes, seed=1)
    return [
        ("gguf", _write_gguf(folder / "v1.gguf", first)),
        ("gguf", _write_gguf(folder / "v2.gguf", _changed(first))),
    ]


def onnx_pair(folder: Path, total_bytes: int, external: bool) -> Files:
    folder.mkdir(parents=True, exist_ok=True)
    first = _arrays(total_bytes, seed=2)
    family = "onnx_folder" if external else "onnx"
    suffix = "" if external else ".onnx"
    return [
        (family, _write_onnx(folder / f"{family}_v1{suffix}", first, external)),
        (family, _write_onnx(folder / f"{family}_v2{suffix}", _changed(first), external)),
    ]


PAIRS = ("gguf", "onnx", "onnx_folder")


def pair(which: str, folder: Path, total_bytes: int) -> Files:
    """One of ``PAIRS``: a GGUF pair, an ONNX pair, or a pair of ONNX model folders."""
    if which == "gguf":
        return gguf_pair(folder, total_bytes)
    return onnx_pair(folder, total_bytes, external=which == "onnx_folder")


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _payloads(path: Path) -> Iterator[bytes]:
    """The bytes of each tensor of a GGUF file, ONNX file or ONNX model folder."""
    if path.suffix == ".gguf":
        from gguf import GGUFReader

        for t in GGUFReader(str(path)).tensors:
            yield t.data.tobytes()
        return
    import onnx

    model_path = path / "model.onnx" if path.is_dir() else path
    model = onnx.load(str(model_path), load_external_data=path.is_dir())
    for t in model.graph.initializer:
        yield t.raw_data


def lower_bound(paths: list[Path]) -> int:
    """Each distinct tensor payload once, every other byte of every file in full."""
    seen: set[str] = set()
    bound = 0
    for path in paths:
        tensor_bytes = 0
        for data in _payloads(path):
            tensor_bytes += len(data)
            digest = oid_of(data)
            if digest not in seen:
                seen.add(digest)
                bound += len(data)
        bound += _size(path) - tensor_bytes
    return bound


@contextlib.contextmanager
def _cut_by_content() -> Iterator[None]:
    """Registering as before these formats were known: every file cut by content."""
    with (
        mock.patch.object(formats, "plan", lambda f, size: (formats.RAW, None)),
        mock.patch.object(formats, "plan_folder", lambda listed: {}),
    ):
        yield


def figures(work: Path, label: str, files: Files) -> dict[str, Any]:
    bound = lower_bound([p for _f, p in files])
    out: dict[str, Any] = {"logical_bytes": sum(_size(p) for _f, p in files)}
    out["lower_bound_bytes"] = bound
    for how in ("tensors", "cdc"):
        root = fresh(work / f"{label}-{how}")
        repo, _ = Repository.init(root)
        with _cut_by_content() if how == "cdc" else contextlib.nullcontext():
            for family, path in files:
                repo.register(family, path)
        disk = maintenance.disk_usage(repo.dir)
        out[f"{how}_disk_bytes"] = disk
        out[f"{how}_vs_lower_bound"] = disk / bound
        if how == "tensors":
            out["chunks_compressed_by_gc"] = maintenance.gc(repo).compress
            after = maintenance.disk_usage(repo.dir)
            out["tensors_after_gc_vs_lower_bound"] = after / bound
            out["fsck_ok_after_gc"] = maintenance.fsck(repo).ok
    return out


TARGETS = [
    ("disk (gguf pair) <= 1.01 x lower bound", ("gguf", "tensors_vs_lower_bound"), 1.01),
    ("disk (onnx pair) <= 1.01 x lower bound", ("onnx", "tensors_vs_lower_bound"), 1.01),
    (
        "disk (onnx folder pair) <= 1.01 x lower bound",
        ("onnx_folder", "tensors_vs_lower_bound"),
        1.01,
    ),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/modelreg-bench-formats"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/formats.json"))
    args = parser.parse_args(argv)
    size = (2 << 20) if args.smoke else (128 << 20)
    work = fresh(args.workdir)
    src = work / "src"
    pairs = {which: pair(which, src / which, size) for which in PAIRS}
    results: dict[str, Any] = {"smoke": args.smoke, "file_bytes": size, "figures": {}}
    for label, files in pairs.items():
        results["figures"][label] = figures(work, label, files)
    results["targets"] = []
    lines = []
    for label, (section, key), limit in TARGETS:
        value = results["figures"][section][key]
        results["targets"].append(
            {"target": label, "value": value, "limit": limit, "met": value <= limit}
        )
        lines.append(f"  {'met' if value <= limit else 'MISSED':<6} {label:<46} {value:.4f}")
    for label, figs in results["figures"].items():
        print(f"[{label}]")
        for key, value in figs.items():
            print(
                f"  {key:<32} {value:.4g}" if isinstance(value, float) else f"  {key:<32} {value}"
            )
    print("\ntargets:\n" + "\n".join(lines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, sort_keys=True))
    print(f"\nwrote {args.out}")
    fresh(work).rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
