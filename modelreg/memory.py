"""Registering a model that is in memory: ``ModelRegistry.register(name, model=...)``.

The state dict (of an ``nn.Module``, or given as one) is written as safetensors, or as a
torch zip checkpoint when a value cannot go to safetensors (tensors that share memory, a
non-tensor value, a sparse or quantized tensor). It is staged in a file of modelreg's own
inside ``.modelreg/`` under a temporary name, registered as ``model.safetensors`` or
``model.pt``, and removed in ``finally``; a staging file left by a killed process is one of
the leftovers ``gc`` deletes. torch is imported here, only when this runs.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import _fs
from .errors import InvalidInputError, ModelregError

SAFETENSORS_NAME = "model.safetensors"
TORCH_NAME = "model.pt"
TORCHVISION = "torchvision.models"


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ModelregError(
            "registering a model from memory needs torch", hint="pip install 'modelreg[torch]'"
        ) from None
    return torch


def state_of(model: Any) -> tuple[dict[str, Any], Any]:
    """(state dict, the module it came from or None)."""
    torch = _torch()
    if isinstance(model, torch.nn.Module):
        return model.state_dict(), model
    if isinstance(model, dict) and all(isinstance(k, str) for k in model):
        return model, None
    raise InvalidInputError(
        f"model= must be a torch.nn.Module or a state dict, not {type(model).__name__}",
        hint="pass the module, or module.state_dict(); for a file use model_path=",
    )


def torchvision_builder(module: Any) -> str | None:
    """The one ``torchvision.models.<builder>`` that makes a module of ``module``'s class
    with the same tensor names and shapes (a remade classifier head may differ in its class
    count), found by building each candidate of that class on the meta device (no memory,
    no weights); None for anything else, or when two builders fit (they differ in settings
    the weights do not show, such as an input size)."""
    cls = type(module)
    if not cls.__module__.startswith(TORCHVISION + "."):
        return None
    import torch
    import torchvision

    mine = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    found: list[str] = []
    for name in sorted(torchvision.models.list_models()):
        builder = torchvision.models.get_model_builder(name)
        if builder.__module__ != cls.__module__:
            continue
        # weights_backbone=None too: a detection builder would otherwise download a backbone
        kwargs = {"weights": None}
        if "weights_backbone" in inspect.signature(builder).parameters:
            kwargs["weights_backbone"] = None
        try:
            with torch.device("meta"):
                candidate = builder(**kwargs)
        except Exception:  # a builder that cannot run on meta: not one we can match
            continue
        if type(candidate) is not cls:
            continue
        theirs = {k: tuple(v.shape) for k, v in candidate.state_dict().items()}
        if theirs.keys() == mine.keys() and all(
            theirs[k][1:] == mine[k][1:] and len(theirs[k]) == len(mine[k]) for k in mine
        ):
            found.append(f"{TORCHVISION}.{name}")
    return found[0] if len(found) == 1 else None  # two that fit (same weights, other sizes)


def _write_safetensors(state: dict[str, Any], path: Path) -> bool:
    """Write ``state`` as safetensors; False when it cannot hold it."""
    torch = _torch()
    try:
        from safetensors.torch import save_file
    except ImportError:
        return False
    if not all(isinstance(v, torch.Tensor) and v.layout == torch.strided for v in state.values()):
        return False
    if any(v.is_quantized for v in state.values()):
        return False
    try:
        save_file({k: v.detach().contiguous() for k, v in state.items()}, str(path))
    except (RuntimeError, ValueError, TypeError):  # shared memory (tied weights) and the like
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return False
    return True


@contextlib.contextmanager
def staged(store: Path, model: Any) -> Iterator[tuple[Path, str, str | None]]:
    """Yield (staged file, the name to record, torchvision architecture or None); the file
    is gone when the block ends."""
    torch = _torch()
    state, module = state_of(model)
    if not state:
        raise InvalidInputError("the model has no tensors to store", hint="pass a trained model")
    architecture = torchvision_builder(module) if module is not None else None
    path = _fs.tmp_name(store / "staged-model")
    try:
        if _write_safetensors(state, path):
            yield path, SAFETENSORS_NAME, architecture
        else:
            with open(path, "xb") as f:  # a file object: torch names the archive after a path
                torch.save(state, f)
            yield path, TORCH_NAME, architecture
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
