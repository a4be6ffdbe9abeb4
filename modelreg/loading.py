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

from . import shards
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


def _read_small(path: Path) -> bytes | None:
    try:
        if path.stat().st_size > shards.MAX_INDEX:
            return None
        return path.read_bytes()
    except OSError:
        return None


def _model_files(rec: Record, path: Path) -> list[tuple[Path, str]]:
    """The files that make up the model: one file, or the shards of a folder's one model."""
    if rec["kind"] == "file":
        inspected = (rec.get("inspect") or {}).get("format")
        return [(path, str(inspected or rec.get("format", "raw")))]
    model_files = (rec.get("inspect") or {}).get("model_files") or {}
    indexes = [p.relative_to(path).as_posix() for p in path.rglob("*.index.json")]
    found = shards.groups(model_files, indexes, lambda rel: _read_small(path / rel))
    group = shards.loadable(found)
    if group is None:
        what = ", ".join(" + ".join(g.files) for g in found)
        raise ModelregError(
            f"{_label(rec)} is a folder with {len(model_files)} model files, not all shards "
            f"of one model ({what})"
            if found
            else f"{_label(rec)} is a folder with no model files",
            hint="load one of them yourself from the path get() returns",
        )
    return [(path / rel, model_files[rel]) for rel in group.files]


def _load_one(torch: Any, file: Path, fmt: str, label: str) -> Any:
    if fmt == "safetensors":
        from safetensors.torch import load_file

        return load_file(str(file))
    if fmt in shards.TORCH_FORMATS:
        return torch.load(file, weights_only=True, mmap=fmt == "torch-zip", map_location="cpu")
    raise ModelregError(
        f"{label} is a {fmt} file",
        hint="load reads torch checkpoints and safetensors; use get() for the path",
    )


def load_state(rec: Record, path: Path) -> Any:
    try:
        import torch
    except ImportError:
        raise ModelregError("loading needs torch", hint="pip install 'modelreg[torch]'") from None
    files = _model_files(rec, path)
    if len(files) == 1:
        return _load_shard(torch, rec, *files[0])
    merged: dict[str, Any] = {}
    where: dict[str, Path] = {}
    for file, fmt in files:
        part = _load_shard(torch, rec, file, fmt)
        if not isinstance(part, dict):
            raise ModelregError(
                f"{_label(rec)}: shard {file.name} holds a {type(part).__name__}, not tensors",
                hint="load the shards yourself from the path get() returns",
            )
        for name, tensor in part.items():
            if name in merged:
                raise ModelregError(
                    f"{_label(rec)}: tensor {name} is in two shards, "
                    f"{where[name].name} and {file.name}",
                    hint="load the shards yourself from the path get() returns",
                )
            merged[name], where[name] = tensor, file
    return merged


def _load_shard(torch: Any, rec: Record, file: Path, fmt: str) -> Any:
    try:
        return _load_one(torch, file, fmt, _label(rec))
    except (pickle.UnpicklingError, RuntimeError, ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelregError(
            f"torch refused to load {_label(rec)}: {first}",
            hint="it holds objects a weights-only load does not accept",
        ) from None


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
