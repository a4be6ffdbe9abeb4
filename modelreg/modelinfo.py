"""What is inside a stored model file, read from its manifest and chunks, never executed.

``summarize`` gives what a version record keeps (format, tensor count, parameter count, dtypes,
safety verdict); ``tensor_table`` gives each tensor's dtype, shape and a content key, which is
what ``diff`` compares. Both read only the pieces they need (the pickle, the safetensors,
GGUF or ONNX header) from the object store.
"""

from __future__ import annotations

import base64
import bisect
from collections.abc import Callable
from typing import Any, Protocol

from . import containers, formats, pickle_risk
from .formats._base import UNKNOWN_KEY
from .hashing import oid_of
from .store_api import Store

SAFE, UNSAFE, UNKNOWN = "safe", "unsafe", "unknown"
EXECUTES_CODE, UNSAFE_CLASSES = pickle_risk.EXECUTES_CODE, pickle_risk.UNSAFE_CLASSES


class ChunkSource(Protocol):
    """Where a stored file's chunks come from: any object store (``get`` verifies), or a
    source that counts or fetches them (``tensors.StoreSource``)."""

    def get(self, oid: str) -> bytes: ...


def _part_bytes(store: ChunkSource, part: dict[str, Any]) -> bytes:
    return base64.b64decode(part["b"]) if "b" in part else store.get(part["o"])


def _part_len(part: dict[str, Any]) -> int:
    return int(part["n"]) if "o" in part else len(base64.b64decode(part["b"]))


class StoredFile:
    """Random access to a stored file's bytes through its manifest."""

    def __init__(self, store: ChunkSource, manifest: dict[str, Any]) -> None:
        self.store = store
        self.manifest = manifest
        self.offsets: list[tuple[int, int, dict[str, Any]]] = []
        pos = 0
        for part in manifest["parts"]:
            n = _part_len(part)
            self.offsets.append((pos, n, part))
            pos += n
        self.starts = [pos for pos, _n, _p in self.offsets]
        self.spans = {name: (start, length) for name, start, length in manifest.get("spans", [])}
        self._last: tuple[int, bytes] | None = None  # zip and pickle readers re-read one part

    def _part(self, index: int) -> bytes:
        if self._last is None or self._last[0] != index:
            self._last = (index, _part_bytes(self.store, self.offsets[index][2]))
        return self._last[1]

    def read(self, start: int, length: int) -> bytes:
        out = bytearray()
        end = start + length
        first = max(bisect.bisect_right(self.starts, start) - 1, 0)
        for index in range(first, len(self.offsets)):
            pos, n, _part = self.offsets[index]
            if pos >= end:
                break
            if pos + n <= start:
                continue
            out += self._part(index)[max(0, start - pos) : min(n, end - pos)]
        return bytes(out)

    def span(self, name: str) -> tuple[int, int] | None:
        return self.spans.get(name)

    def chunk_ids(self, start: int, length: int) -> list[str]:
        """The chunk objects holding [start, start+length): what reading it will fetch."""
        first = max(bisect.bisect_right(self.starts, start) - 1, 0)
        return [
            part["o"]
            for pos, n, part in self.offsets[first:]
            if pos < start + length and pos + n > start and "o" in part
        ]

    def horizon(self, pos: int, want: int) -> int:
        """How far from ``pos`` (up to ``want`` bytes) reading loads no other chunk: the end
        of the part holding ``pos`` and of the inline parts after it."""
        if not self.offsets:
            return 0
        index = max(bisect.bisect_right(self.starts, pos) - 1, 0)
        while (
            index + 1 < len(self.offsets)
            and self.starts[index + 1] < pos + want
            and "b" in self.offsets[index + 1][2]
        ):
            index += 1
        start, n, _part = self.offsets[index]
        return start + n

    def content_key(self, start: int, length: int) -> str:
        """An id of the bytes in [start, start+length) built from the part ids alone.

        The chunker cuts every tensor span into its own parts, so the same tensor bytes give
        the same parts wherever they sit in whichever file. Should the parts not line up with
        the span, the offsets into the first and last part are part of the key: two tensors
        sharing one chunk must not look equal."""
        first = bisect.bisect_right(self.starts, start) - 1
        ids: list[str] = []
        head = tail = 0
        for index in range(max(first, 0), len(self.offsets)):  # no copy: files of 100k parts
            pos, n, part = self.offsets[index]
            if pos >= start + length:
                break
            if pos + n > start:
                if not ids:
                    head = start - pos
                ids.append(part.get("o") or part["b"])
                tail = pos + n - (start + length)
        if head or tail:
            ids.append(f"{head}:{length}")
        return oid_of("|".join(ids).encode())


Tensor = formats.Tensor  # dtype, shape, numel and the content key of its bytes
UNKNOWN_KEY = UNKNOWN_KEY  # no span to key the tensor by: never equal to anything in a diff


Sibling = Callable[[str], "StoredFile | None"]  # a path beside the file -> that stored file


