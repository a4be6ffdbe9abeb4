"""ONNX: a protobuf ``ModelProto`` whose ``graph.initializer`` entries (``TensorProto``) are the
weights. Each holds its bytes inline (``raw_data``, or a packed ``float_data``/``int64_data``...
field) or names an *external data* file beside the model (``location``, ``offset``,
``length``), as ``onnx.save(..., save_as_external_data=True)`` writes ``model.onnx.data``.

Read with a small protobuf wire-format reader, not the onnx package: only the fields on the
path ModelProto.graph (7) -> GraphProto.initializer (5) -> TensorProto are decoded; everything
else (nodes, sparse initializers, functions, tensors inside node attributes) is skipped by its
length. Each inline tensor's bytes are a span of their own. The spans of an external data file
come from the model that names it (``external_plans``), so a directory model holding
``model.onnx`` and ``model.onnx.data`` is cut at each tensor of the data file. Spans are named
``<dtype>:<tensor>``: that is how ``gc`` learns a data file's item sizes from its manifest
alone (it has no table of its own); the tensor table itself is read from the model again.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .. import codec
from ._base import (
    UNKNOWN_KEY,
    Cursor,
    Horizon,
    Malformed,
    Planner,
    Read,
    Span,
    Stored,
    Tensor,
    file_reader,
    fill_gaps,
    numel,
)

NAME = "onnx"
DATA = "onnx-data"  # an external data file, cut at the tensors its model names
MAX_COUNT = 1 << 20  # initializers
MAX_STRING = 1 << 16  # a name, an external-data key or value
MAX_DIMS = 64

# TensorProto.DataType -> dtype name as modelreg records it
DTYPES = {
    1: "float32",
    2: "uint8",
    3: "int8",
    4: "uint16",
    5: "int16",
    6: "int32",
    7: "int64",
    8: "string",
    9: "bool",
    10: "float16",
    11: "float64",
    12: "uint32",
    13: "uint64",
    14: "complex64",
    15: "complex128",
    16: "bfloat16",
    17: "float8_e4m3fn",
    18: "float8_e4m3fnuz",
    19: "float8_e5m2",
    20: "float8_e5m2fnuz",
    21: "uint4",
    22: "int4",
    23: "float4_e2m1",
    24: "float8_e8m0fnu",
    25: "uint2",
    26: "int2",
}
_BITS = {"uint4": 4, "int4": 4, "float4_e2m1": 4, "uint2": 2, "int2": 2}  # packed in bytes
_BYTES = {"complex64": 8, "complex128": 16}
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_GRAPH, _INITIALIZER = 7, 5
_DIMS, _DATA_TYPE, _NAME, _RAW, _EXTERNAL, _LOCATION = 1, 2, 8, 9, 13, 14
_FIXED = frozenset({4, 10})  # float_data, double_data: packed little-endian like raw_data
_VARINTS = frozenset({5, 7, 11})  # int32_data, int64_data, uint64_data: packed varints
_EXTERNAL_LOCATION = 1


@dataclass
class Init:
    name: str = ""
    dims: list[int] = field(default_factory=list)
    dtype: str = "undefined"
    inline: tuple[int, int] | None = None  # (start, length) of its bytes in this file
    varints: bool = False  # its inline bytes are varints, not elements of its dtype
    external: dict[str, str] = field(default_factory=dict)
    location: int = 0

    def nbytes(self) -> int | None:
        """The size of its data as the dtype and shape give it, or None for strings."""
        n = numel(self.dims)
        if self.dtype in _BITS:
            return -(-n * _BITS[self.dtype] // 8)
        width = _BYTES.get(self.dtype) or codec.itemsize_of(self.dtype)
        return None if width is None else n * width


def detect(head: bytes) -> bool:
    """ModelProto starts with its ir_version (field 1, a small varint), then another field."""
    return len(head) >= 3 and head[0] == 0x08 and 1 <= head[1] < 0x80 and head[2] & 7 in (0, 2)


def _varint(c: Cursor) -> int:
    value = shift = 0
    while shift < 70:
        byte = c.take(1)[0]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value
        shift += 7
    raise Malformed("a varint is too long")


def _walk(c: Cursor, end: int, visit: Callable[[int, int, int], None]) -> None:
    """Call ``visit(field, wire type, value)`` for each field of a message ending at ``end``;
    for a LEN field ``value`` is its length and the cursor stands at its payload. What
    ``visit`` leaves unread is skipped."""
    if end > c.end:
        raise Malformed("a message runs past its parent")
    while c.pos < end:
        tag = _varint(c)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise Malformed("field number 0")
        if wire == _VARINT:
            visit(number, wire, _varint(c))
        elif wire in (_I64, _I32):
            c.skip(8 if wire == _I64 else 4)
        elif wire == _LEN:
            length = _varint(c)
            stop = c.pos + length
            if stop > end:
                raise Malformed("a field runs past its message")
            visit(number, wire, length)
            if c.pos > stop:
                raise Malformed("a field was read past its end")
            c.skip(stop - c.pos)
        else:
            raise Malformed(f"wire type {wire} is not read")
    if c.pos != end:
        raise Malformed("a message ends inside a field")


def _string(c: Cursor, length: int) -> str:
    if length > MAX_STRING:
        raise Malformed("a string is too long")
    return c.take(length).decode("utf-8", "replace")


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _tensor(c: Cursor, end: int) -> Init:
    t = Init()

    def visit(number: int, wire: int, value: int) -> None:
        if number == _DIMS and wire == _VARINT:
            t.dims.append(_signed(value))
        elif number == _DIMS:
            stop = c.pos + value
            while c.pos < stop and len(t.dims) <= MAX_DIMS:
                t.dims.append(_signed(_varint(c)))
        elif number == _DATA_TYPE and wire == _VARINT:
            t.dtype = DTYPES.get(value, f"onnx_type_{value}")
        elif number == _NAME and wire == _LEN:
            t.name = _string(c, value)
        elif (number == _RAW or number in _FIXED or number in _VARINTS) and wire == _LEN:
            t.inline = (c.pos, value)
            t.varints = number in _VARINTS
        elif number == _EXTERNAL and wire == _LEN:
            entry: dict[int, str] = {}

            def pair(n: int, w: int, v: int) -> None:
                if w == _LEN and n in (1, 2):
                    entry[n] = _string(c, v)

            _walk(c, c.pos + value, pair)
            t.external[entry.get(1, "")] = entry.get(2, "")
        elif number == _LOCATION and wire == _VARINT:
            t.location = value
        if len(t.dims) > MAX_DIMS or any(d < 0 for d in t.dims):
            raise Malformed("bad dimensions")

    _walk(c, end, visit)
    return t


def parse(read: Read, size: int, horizon: Horizon | None = None) -> list[Init]:
    """The graph's initializers; Malformed when the file is not a ModelProto with a graph.
    ``horizon``: a stored file's, so that no tensor is read ahead into (see Cursor)."""
    c = Cursor(read, 0, size, horizon)
    found: list[Init] = []
    graphs = 0

    def graph(number: int, wire: int, value: int) -> None:
        if number == _INITIALIZER and wire == _LEN:
            if len(found) >= MAX_COUNT:
                raise Malformed("too many initializers")
            found.append(_tensor(c, c.pos + value))

    def model(number: int, wire: int, value: int) -> None:
        nonlocal graphs
        if number == _GRAPH and wire == _LEN:
            graphs += 1
            _walk(c, c.pos + value, graph)

    _walk(c, size, model)
    if not graphs:
        raise Malformed("no graph")
    if len({t.name for t in found}) != len(found):
        raise Malformed("two initializers share a name")
    return found


