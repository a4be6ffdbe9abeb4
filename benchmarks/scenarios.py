"""Deterministic, offline model files for the benchmarks (torch imported here only).

The public scenarios:
  v1 ResNet-18 state dict (torchvision, weights=None, seed 0)
  v2 the same state dict saved again (new bytes, same tensors)
  v3 head fine-tuned: fc.* changed
  v4 layer4.* and fc.* changed
  v5 every floating-point tensor changed
  v6 MobileNetV2 (seed 0)
  a pair of checkpoints of 64 equal tensors where only the last tensor differs
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from modelreg.hashing import oid_of


def _perturbed(state: dict[str, Any], prefixes: tuple[str, ...], seed: int) -> dict[str, Any]:
    import torch

    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, tensor in state.items():
        if tensor.is_floating_point() and (not prefixes or key.startswith(prefixes)):
            tensor = tensor + 0.01 * torch.randn(tensor.shape, generator=g)
        out[key] = tensor.clone()
    return out


def resnet_sequence(folder: Path) -> list[tuple[str, Path]]:
    """(family, file) for v1..v6, saved into ``folder``."""
    import torch
    import torchvision

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    v1 = torchvision.models.resnet18(weights=None).state_dict()
    v3 = _perturbed(v1, ("fc.",), seed=3)
    v4 = _perturbed(v3, ("layer4.", "fc."), seed=4)
    v5 = _perturbed(v4, (), seed=5)
    torch.manual_seed(0)
    v6 = torchvision.models.mobilenet_v2(weights=None).state_dict()
    plan = [
        ("resnet18", "v1_resnet18.pt", v1),
        ("resnet18", "v2_resnet18_again.pt", v1),
        ("resnet18", "v3_head.pt", v3),
        ("resnet18", "v4_layer4_head.pt", v4),
        ("resnet18", "v5_all.pt", v5),
        ("mobilenet_v2", "v6_mobilenet_v2.pt", v6),
    ]
    out = []
    for family, name, state in plan:
        path = folder / name
        torch.save(state, path)
        out.append((family, path))
    return out


def big_pair(folder: Path, total_bytes: int) -> list[tuple[str, Path]]:
    """Two checkpoints of 64 float32 tensors totalling ``total_bytes``; only the last differs."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    per_tensor = total_bytes // 64 // 4
    g = torch.Generator().manual_seed(512)
    state = {f"block{i:02d}.weight": torch.randn(per_tensor, generator=g) for i in range(64)}
    first = folder / "big_v1.pt"
    torch.save(state, first)
    state["block63.weight"] = torch.randn(per_tensor, generator=g)
    second = folder / "big_v2.pt"
    torch.save(state, second)
    return [("big", first), ("big", second)]


def tensor_lower_bound(paths: list[Path]) -> tuple[int, int]:
    """(lower bound, tensor payload bytes): each distinct tensor payload of the torch zip
    files counted once, every other byte (headers, pickles, zip directory) in full.

    Computed with ``zipfile`` alone, independently of modelreg's chunker."""
    seen: set[str] = set()
    bound = 0
    payload = 0
    for path in paths:
        size = path.stat().st_size
        with zipfile.ZipFile(path) as zf:
            tensor_bytes = 0
            for info in zf.infolist():
                if "/data/" in info.filename and not info.filename.endswith(".pkl"):
                    data = zf.read(info)
                    tensor_bytes += len(data)
                    digest = oid_of(data)
                    if digest not in seen:
                        seen.add(digest)
                        bound += len(data)
                        payload += len(data)
        bound += size - tensor_bytes
    return bound, payload


def trained_pair(folder: Path) -> tuple[list[tuple[str, Path]], str | None]:
    """The trained checkpoint (benchmarks/trained.py) as it ships, float32, and the same
    state dict cast to bfloat16 and saved again; or ([], why) when it is not on this machine."""
    import torch

    from . import trained

    try:
        fp32 = trained.locate()
    except trained.TrainedCheckpointMissing as e:
        return [], str(e)
    folder.mkdir(parents=True, exist_ok=True)
    state = torch.load(fp32, weights_only=True, map_location="cpu")
    cast = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in state.items()}
    bf16 = folder / "crepe_full_bf16.pt"
    torch.save(cast, bf16)
    return [("crepe_fp32", fp32), ("crepe_bf16", bf16)], None
