"""Sharded checkpoints: several files of a folder model that hold one model's tensors.

A big model is saved as shards (``model-00001-of-00003.safetensors`` ...), often with an index
(``model.safetensors.index.json``, ``pytorch_model.bin.index.json``) whose ``weight_map`` says
which file holds which tensor. How the weights are cut into files says nothing about the
model, so the shards of one model form one tensor namespace: re-sharding the same weights is
no change, and ``load()`` returns one merged state dict.

The groups, in the order they claim names:
- the files an index's ``weight_map`` names (safetensors or torch files, beside the index);
- every other ``*.safetensors`` file of one folder, index or not;
- any other model file (torch, GGUF, ONNX) alone, its tensors named ``<path>:<tensor>``.
A group's tensors are named as saved (``<folder>/<tensor>`` below the top folder). When two
groups would give the same names (a folder shipping safetensors and torch copies of one model),
the safetensors one keeps them and the other's are named per file.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

TORCH_FORMATS = frozenset({"torch-zip", "torch-legacy", "pickle"})
LOADABLE = TORCH_FORMATS | {"safetensors"}
MAX_INDEX = 16 << 20  # an index file larger than this is not read
T = TypeVar("T")


@dataclass(frozen=True)
class Group:
    folder: str  # relative folder, "" for the top
    files: tuple[str, ...]  # relative paths, sorted
    safetensors: bool
    shared: bool  # one namespace (shards, or the safetensors of a folder), not one lone file

    @property
    def label(self) -> str:
        """How this group's tensor names start when it owns its namespace."""
        return f"{self.folder}/" if self.folder else ""


def _family(fmt: str) -> str | None:
    if fmt in ("safetensors", "gguf", "onnx"):
        return fmt
    return "torch" if fmt in TORCH_FORMATS else None


def _indexed(
    formats: dict[str, str], index: str, read: Callable[[str], bytes | None]
) -> tuple[str, ...]:
    """The model files an index file names, or () when it is not a usable index."""
    raw = read(index)
    try:
        weight_map = json.loads(raw or b"").get("weight_map")
    except (ValueError, AttributeError):
        return ()
    if not isinstance(weight_map, dict):
        return ()
    folder = posixpath.dirname(index)
    named = set()
    for target in weight_map.values():
        if not isinstance(target, str):
            return ()
        rel = posixpath.normpath(posixpath.join(folder, target))
        if rel not in formats:
            return ()
        named.add(rel)
    families = {_family(formats[rel]) for rel in named}
    return tuple(sorted(named)) if len(families) == 1 and None not in families else ()


def groups(
    formats: dict[str, str], all_files: Iterable[str], read: Callable[[str], bytes | None]
) -> list[Group]:
    """The model files of a folder (path -> inspect format) as groups, in claiming order."""
    claimed: set[str] = set()
    found: list[Group] = []
    for index in sorted(f for f in all_files if f.endswith(".index.json")):
        files = tuple(f for f in _indexed(formats, index, read) if f not in claimed)
        if files:
            claimed.update(files)
            safetensors = formats[files[0]] == "safetensors"
            found.append(Group(posixpath.dirname(index), files, safetensors, True))
    by_folder: dict[str, list[str]] = {}
    for rel, fmt in sorted(formats.items()):
        if fmt == "safetensors" and rel not in claimed:
            by_folder.setdefault(posixpath.dirname(rel), []).append(rel)
    for folder, members in by_folder.items():
        claimed.update(members)
        found.append(Group(folder, tuple(members), True, True))
    found.sort(key=lambda g: (not g.safetensors, g.folder, g.files))
    for rel, fmt in sorted(formats.items()):
        if rel not in claimed and _family(fmt):
            found.append(Group(posixpath.dirname(rel), (rel,), False, False))
    return found


def merge(tables: dict[str, dict[str, T]], found: list[Group]) -> dict[str, T]:
    """One table for the folder: each shared group's tensors under its label, everything else
    (and any name already taken) as ``<path>:<tensor>``."""
    out: dict[str, T] = {}
    labels: set[str] = set()
    for group in found:
        own = group.shared and group.label not in labels
        if own:
            labels.add(group.label)
        for rel in group.files:
            for name, value in tables.get(rel, {}).items():
                key = f"{group.label}{name}" if own else f"{rel}:{name}"
                out[key if key not in out else f"{rel}:{name}"] = value
    return out


def _hugging_face_torch_copy(group: Group) -> bool:
    return all(posixpath.basename(f).startswith("pytorch_model") for f in group.files)


def loadable(found: list[Group]) -> Group | None:
    """The one group ``load()`` reads: the only one, or the safetensors shards of a model the
    folder also ships as ``pytorch_model*.bin`` (as Hugging Face repositories do). None when
    the folder holds several models."""
    if len(found) == 1:
        return found[0]
    first = found[0] if found else None
    if (
        first is not None
        and first.safetensors
        and first.shared
        and all(
            not g.safetensors and g.folder == first.folder and _hugging_face_torch_copy(g)
            for g in found[1:]
        )
    ):
        return first
    return None
