"""``ModelRegistry.load``: weights into memory, never by running code from the file.

The bytes come straight from the store (each chunk verified against its id, the whole file
against its recorded hash), so loading writes no checkout. torch is imported here, lazily.
State dicts are read with ``torch.load(weights_only=True)`` or safetensors; modelreg never
calls ``torch.load`` without ``weights_only``,
so even ``trust=True`` cannot make it execute a pickle's code: it only lets a file that
modelreg's own scan flagged go to torch's weights-only loader (which accepts globals a user
registered with ``torch.serialization.add_safe_globals``).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

from . import files, formats, lazy, shards
from .errors import CorruptObjectError, ModelregError, NotFoundError, UnsafeModelError
from .hashing import new_hasher
from .model import VersionRecord
from .modelinfo import SAFE, verdict_line
from .repo import Record, Repository

Reader = Callable[[str], bytes]  # relative path in the version -> the file's verified bytes

TORCHVISION_PREFIX = "torchvision.models."


def label_of(rec: Record) -> str:
    return f"{rec['name']}@{rec['version']}"


def check_trust(rec: Record, trust: bool) -> None:
    """Refuse what the scan did not find safe: ``unsafe``, and ``unknown`` too (a container
    two readers could read differently, a pickle that could not be read). A record made before
    inspection existed has no verdict and goes, as before, to the weights-only loader."""
    info = rec.get("inspect") or {}
    if trust or info.get("safety") in (None, SAFE, "n/a"):
        return
    raise UnsafeModelError(
        verdict_line(label_of(rec), info) or f"{label_of(rec)} is marked {info.get('safety')}",
        hint="pass trust=True to hand it to torch.load(weights_only=True) anyway",
    )


class StoredVersion:
    """The files of one version, read from the store: no checkout is written."""

    def __init__(self, repo: Repository, rec: Record) -> None:
        self.repo = repo
        self.record = typed = VersionRecord.of_view(rec)
        if typed.is_dir:
            tree = typed.tree(repo.objects)
            self.entries = {rel: (e.manifest, e.size, e.hash) for rel, e in tree.entries.items()}
        else:
            self.entries = {typed.source: (typed.root, typed.size, typed.content_hash)}

    def size(self, rel: str) -> int:
        return int(self.entries[rel][1])

    def manifest(self, rel: str) -> dict[str, Any]:
        """The file's manifest (verified by its id), checked against what the record says."""
        oid, size, digest = self.entries[rel]
        manifest = self.repo.objects.get_json(oid)
        if not isinstance(manifest, dict) or (
            manifest.get("size") != size or manifest.get("hash") != digest
        ):
            raise CorruptObjectError(f"{rel}: its record does not match its manifest")
        return manifest

    def read(self, rel: str) -> bytes:
        _oid, size, digest = self.entries[rel]
        manifest = self.manifest(rel)
        out = bytearray()
        whole = new_hasher()
        for piece in files.iter_file(self.repo.objects, manifest):
            if len(out) + len(piece) > size:
                raise CorruptObjectError(f"{rel}: its chunks hold more than its recorded size")
            whole.update(piece)
            out += piece
        if whole.hexdigest() != digest:
            raise CorruptObjectError(f"{rel} rebuilt from the store does not match its hash")
        return bytes(out)


def model_files(rec: Record, stored: StoredVersion) -> list[tuple[str, str]]:
    """The files that make up the model: one file, or the shards of a folder's one model."""
    typed = stored.record
    if not typed.is_dir:
        inspected = (typed.inspect or {}).get("format")
        return [(typed.source, str(inspected or typed.format))]
    found_files = (typed.inspect or {}).get("model_files") or {}
    # GGUF and ONNX files are listed but not loaded: a folder shipping an export beside its
    # checkpoint loads the checkpoint
    model_files = {rel: f for rel, f in found_files.items() if f in shards.LOADABLE}
    if found_files and not model_files:
        rel, fmt = sorted(found_files.items())[0]
        return [(rel, fmt)]  # _load_one says it cannot
    indexes = [rel for rel in stored.entries if rel.endswith(".index.json")]

    def small(rel: str) -> bytes | None:
        return stored.read(rel) if stored.size(rel) <= shards.MAX_INDEX else None

    found = shards.groups(model_files, indexes, small)
    group = shards.loadable(found)
    if group is None:
        what = ", ".join(" + ".join(g.files) for g in found)
        raise ModelregError(
            f"{label_of(rec)} is a folder with {len(model_files)} model files, not all shards "
            f"of one model ({what})"
            if found
            else f"{label_of(rec)} is a folder with no model files",
            hint="load one of them yourself from the path get() returns",
        )
    return [(rel, model_files[rel]) for rel in group.files]


