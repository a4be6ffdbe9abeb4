"""Real model files for tests, made by torch.save and safetensors (never hand-written)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def small_state_dict(seed: int = 0, big: int = 64) -> dict[str, Any]:
    import torch

    g = torch.Generator().manual_seed(seed)
    return {
        "conv.weight": torch.randn(big, 16, 3, 3, generator=g),
        "conv.bias": torch.randn(big, generator=g),
        "bn.running_mean": torch.zeros(big),
        "bn.num_batches_tracked": torch.tensor(0),
        "fc.weight": torch.randn(10, big * 16, generator=g),
        "fc.bias": torch.randn(10, generator=g),
    }


def save_torch(path: Path, state: dict[str, Any]) -> Path:
    import torch

    torch.save(state, path)
    return path


def save_safetensors(path: Path, state: dict[str, Any]) -> Path:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path
