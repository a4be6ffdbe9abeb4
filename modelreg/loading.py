"""``ModelRegistry.load``: weights into memory, never by running code from the file.

torch is imported here, lazily. State dicts are read with ``torch.load(weights_only=True,
mmap=True)`` or safetensors; modelreg never calls ``torch.load`` without ``weights_only``,
so even ``trust=True`` cannot make it execute a pickle's code: it only lets a file that
modelreg's own scan flagged go to torch's weights-only loader (which accepts globals a user
registered with ``torch.serialization.add_safe_globals``).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from .errors import ModelregError, UnsafeModelError
from .modelinfo import SAFE, verdict_line
from .repo import Record

TORCHVISION_PREFIX = "torchvision.models."


def _label(rec: Record) -> str:
    return f"{rec['name']}@{rec['version']}"


def check_trust(rec: Record, trust: bool) -> None:
    """Refuse what the scan did not find safe: ``unsafe``, and ``unknown`` too (a container
    two readers could read differently, a pickle that could not be read). A record made before
    inspection existed has no verdict and goes, as before, to the weights-only loader."""
    info = rec.get("inspect") or {}
    if trust or info.get("safety") in (None, SAFE, "n/a"):
        return
    raise UnsafeModelError(
        verdict_line(_label(rec), info) or f"{_label(rec)} is marked {info.get('safety')}",
        hint="pass trust=True to hand it to torch.load(weights_only=True) anyway",
    )


def _model_file(rec: Record, path: Path) -> tuple[Path, str]:
    if rec["kind"] == "file":
        inspected = (rec.get("inspect") or {}).get("format")
        return path, str(inspected or rec.get("format", "raw"))
    model_files = (rec.get("inspect") or {}).get("model_files") or {}
    if len(model_files) != 1:
        raise ModelregError(
            f"{_label(rec)} is a folder with {len(model_files)} model files",
            hint="load one of them yourself from the path get() returns",
        )
    ((rel, fmt),) = model_files.items()
    return path / rel, fmt


def load_state(rec: Record, path: Path) -> Any:
    try:
        import torch
    except ImportError:
        raise ModelregError("loading needs torch", hint="pip install 'modelreg[torch]'") from None
    file, fmt = _model_file(rec, path)
    try:
        if fmt == "safetensors":
            from safetensors.torch import load_file

            return load_file(str(file))
        if fmt in ("torch-zip", "torch-legacy", "pickle"):
            return torch.load(file, weights_only=True, mmap=fmt == "torch-zip", map_location="cpu")
    except (pickle.UnpicklingError, RuntimeError, ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelregError(
            f"torch refused to load {_label(rec)}: {first}",
            hint="it holds objects a weights-only load does not accept",
        ) from None
    raise ModelregError(
        f"{_label(rec)} is a {fmt} file",
        hint="load reads torch checkpoints and safetensors; use get() for the path",
    )


def build_module(rec: Record, state: Any) -> Any:
    """A torchvision model named by ``architecture``, with the state dict loaded."""
    import torchvision

    name = str(rec.get("architecture", ""))[len(TORCHVISION_PREFIX) :]
    if name not in torchvision.models.list_models():
        raise ModelregError(
            f"{_label(rec)}: architecture {rec.get('architecture')!r} is not a torchvision model",
            hint="pass as_module=False for the state dict",
        )
    model = torchvision.models.get_model(name, weights=None)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError) as e:
        first = str(e).strip().splitlines()[0]
        raise ModelregError(
            f"{_label(rec)} does not fit {rec['architecture']}: {first}",
            hint="pass as_module=False for the state dict",
        ) from None
    return model.eval()


def wants_module(rec: Record, as_module: bool | None) -> bool:
    if as_module is not None:
        return as_module
    return str(rec.get("architecture") or "").startswith(TORCHVISION_PREFIX)
