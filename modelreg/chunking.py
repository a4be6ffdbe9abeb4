"""How a file is cut into chunks.

One small interface: ``plan`` looks at a file's header and returns its format and, for
formats it understands, the *spans* worth keeping apart (each tensor of a torch zip checkpoint
or a safetensors file, with the headers between them). ``pieces`` turns a plan into the byte
pieces to store. Files of any other format are cut by content-defined chunking, so an insert
near the start does not shift every later chunk.

Cutting never changes what is stored: a file is always the concatenation of its pieces, so a
format that is misread only costs dedup, never correctness.
"""

from __future__ import annotations

import json
import struct
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import xxhash

Span = tuple[int, int, "str | None"]  # offset, length, name (None for bytes between tensors)


@dataclass(frozen=True)
class ChunkParams:
    inline_max: int = 4096  # pieces up to this size live inside the manifest, not as files
    split: int = 4 << 20  # a tensor larger than this is cut in pieces of this size
    cdc_min: int = 256 << 10
    cdc_avg_bits: int = 20  # a cut is found every 2**bits bytes on average past cdc_min
    cdc_max: int = 4 << 20

    @classmethod
    def from_config(cls, raw: dict[str, Any]) -> ChunkParams:
        known = {k: int(v) for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def to_config(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def plan(f: IO[bytes], size: int) -> tuple[str, list[Span] | None]:
    """Return (format, spans covering the whole file) or (format, None) for CDC."""
    f.seek(0)
    head = f.read(8)
    f.seek(0)
    spans: list[Span] | None = None
    fmt = "raw"
    if head[:4] == b"PK\x03\x04":
        fmt, spans = _zip_spans(f, size)
    elif len(head) == 8:
        spans = _safetensors_spans(f, size, struct.unpack("<Q", head)[0])
        if spans is not None:
            fmt = "safetensors"
    f.seek(0)
    if spans is None:
        return ("raw" if fmt in ("raw", "zip?") else fmt), None
    return fmt, _fill_gaps(spans, size)


def _zip_spans(f: IO[bytes], size: int) -> tuple[str, list[Span] | None]:
    try:
        infos = zipfile.ZipFile(f).infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return "zip?", None
    spans: list[Span] = []
    for info in infos:
        f.seek(info.header_offset)
        local = f.read(30)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            return "zip?", None
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        start = info.header_offset + 30 + name_len + extra_len
        spans.append((start, info.compress_size, info.filename))
    names = [s[2] for s in spans]
    torch = any(n is not None and (n == "data.pkl" or n.endswith("/data.pkl")) for n in names)
    return ("torch-zip" if torch else "zip"), spans


def _safetensors_spans(f: IO[bytes], size: int, header_len: int) -> list[Span] | None:
    if not 2 <= header_len <= min(size - 8, 100 << 20):
        return None
    f.seek(8)
    raw = f.read(header_len)
    if not raw.lstrip().startswith(b"{"):
        return None
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(header, dict):
        return None
    base = 8 + header_len
    spans: list[Span] = [(0, base, None)]
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            begin, end = entry["data_offsets"]
        except (TypeError, KeyError, ValueError):
            return None
        if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end):
            return None
        spans.append((base + begin, end - begin, str(name)))
    return spans


def _fill_gaps(spans: list[Span], size: int) -> list[Span] | None:
    """Sort named spans, check they do not overlap, and add the bytes between them."""
    out: list[Span] = []
    pos = 0
    for start, length, name in sorted(spans, key=lambda s: s[0]):
        if start < pos or start + length > size:
            return None
        if start > pos:
            out.append((pos, start - pos, None))
        if length:
            out.append((start, length, name))
        pos = start + length
    if pos < size:
        out.append((pos, size - pos, None))
    return out


_buffers = threading.local()


def _buffer(size: int) -> memoryview:
    """This thread's read buffer, kept between files: a fresh one costs a page fault per 4 KiB
    (measured: 9 ms for each ResNet-18 file)."""
    buf: memoryview | None = getattr(_buffers, "buf", None)
    if buf is None or len(buf) != size:
        buf = _buffers.buf = memoryview(bytearray(size))
    return buf


def span_pieces(f: IO[bytes], spans: list[Span], params: ChunkParams) -> Iterator[memoryview]:
    """Read the spans in order; cut a long one into ``params.split``-sized pieces.

    Each piece is a view of one reused buffer, valid only until the next piece is asked for."""
    f.seek(0)
    buf = _buffer(params.split)
    for _start, length, _name in spans:
        while length > 0:
            step = min(length, params.split)
            view = buf[:step]
            got = 0
            while got < step:
                n = f.readinto(view[got:])  # type: ignore[attr-defined]
                if not n:
                    raise EOFError("file shrank while it was being read")
                got += n
            yield view
            length -= step


# --- content-defined chunking -------------------------------------------------------------
# A rolling polynomial hash over a 48-byte window, evaluated for a whole block at once with
# numpy (prefix sums of g[b_j] * M**-j, then rescaled), so the per-byte work happens in C.
# A cut falls after a window whose hash has its top ``cdc_avg_bits`` bits all zero.

_WINDOW = 48
_MULT = 0x9E3779B1
_SCAN = 1 << 20


class _RollingHash:
    def __init__(self) -> None:
        import numpy as np

        self.np = np
        gear = [xxhash.xxh32_intdigest(bytes([b]), seed=0x6D6F64) for b in range(256)]
        self.gear = np.array(gear, dtype=np.uint32)
        n = _SCAN + _WINDOW
        self.pow = self._powers(_MULT, n)
        self.inv_pow = self._powers(pow(_MULT, -1, 1 << 32), n)

    def _powers(self, base: int, n: int) -> Any:
        np = self.np
        a = np.full(n, base, dtype=np.uint32)
        a[0] = 1
        return np.cumprod(a, dtype=np.uint32)

    def cuts(self, window: memoryview, bits: int) -> Any:
        """Positions p (relative to the window's start + _WINDOW) where a cut may fall."""
        np = self.np
        x = np.frombuffer(window, dtype=np.uint8)
        n = len(x)
        t = self.gear[x] * self.inv_pow[:n]
        q = np.zeros(n + 1, dtype=np.uint32)
        np.cumsum(t, dtype=np.uint32, out=q[1:])
        h = (q[_WINDOW:] - q[:-_WINDOW]) * self.pow[_WINDOW - 1 : n]
        return np.flatnonzero((h >> np.uint32(32 - bits)) == 0)


_rolling: _RollingHash | None = None


def _find_cut(buf: bytearray, params: ChunkParams) -> int:
    global _rolling
    if len(buf) <= params.cdc_min:
        return len(buf)
    if _rolling is None:
        _rolling = _RollingHash()
    limit = min(len(buf), params.cdc_max)
    view = memoryview(buf)
    start = params.cdc_min  # first allowed cut position
    while start < limit:
        end = min(limit, start + _SCAN)
        found = _rolling.cuts(view[start - _WINDOW : end], params.cdc_avg_bits)
        if len(found):
            return start + int(found[0])
        start = end
    return limit


def cdc_pieces(f: IO[bytes], params: ChunkParams) -> Iterator[bytes]:
    f.seek(0)
    buf = bytearray()
    at_eof = False
    while True:
        while not at_eof and len(buf) < params.cdc_max:
            block = f.read(params.cdc_max)
            if not block:
                at_eof = True
            buf += block
        if not buf:
            return
        cut = _find_cut(buf, params)
        yield bytes(buf[:cut])
        del buf[:cut]