def _external(t: Init) -> tuple[str, int, int] | None:
    """(location, offset, length) of an external tensor, or None when it is not one."""
    if t.location != _EXTERNAL_LOCATION:
        return None
    try:
        offset = int(t.external.get("offset") or 0)
        length = int(t.external["length"]) if "length" in t.external else t.nbytes()
    except ValueError:
        raise Malformed(f"{t.name}: a bad external offset or length") from None
    if length is None or offset < 0 or length < 0 or not t.external.get("location"):
        raise Malformed(f"{t.name}: its external data cannot be located")
    return t.external["location"], offset, length


def spans(f: IO[bytes], size: int) -> tuple[str, list[Span] | None]:
    try:
        inits = parse(file_reader(f), size)
    except Malformed:
        return NAME, None
    return NAME, [(*t.inline, span_name(t)) for t in inits if t.inline and t.location == 0]


def tensor_table(
    stored: Stored, size: int, sibling: Callable[[str], Stored | None] | None = None
) -> tuple[dict[str, Tensor], list[str]]:
    """The tensors, and the files the external ones live in. Inline tensors are keyed by
    their bytes here, external ones by their bytes in the file ``sibling(location)`` gives
    (a folder model), else unknown. Raises Malformed."""
    table = {}
    inits = parse(stored.read, size, stored.horizon)
    for t in inits:
        key = UNKNOWN_KEY
        if t.location == 0 and t.inline:
            key = stored.content_key(*t.inline)
        elif t.location == _EXTERNAL_LOCATION and sibling is not None:
            try:
                where = _external(t)
            except Malformed:
                where = None
            other = sibling(where[0]) if where else None
            if where and other is not None:
                key = other.content_key(where[1], where[2])
        table[t.name] = Tensor(t.dtype, t.dims, numel(t.dims), key)
    located = {t.external.get("location", "") for t in inits if t.location == _EXTERNAL_LOCATION}
    return table, sorted(located)


