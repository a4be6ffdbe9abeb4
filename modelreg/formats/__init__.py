"""File formats, one module each: which spans a file is cut at, which tensors it holds, and
how its weights are loaded. The storage layer never knows what torch is: it is handed
``plan`` and asks it where to cut.

| module          | format name      | spans                        | tensors from              |
|-----------------|------------------|------------------------------|---------------------------|
| torch_legacy    | ``torch-legacy`` | each storage after 5 pickles | the main pickle           |
| torch_zip       | ``torch-zip``    | each zip member              | ``<archive>/data.pkl``    |
| safetensors     | ``safetensors``  | the header, each tensor      | the JSON header           |
| gguf            | ``gguf``         | the header, each tensor      | the tensor infos          |
| onnx            | ``onnx``         | each inline initializer      | ``graph.initializer``     |
| onnx            | ``onnx-data``    | each tensor a model names    | (its model's table)       |
| (anything else) | ``raw``/``zip``  | none: content-defined chunks | nothing                   |

A new format is one module with ``NAME``, ``detect(head)``, ``spans(f, size)`` and a tensor
table, added to ``FORMATS``: ``tensor_table(stored, verdict)`` for the pickle-based ones
(``TORCH``), read after the safety scan; ``tensor_table(stored, size)`` for those whose header
is the table (``HEADERED``, see ``modelinfo``); ``load(data)`` where ``load()`` reads the
format (torch, safetensors; GGUF and ONNX are not loaded). Cutting never
changes what is stored (a file is the concatenation of its pieces), so a misread format only
costs dedup, never correctness. ``plan_folder`` plans the files of a directory model whose cut
points another file states (an ONNX model's external data).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import IO

from . import gguf, onnx, safetensors, torch_legacy, torch_zip
from ._base import Malformed, Planner, Span, Stored, Tensor, fill_gaps

RAW = "raw"
# detection order: onnx has no magic number, so it is tried last
FORMATS: tuple[ModuleType, ...] = (torch_legacy, torch_zip, safetensors, gguf, onnx)
HEAD = 64  # bytes ``detect`` sees
TORCH = frozenset({torch_legacy.NAME, torch_zip.NAME, torch_zip.TORCHSCRIPT})
HEADERED = frozenset({safetensors.NAME, gguf.NAME, onnx.NAME})  # tensor tables, no pickle


def plan(f: IO[bytes], size: int) -> tuple[str, list[Span] | None]:
    """(format, spans covering the whole file), or (format, None) to cut by content: ``raw``,
    a plain ``zip``, or a known format whose layout did not add up."""
    f.seek(0)
    head = f.read(HEAD)
    for fmt in FORMATS:
        if not fmt.detect(head):
            continue
        name, spans = fmt.spans(f, size)
        filled = fill_gaps(spans, size) if spans is not None else None
        f.seek(0)
        if filled is None and name != torch_legacy.NAME:
            return RAW, None
        return name, filled
    f.seek(0)
    return RAW, None


def plan_folder(listed: list[tuple[str, Path]]) -> dict[str, Planner]:
    """Relative path -> planner, for the files of a folder whose layout another file of it
    states (the external data of an ONNX model); every other file is planned by ``plan``."""
    return onnx.external_plans(listed)


def by_name(name: str) -> ModuleType | None:
    """The module that reads files of this format (``torchscript`` reads as a torch zip)."""
    for fmt in FORMATS:
        if name in getattr(fmt, "NAMES", (fmt.NAME,)):
            return fmt
    return None


__all__ = [
    "FORMATS",
    "HEADERED",
    "RAW",
    "TORCH",
    "Malformed",
    "Planner",
    "Span",
    "Stored",
    "Tensor",
    "by_name",
    "fill_gaps",
    "plan",
    "plan_folder",
]
