"""Which item size (byte-plane width for codec.py) each named span of a model file has.

Only a format's own tensor table is believed: the pickle's storage records of a torch zip
checkpoint, the header of a safetensors or GGUF file, an ONNX model's initializers (the dtype
its model's table gave each span's name, ``<dtype>:<tensor>``, as the data file of a folder
model has no table of its own). A span whose dtype is unknown, or that two
tensors read with different dtypes, gets no width and is never compressed (never guessed).
Widths only choose an encoding; a wrong one would cost size, never bytes, since every
decode is verified against the object id.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable

from . import codec, pickle_scan
from .formats import Malformed, gguf, onnx

Read = Callable[[int, int], bytes]  # (start, length) -> bytes of the file
NamedSpan = tuple[str, int, int]  # name, start, length

_SAFETENSORS_WIDTH = {
    **dict.fromkeys(("F64", "I64", "U64"), 8),
    **dict.fromkeys(("F32", "I32", "U32"), 4),
    **dict.fromkeys(("F16", "BF16", "I16", "U16"), 2),
    **dict.fromkeys(("I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2"), 1),
}
PICKLE_MAX = 64 << 20


def span_itemsizes(fmt: str | None, spans: list[NamedSpan], read: Read) -> dict[str, int]:
    """Span name -> item size, for the spans whose dtype the format states."""
    try:
        if fmt == "torch-zip":
            return _torch_zip(spans, read)
        if fmt == "safetensors":
            return _safetensors(spans, read)
        # the header lies before every tensor: the last span's end bounds it
        end = max((s + n for _name, s, n in spans), default=0)
        if fmt == gguf.NAME:
            return gguf.span_itemsizes(read, end)
        if fmt in (onnx.NAME, onnx.DATA):
            return onnx.span_itemsizes([name for name, _s, _n in spans])
    except (pickle_scan.ScanError, ValueError, TypeError, KeyError, struct.error, Malformed):
        return {}
    return {}


def _torch_zip(spans: list[NamedSpan], read: Read) -> dict[str, int]:
    pickles = [(n, s, ln) for n, s, ln in spans if n == "data.pkl" or n.endswith("/data.pkl")]
    if len(pickles) != 1 or pickles[0][2] > PICKLE_MAX:
        return {}
    name, start, length = pickles[0]
    scan, _ = pickle_scan.scan(read(start, length))
    prefix = name[: -len("data.pkl")]
    widths: dict[str, int] = {}
    clash: set[str] = set()
    for t in pickle_scan.tensors(scan.root):
        member = f"{prefix}data/{t.storage}"
        width = codec.itemsize_of(t.dtype)
        if width is None or widths.get(member, width) != width:
            clash.add(member)
        else:
            widths[member] = width
    return {m: w for m, w in widths.items() if m not in clash}


def _safetensors(spans: list[NamedSpan], read: Read) -> dict[str, int]:
    (n,) = struct.unpack("<Q", read(0, 8))
    if n > 100 << 20:
        return {}
    header = json.loads(read(8, n))
    if not isinstance(header, dict):
        return {}
    named = {name for name, _s, _n in spans}
    widths = {}
    for name, entry in header.items():
        if name != "__metadata__" and name in named and isinstance(entry, dict):
            width = _SAFETENSORS_WIDTH.get(str(entry.get("dtype")))
            if width is not None:
                widths[name] = width
    return widths


def piece_itemsizes(
    spans: list[NamedSpan], widths: dict[str, int], pieces: list[tuple[int, int]]
) -> list[int | None]:
    """For each (offset, length) piece of the file, the width of the span holding it whole."""
    located = sorted((s, s + ln, widths.get(name)) for name, s, ln in spans)
    out: list[int | None] = []
    i = 0
    for start, length in pieces:
        while i < len(located) and located[i][1] <= start:
            i += 1
        if i < len(located) and located[i][0] <= start and start + length <= located[i][1]:
            out.append(located[i][2])
        else:
            out.append(None)
    return out
