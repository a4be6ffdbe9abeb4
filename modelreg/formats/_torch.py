"""What torch's two file formats share: the tensor table read from the main pickle, and
loading through ``torch.load(weights_only=True)``."""

from __future__ import annotations

import io
from typing import Any

from .. import pickle_scan
from ..containers import Verdict
from ._base import UNKNOWN_KEY, Stored, Tensor


def tensor_table(stored: Stored, verdict: Verdict | None) -> dict[str, Tensor]:
    """Each tensor of the checkpoint's object, keyed by the bytes of its storage's span."""
    if verdict is None or verdict.main is None:
        return {}
    table: dict[str, Tensor] = {}
    for t in pickle_scan.tensors(verdict.main.root):
        where = stored.span(f"{verdict.archive}data/{t.storage}")
        key = stored.content_key(*where) if where else UNKNOWN_KEY
        table[t.name] = Tensor(t.dtype, list(t.shape), t.numel, key)
    return table


def load(data: bytes) -> Any:
    """Weights only: torch refuses any global outside its allowlist, nothing is executed."""
    import torch

    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
