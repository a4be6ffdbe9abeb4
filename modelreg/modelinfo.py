"""What is inside a stored model file, read from its manifest and chunks, never executed.

``summarize`` gives what a version record keeps (format, tensor count, parameter count, dtypes,
safety verdict); ``tensor_table`` gives each tensor's dtype, shape and a content key, which is
what ``diff`` compares. Both read only the pieces they need (the pickle, the safetensors
header) from the object store.
"""

from __future__ import annotations

import base64
import bisect
import json
import struct
from dataclasses import dataclass
from typing import Any

from . import pickle_scan
from .hashing import oid_of
from .objects import ObjectStore

SAFE, UNSAFE, UNKNOWN = "safe", "unsafe", "unknown"


def _part_bytes(store: ObjectStore, part: dict[str, Any]) -> bytes:
    return base64.b64decode(part["b"]) if "b" in part else store.get(part["o"])


def _part_len(part: dict[str, Any]) -> int:
    return int(part["n"]) if "o" in part else len(base64.b64decode(part["b"]))


class StoredFile:
    """Random access to a stored file's bytes through its manifest."""

    def __init__(self, store: ObjectStore, manifest: dict[str, Any]) -> None:
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

    def read(self, start: int, length: int) -> bytes:
        out = bytearray()
        end = start + length
        for pos, n, part in self.offsets:
            if pos + n <= start or pos >= end:
                continue
            data = _part_bytes(self.store, part)
            out += data[max(0, start - pos) : min(n, end - pos)]
        return bytes(out)

    def span(self, name: str) -> tuple[int, int] | None:
        return self.spans.get(name)

    def content_key(self, start: int, length: int) -> str:
        """An id of the bytes in [start, start+length) built from the part ids alone."""
        first = bisect.bisect_right(self.starts, start) - 1
        ids = []
        for pos, n, part in self.offsets[max(first, 0) :]:
            if pos >= start + length:
                break
            if pos + n > start:
                ids.append(part.get("o") or part["b"])
        return oid_of("|".join(ids).encode())


@dataclass
class Tensor:
    dtype: str
    shape: list[int]
    numel: int
    key: str  # content key of the bytes that hold it


def _pickle_name(f: StoredFile) -> str | None:
    for name, _s, _n in f.manifest.get("spans", []):
        if name == "data.pkl" or name.endswith("/data.pkl"):
            return str(name)
    return None


def _torch_zip(f: StoredFile) -> tuple[dict[str, Any], dict[str, Tensor]]:
    pkl = _pickle_name(f)
    names = [n for n, _s, _l in f.manifest.get("spans", [])]
    info: dict[str, Any] = {"format": "torch-zip"}
    if any("/code/" in n or n.endswith("constants.pkl") for n in names):
        info["format"] = "torchscript"
    if pkl is None:
        info["safety"] = UNKNOWN
        return info, {}
    start, length = f.span(pkl) or (0, 0)
    try:
        scan, _ = pickle_scan.scan(f.read(start, length))
    except pickle_scan.ScanError:
        info.update(safety=UNKNOWN, note="the pickle could not be read")
        return info, {}
    if info["format"] == "torchscript":
        info.update(safety=UNKNOWN, note="a TorchScript archive holds code; it was not checked")
    else:
        info["safety"] = SAFE if scan.safe else UNSAFE
    if scan.unsafe_globals:
        info["unsafe_globals"] = scan.unsafe_globals
    prefix = pkl[: -len("data.pkl")]
    table: dict[str, Tensor] = {}
    for t in pickle_scan.tensors(scan.root):
        where = f.span(f"{prefix}data/{t.storage}")
        key = f.content_key(*where) if where else "?"
        table[t.name] = Tensor(t.dtype, list(t.shape), t.numel, key)
    return info, table


_ST_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
}


def _safetensors(f: StoredFile) -> tuple[dict[str, Any], dict[str, Tensor]]:
    (n,) = struct.unpack("<Q", f.read(0, 8))
    header = json.loads(f.read(8, n))
    table: dict[str, Tensor] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        shape = [int(d) for d in entry.get("shape", [])]
        numel = 1
        for d in shape:
            numel *= d
        where = f.span(name)
        key = f.content_key(*where) if where else "?"
        table[name] = Tensor(
            _ST_DTYPES.get(entry.get("dtype"), str(entry.get("dtype"))), shape, numel, key
        )
    return {"format": "safetensors", "safety": SAFE}, table


def _legacy_pickle(f: StoredFile) -> dict[str, Any]:
    """A pre-zip torch.save file or a plain pickle: a run of pickles; scan what we can."""
    data = f.read(0, min(f.manifest["size"], 64 << 20))
    unsafe: set[str] = set()
    pos = 0
    for _ in range(5):
        if pos >= len(data) or data[pos] != 0x80:
            break
        try:
            scan, used = pickle_scan.scan(data[pos:])
        except pickle_scan.ScanError:
            return {"format": "pickle", "safety": UNKNOWN, "note": "the pickle could not be read"}
        unsafe.update(scan.unsafe_globals)
        pos += used
    info: dict[str, Any] = {"format": "pickle", "safety": UNSAFE if unsafe else SAFE}
    if unsafe:
        info["unsafe_globals"] = sorted(unsafe)
    return info


def analyze(
    store: ObjectStore, manifest: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    f = StoredFile(store, manifest)
    fmt = manifest.get("format")
    if fmt == "torch-zip":
        info, table = _torch_zip(f)
    elif fmt == "safetensors":
        info, table = _safetensors(f)
    elif manifest["size"] and f.read(0, 1) == b"\x80":
        info, table = _legacy_pickle(f), {}
    else:
        return {"format": fmt or "raw", "safety": "n/a"}, {}
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
    flagged = {rel: s["unsafe_globals"] for rel, s in models.items() if s.get("unsafe_globals")}
    if flagged:
        out["unsafe_globals"] = flagged
    return out


def flagged_globals(info: dict[str, Any]) -> str:
    """The globals that made a summary unsafe, as one line (per file for a folder)."""
    flagged = info.get("unsafe_globals") or []
    return ", ".join(flagged) if isinstance(flagged, list) else str(flagged)


def summarize(store: ObjectStore, manifest: dict[str, Any]) -> dict[str, Any]:
    return analyze(store, manifest)[0]


def tensor_table(store: ObjectStore, manifest: dict[str, Any]) -> dict[str, Tensor]:
    return analyze(store, manifest)[1]