def _load_one(data: bytes, fmt: str, label: str) -> Any:
    reader = formats.by_name(fmt) if fmt in shards.LOADABLE else None
    if reader is not None:
        return reader.load(data)
    raise ModelregError(
        f"{label} is {'an' if fmt[:1] in 'aeiou' else 'a'} {fmt} file",
        hint="load reads torch checkpoints and safetensors; use get() for the path",
    )


def load_state(repo: Repository, rec: Record) -> Any:
    """The version's state dict (or whatever its one file holds), from the store."""
    try:
        import torch
    except ImportError:
        raise ModelregError("loading needs torch", hint="pip install 'modelreg[torch]'") from None
    lazy.ensure(repo, [rec])  # a lazy clone fetches the chunks it lacks, in one batch
    try:
        stored = StoredVersion(repo, rec)
        model = model_files(rec, stored)
        if len(model) == 1:
            rel, fmt = model[0]
            return load_shard(torch, rec, stored.read(rel), fmt)
        return _merge(torch, rec, stored, model)
    except (CorruptObjectError, NotFoundError) as e:
        raise CorruptObjectError(
            f"cannot load {label_of(rec)}: {e.args[0]}", hint=CorruptObjectError.hint
        ) from None


def _merge(torch: Any, rec: Record, stored: StoredVersion, model: list[tuple[str, str]]) -> Any:
    merged: dict[str, Any] = {}
    where: dict[str, str] = {}
    for file, fmt in model:
        part = load_shard(torch, rec, stored.read(file), fmt)
        if not isinstance(part, dict):
            raise ModelregError(
                f"{label_of(rec)}: shard {file} holds a {type(part).__name__}, not tensors",
                hint="load the shards yourself from the path get() returns",
            )
        for name, tensor in part.items():
            if name in merged:
                raise ModelregError(
                    f"{label_of(rec)}: tensor {name} is in two shards, {where[name]} and {file}",
                    hint="load the shards yourself from the path get() returns",
                )
            merged[name], where[name] = tensor, file
    return merged


def load_shard(torch: Any, rec: Record, data: bytes, fmt: str) -> Any:
    try:
        return _load_one(data, fmt, label_of(rec))
    except (pickle.UnpicklingError, RuntimeError, ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelregError(
            f"torch refused to load {label_of(rec)}: {first}",
            hint="it holds objects a weights-only load does not accept",
        ) from None


def build_module(rec: Record, state: Any) -> Any:
    """A torchvision model named by ``architecture``, with the state dict loaded."""
    import torchvision

    name = str(rec.get("architecture", ""))[len(TORCHVISION_PREFIX) :]
    if name not in torchvision.models.list_models():
        raise ModelregError(
            f"{label_of(rec)}: architecture {rec.get('architecture')!r} is not a torchvision model",
            hint="pass as_module=False for the state dict",
        )
    model = torchvision.models.get_model(name, weights=None)
    classes = _num_classes(model.state_dict(), state) if isinstance(state, dict) else None
    if classes is not None:
        model = torchvision.models.get_model(name, weights=None, num_classes=classes)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError) as e:
        first = str(e).strip().splitlines()[0]
        raise ModelregError(
            f"{label_of(rec)} does not fit {rec['architecture']}: {first}",
            hint="pass as_module=False for the state dict",
        ) from None
    return model.eval()


def _num_classes(default: dict[str, Any], state: dict[str, Any]) -> int | None:
    """The class count of a fine-tuned head (a ResNet's ``fc`` remade for 4 classes): the one
    first dimension in which the state's tensors differ from the default model's; None when
    they do not differ that way."""
    found = set()
    for key, want in default.items():
        got = state.get(key)
        shape = tuple(getattr(got, "shape", ()))
        if got is None or shape == tuple(want.shape):
            continue
        if len(shape) != len(want.shape) or shape[1:] != tuple(want.shape[1:]):
            return None
        found.add(shape[0])
    return found.pop() if len(found) == 1 else None


def wants_module(rec: Record, as_module: bool | None) -> bool:
    if as_module is not None:
        return as_module
    return str(rec.get("architecture") or "").startswith(TORCHVISION_PREFIX)
