"""GGUF (llama.cpp, ggml), versions 2 and 3, little-endian: ``GGUF``, a uint32 version, uint64
tensor and metadata counts, the metadata key/values, one info per tensor (name, dimensions,
ggml type, offset), padding to ``general.alignment`` (32 by default), then the tensor data.

The header and each tensor's bytes are spans of their own. A tensor's length comes from its
ggml type (elements per block, bytes per block); a type this module does not know reaches
the next tensor (or the end of the file). Shapes are listed as the header gives them, ggml's
order (innermost dimension first). Quantized tensors are compressed as bytes (item size 1,
no byte grouping): their blocks mix scales and packed integers, so planes would not line up.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import IO

from .. import codec
from ._base import Cursor, Horizon, Malformed, Read, Span, Stored, Tensor, file_reader, numel

NAME = "gguf"
MAX_COUNT = 1 << 20  # tensors, metadata entries
MAX_NAME = 1 << 16
MAX_DIMS = 8
MAX_DEPTH = 4  # arrays of arrays
MAX_ITEMS = 1 << 24  # strings and arrays inside metadata arrays, over the whole header
DEFAULT_ALIGNMENT = 32

# ggml type id -> (name, elements per block, bytes per block)
TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 40),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17),
}
PLAIN = {
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "F64": "float64",
    "I8": "int8",
    "I16": "int16",
    "I32": "int32",
    "I64": "int64",
}
# metadata value type -> size of one value (8: string, 9: array are read apart)
_SCALAR = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY, _UINT32 = 8, 9, 4


@dataclass
class Info:
    name: str
    dims: list[int]
    dtype: str
    start: int
    length: int


def detect(head: bytes) -> bool:
    return head[:4] == b"GGUF" and head[4:8] in (b"\x02\0\0\0", b"\x03\0\0\0")


def dtype_of(ggml_type: int) -> str:
    """``float32``... for plain types, the ggml name (``Q4_K``) for quantized ones."""
    known = TYPES.get(ggml_type)
    if known is None:
        return f"ggml_type_{ggml_type}"
    return PLAIN.get(known[0], known[0])


def quantized(dtype: str) -> bool:
    return dtype not in PLAIN.values()


def _u32(c: Cursor) -> int:
    return int(struct.unpack("<I", c.take(4))[0])


def _u64(c: Cursor) -> int:
    return int(struct.unpack("<Q", c.take(8))[0])


def _string(c: Cursor, keep: bool) -> str:
    n = _u64(c)
    if not keep:
        c.skip(n)
        return ""
    if n > MAX_NAME:
        raise Malformed("a name is too long")
    return c.take(n).decode("utf-8", "replace")


def _skip_value(c: Cursor, kind: int, budget: list[int], depth: int = 0) -> None:
    """Skip one metadata value; ``budget`` counts down the strings and arrays inside arrays
    that may still be walked one by one (a vocabulary), so a forged count costs no time."""
    if kind in _SCALAR:
        c.skip(_SCALAR[kind])
    elif kind == _STRING:
        _string(c, keep=False)
    elif kind == _ARRAY and depth < MAX_DEPTH:
        item, count = _u32(c), _u64(c)
        if item in _SCALAR:
            c.skip(count * _SCALAR[item])
            return
        budget[0] -= count
        if budget[0] < 0 or count > c.end - c.pos:
            raise Malformed("an array is longer than the file or than any vocabulary")
        for _ in range(count):
            _skip_value(c, item, budget, depth + 1)
    else:
        raise Malformed(f"unknown metadata type {kind}")


def parse(read: Read, size: int, horizon: Horizon | None = None) -> list[Info]:
    """The tensor infos with each tensor's place in the file; Malformed if they do not add
    up. ``horizon``: a stored file's (see Cursor)."""
    c = Cursor(read, 0, size, horizon)
    if c.take(4) != b"GGUF" or _u32(c) not in (2, 3):
        raise Malformed("not GGUF version 2 or 3")
    n_tensors, n_kv = _u64(c), _u64(c)
    if n_tensors > MAX_COUNT or n_kv > MAX_COUNT:
        raise Malformed("too many tensors or metadata entries")
    alignment = DEFAULT_ALIGNMENT
    budget = [MAX_ITEMS]
    for _ in range(n_kv):
        key = _string(c, keep=True)
        kind = _u32(c)
        if key == "general.alignment" and kind == _UINT32:
            alignment = _u32(c)
            if not 0 < alignment <= 1 << 20:
                raise Malformed("a bad alignment")
        else:
            _skip_value(c, kind, budget)
    raw: list[tuple[str, list[int], int, int]] = []
    for _ in range(n_tensors):
        name = _string(c, keep=True)
        n_dims = _u32(c)
        if n_dims > MAX_DIMS:
            raise Malformed("too many dimensions")
        dims = [_u64(c) for _ in range(n_dims)]
        raw.append((name, dims, _u32(c), _u64(c)))
    data = -(-c.pos // alignment) * alignment
    if len({r[0] for r in raw}) != len(raw):
        raise Malformed("two tensors share a name")
    ends = sorted({data + offset for *_r, offset in raw} | {size})
    infos = []
    for name, dims, ggml_type, offset in raw:
        start = data + offset
        known = TYPES.get(ggml_type)
        if known is None:
            length = next(e for e in ends if e > start) - start if start < size else 0
        else:
            _n, block, block_bytes = known
            if dims and dims[0] % block:
                raise Malformed(f"{name}: rows are not whole blocks")
            length = numel(dims) // block * block_bytes
        if start + length > size:
            raise Malformed(f"{name} lies past the end of the file")
        infos.append(Info(name, dims, dtype_of(ggml_type), start, length))
    return infos


def spans(f: IO[bytes], size: int) -> tuple[str, list[Span] | None]:
    try:
        infos = parse(file_reader(f), size)
    except (Malformed, struct.error):
        return NAME, None
    return NAME, [(i.start, i.length, i.name) for i in infos]


def tensor_table(stored: Stored, size: int) -> dict[str, Tensor]:
    """Raises Malformed when the stored header does not add up."""
    return {
        i.name: Tensor(i.dtype, i.dims, numel(i.dims), stored.content_key(i.start, i.length))
        for i in parse(stored.read, size, stored.horizon)
    }


def itemsize(dtype: str) -> int | None:
    """Plain types by their element size; quantized blocks as bytes (1)."""
    if not quantized(dtype):
        return codec.itemsize_of(dtype)
    return 1 if not dtype.startswith("ggml_type_") else None


def span_itemsizes(read: Read, size: int) -> dict[str, int]:
    widths = {}
    for i in parse(read, size):
        width = itemsize(i.dtype)
        if width:
            widths[i.name] = width
    return widths


def quantization(table: dict[str, Tensor]) -> list[str]:
    """The quantized ggml types a file uses, for its ``inspect`` summary."""
    return sorted({t.dtype for t in table.values() if quantized(t.dtype)})