def _headered(fmt: str, f: StoredFile, size: int, sibling: Sibling | None) -> dict[str, Any]:
    """The summary of a format whose tensor table is its header (no pickle), and the table
    under ``"table"``."""
    info: dict[str, Any] = {"format": fmt, "safety": SAFE}
    try:
        if fmt == formats.gguf.NAME:
            info["table"] = formats.gguf.tensor_table(f, size)
            info["quantization"] = formats.gguf.quantization(info["table"])
        elif fmt == formats.onnx.NAME:
            info["table"], info["external_data"] = formats.onnx.tensor_table(f, size, sibling)
        else:
            info["table"] = formats.safetensors.tensor_table(f, size)
    except formats.Malformed:
        return {"format": fmt, "safety": UNKNOWN, "note": f"its {fmt} header does not add up"}
    if containers.leading_pickle_globals(f.read, size):
        info.update(safety=UNKNOWN, note=f"the file is both {fmt} and a pickle")
    return {k: v for k, v in info.items() if v != []}


def analyze(
    store: Store, manifest: dict[str, Any], sibling: Sibling | None = None
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """The summary and tensor table of one stored file. The safety verdict reads the bytes the
    way loaders do, whatever the chunker made of the file. ``sibling`` opens the files a
    model names beside it (an ONNX model's external data), for their tensors' keys."""
    f = StoredFile(store, manifest)
    size = int(manifest["size"])
    table: dict[str, Tensor] = {}
    if manifest.get("format") in formats.HEADERED:
        info = _headered(str(manifest["format"]), f, size, sibling)
        table = info.pop("table", {})
    else:
        verdict = containers.examine(f.read, size) if size else None
        if verdict is None:
            return {"format": manifest.get("format") or "raw", "safety": "n/a"}, {}
        info = verdict.summary()
        reader = formats.by_name(verdict.format) if verdict.format in formats.TORCH else None
        if reader is not None:
            table = reader.tensor_table(f, verdict)
    if table:
        info["tensors"] = len(table)
        info["parameters"] = sum(t.numel for t in table.values())
        info["dtypes"] = sorted({t.dtype for t in table.values()})
    return info, table


_RANK = {UNSAFE: 3, UNKNOWN: 2, SAFE: 1, "n/a": 0}


def combine(per_file: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One summary for a directory model: totals over its model files, the worst verdict."""
    models = {rel: s for rel, s in per_file.items() if s.get("safety") != "n/a"}
    if not models:
        return {"format": "dir", "safety": "n/a"}
    worst = max((s["safety"] for s in models.values()), key=_RANK.__getitem__)
    out: dict[str, Any] = {
        "format": "dir",
        "safety": worst,
        "model_files": {rel: s["format"] for rel, s in sorted(models.items())},
        "tensors": sum(s.get("tensors", 0) for s in models.values()),
        "parameters": sum(s.get("parameters", 0) for s in models.values()),
        "dtypes": sorted({d for s in models.values() for d in s.get("dtypes", [])}),
    }
    risks = {s.get("risk") for s in models.values() if s.get("safety") == UNSAFE}
    if risks:
        out["risk"] = EXECUTES_CODE if risks - {UNSAFE_CLASSES} else UNSAFE_CLASSES
    for key in ("unsafe_globals", "code_globals", "note"):
        found = {rel: s[key] for rel, s in sorted(models.items()) if s.get(key)}
        if found:
            out[key] = found
    if any(s.get("saved_module") for s in models.values()):
        out["saved_module"] = True
    return out


def _per_file(value: Any) -> str:
    """A list (one file) or a path -> list mapping (a folder) as one line of words."""
    if isinstance(value, dict):
        return "; ".join(f"{rel}: {_per_file(v)}" for rel, v in value.items())
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def flagged_globals(info: dict[str, Any]) -> str:
    """The globals that made a summary unsafe, as one line (per file for a folder)."""
    return _per_file(info.get("unsafe_globals") or [])


def risk_of(info: dict[str, Any]) -> str | None:
    """executes-code, unsafe-classes, or None when not unsafe. A record made before the two
    levels existed says only ``unsafe``: it counts as executing code."""
    if info.get("safety") != UNSAFE:
        return None
    return str(info.get("risk") or EXECUTES_CODE)


def verdict_line(label: str, info: dict[str, Any]) -> str | None:
    """What is wrong with a version that is not safe to load, as one sentence, or None."""
    safety = info.get("safety")
    if safety == UNKNOWN:
        return f"{label} could not be checked: {_per_file(info.get('note') or 'no reason given')}"
    risk = risk_of(info)
    if risk is None:
        return None
    hint = (
        "; it is a whole module saved with torch.save(model): save model.state_dict()"
        if info.get("saved_module")
        else ""
    )
    if risk == UNSAFE_CLASSES:
        return (
            f"{label} is marked unsafe (unsafe classes): its pickle needs classes outside "
            f"torch's weights-only allowlist ({flagged_globals(info)}){hint}"
        )
    if "risk" not in info:
        return f"{label} is marked unsafe: loading its pickle would import {flagged_globals(info)}"
    calls = _per_file(info.get("code_globals") or info.get("unsafe_globals") or [])
    return (
        f"{label} is marked unsafe (executes code): loading its pickle with "
        f"torch.load(weights_only=False) would run code ({calls}){hint}"
    )


def safety_marker(info: dict[str, Any]) -> str:
    """A short word for listings: empty for a safe (or non-pickle) version."""
    if info.get("safety") == UNKNOWN:
        return "unchecked"
    risk = risk_of(info)
    return {None: "", EXECUTES_CODE: "runs code", UNSAFE_CLASSES: "unsafe classes"}[risk]


def summarize(store: Store, manifest: dict[str, Any]) -> dict[str, Any]:
    return analyze(store, manifest)[0]


def tensor_table(store: Store, manifest: dict[str, Any]) -> dict[str, Tensor]:
    return analyze(store, manifest)[1]
