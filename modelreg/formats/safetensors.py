"""safetensors: an 8-byte little-endian header length, a JSON header (name -> dtype, shape,
data_offsets), then the tensors' bytes. No pickle, so nothing in it can run.

The header and each tensor are spans of their own.
"""

from __future__ import annotations

import json
import struct
from typing import IO, Any

from ._base import UNKNOWN_KEY, Malformed, Span, Stored, Tensor, numel

NAME = "safetensors"
HEADER_MAX = 100 << 20

DTYPES = {
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


def detect(head: bytes) -> bool:
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n <= HEADER_MAX and head[8:].lstrip()[:1] in (b"{", b"")


def spans(f: IO[bytes], size: int) -> tuple[str, list[Span] | None]:
    f.seek(0)
    (header_len,) = struct.unpack("<Q", f.read(8))
    if not 2 <= header_len <= min(size - 8, HEADER_MAX):
        return NAME, None
    raw = f.read(header_len)
    if not raw.lstrip().startswith(b"{"):
        return NAME, None
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return NAME, None
    if not isinstance(header, dict):
        return NAME, None
    base = 8 + header_len
    found: list[Span] = [(0, base, None)]
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            begin, end = entry["data_offsets"]
        except (TypeError, KeyError, ValueError):
            return NAME, None
        if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end):
            return NAME, None
        found.append((base + begin, end - begin, str(name)))
    return NAME, found


def tensor_table(stored: Stored, size: int) -> dict[str, Tensor]:
    """Raises Malformed when the stored header does not add up."""
    (n,) = struct.unpack("<Q", stored.read(0, 8).rjust(8, b"\0"))
    if not 2 <= n <= min(size - 8, HEADER_MAX):
        raise Malformed("a header length beyond the file")
    try:
        header = json.loads(stored.read(8, n))
    except (UnicodeDecodeError, ValueError):
        raise Malformed("a header that is not JSON") from None
    if not isinstance(header, dict) or not all(isinstance(e, dict) for e in header.values()):
        raise Malformed("a header that is not a mapping of tensors")
    table: dict[str, Tensor] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            shape = [int(d) for d in entry.get("shape", [])]
        except (TypeError, ValueError):
            raise Malformed(f"{name}: its shape is not a list of integers") from None
        where = stored.span(name)
        key = stored.content_key(*where) if where else UNKNOWN_KEY
        dtype = DTYPES.get(entry.get("dtype"), str(entry.get("dtype")))
        table[name] = Tensor(dtype, shape, numel(shape), key)
    return table


def load(data: bytes) -> Any:
    from safetensors.torch import load as load_bytes

    return load_bytes(data)