def resolve(model_rel: str, location: str) -> str | None:
    """The folder-relative path an external location names, or None when it leaves the
    folder (absolute, ``..``) -- such a file is never part of the model's directory."""
    if not location or location.startswith("/") or "\\" in location or ":" in location:
        return None
    rel = posixpath.normpath(posixpath.join(posixpath.dirname(model_rel), location))
    return None if rel.startswith("../") or rel in ("..", ".") else rel


def _width(dtype: str) -> int | None:
    return 1 if dtype in _BITS else codec.itemsize_of(dtype)


def span_name(t: Init) -> str:
    return f"{'varint' if t.varints else t.dtype}:{t.name}"


def span_itemsizes(names: list[str]) -> dict[str, int]:
    """Item sizes of an ONNX model's (or data file's) spans, from the dtype in each name."""
    widths = {}
    for name in names:
        width = _width(name.partition(":")[0])
        if width:
            widths[name] = width
    return widths


MODEL_MAX = 2 << 30  # protobuf's own limit: a larger .onnx is not read for external data


def external_plans(listed: list[tuple[str, Path]]) -> dict[str, Planner]:
    """Planners for the external data files the folder's ``*.onnx`` models name: each cut at
    the tensors stored in it. A model that cannot be read plans nothing."""
    present = {rel for rel, _p in listed}
    found: dict[str, set[Span]] = {}
    for rel, path in listed:
        if not rel.endswith(".onnx"):
            continue
        try:
            with open(path, "rb") as f:
                size = path.stat().st_size
                inits = parse(file_reader(f), size) if size <= MODEL_MAX else []
        except (OSError, Malformed):
            continue
        for t in inits:
            try:
                where = _external(t)
            except Malformed:
                continue
            target = resolve(rel, where[0]) if where else None
            if where and target in present and target != rel:
                found.setdefault(target, set()).add((where[1], where[2], span_name(t)))
    return {rel: _data_planner(sorted(spans)) for rel, spans in found.items()}


def _data_planner(named: list[Span]) -> Planner:
    def plan(f: IO[bytes], size: int) -> tuple[str, list[Span] | None]:
        filled = fill_gaps(named, size)
        return (DATA, filled) if filled is not None else ("raw", None)

    return plan
