"""Lossless encodings of stored objects: byte-grouped floats, then zstd.

An object's id is the XXH3-128 of its *raw* bytes; the encoding is recorded beside the object
and never changes what the id means. Every encoding names one byte layout, and the names are
part of the on-disk format, so they never change meaning:

- ``raw``: the bytes as they are.
- ``zstd``: one zstd frame of the bytes (elements of one byte: int8, uint8, bool, float8).
- ``shuffleN+zstd`` for N in 2, 4, 8: the bytes are grouped by position inside each N-byte
  element (every element's byte 0, then every byte 1, ...; a byte shuffle with type size N),
  the ``len % N`` trailing bytes follow as they are, and the whole is one zstd frame that
  records its decoded size. The sign/exponent bytes of floats sit together and compress well.

Only a caller that knows the dtype (from the format's tensor table) passes an item size; with
none, nothing is compressed, never guessed. A result that is not smaller than the input is
kept ``raw``.

Decoding trusts nothing it reads: the frame must declare exactly the expected size before any
allocation, extra or missing bytes are refused, and ``decode_verified`` checks the result
against the object id.
"""

from __future__ import annotations

import threading

import zstandard

from modelreg.errors import CorruptObjectError
from modelreg.hashing import oid_of

RAW = "raw"
ZSTD = "zstd"
SHUFFLE_WIDTHS = (2, 4, 8)
ENCODINGS = (RAW, ZSTD, *(f"shuffle{n}+zstd" for n in SHUFFLE_WIDTHS))
NUMPY_ABOVE = 1 << 20  # smaller objects regroup in pure Python: no numpy import for them
LEVEL = 1  # measured in benchmarks/compression.py: levels 2-3 are slower and no smaller

# The width of a dtype's byte planes: its element size, or the size of one component for
# complex numbers (a complex64 is two float32s). Names as modelreg records them.
_ITEMSIZE = {
    **dict.fromkeys(("bool", "uint8", "int8", "quint8", "qint8", "quint4x2", "quint2x4"), 1),
    **dict.fromkeys(("bits8", "bits1x8", "bits2x4", "bits4x2", "float4_e2m1fn_x2"), 1),
    **dict.fromkeys(
        ("float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu"),
        1,
    ),
    **dict.fromkeys(("float16", "bfloat16", "int16", "uint16", "bits16", "complex32"), 2),
    **dict.fromkeys(("float32", "int32", "uint32", "qint32", "complex64"), 4),
    **dict.fromkeys(("float64", "int64", "uint64", "complex128"), 8),
}

_local = threading.local()  # zstd contexts are reused, but never shared between threads


def itemsize_of(dtype: str) -> int | None:
    """The byte-plane width for a dtype name, or None when modelreg does not know it."""
    return _ITEMSIZE.get(dtype.removeprefix("torch."))


def encode(data: bytes | memoryview, itemsize: int | None) -> tuple[str, bytes]:
    """Return (encoding, stored bytes): the smallest of raw and the encoding for ``itemsize``."""
    raw = bytes(data)
    encoding = _encoding_for(itemsize)
    if encoding == RAW or not raw:
        return RAW, raw
    width = _width(encoding)
    stored = _compressor().compress(_shuffle(raw, width) if width > 1 else raw)
    if len(stored) >= len(raw):
        return RAW, raw
    return encoding, stored


def decode(encoding: str, stored: bytes | memoryview, size: int) -> bytes:
    """The raw bytes of an object stored as ``encoding``, refused unless exactly ``size`` long."""
    if size < 0:
        raise CorruptObjectError(f"object size {size} is negative")
    width = _check(encoding, stored, size)
    if encoding == RAW:
        return bytes(stored)
    try:
        plain = _decompressor().decompress(stored, max_output_size=size, allow_extra_data=False)
    except zstandard.ZstdError as e:
        raise CorruptObjectError(f"{encoding} object does not decompress: {e}") from e
    if len(plain) != size:
        raise CorruptObjectError(f"{encoding} object decodes to {len(plain)} bytes, not {size}")
    return _unshuffle(plain, width) if width > 1 else plain


def _check(encoding: str, stored: bytes | memoryview, size: int) -> int:
    """The byte-plane width, once the stored bytes are known to hold exactly ``size`` bytes:
    a raw object's length, a frame's declared size. Checked before decompressing: zstd would
    allocate whatever the header declares."""
    if encoding == RAW:
        if len(stored) != size:
            raise CorruptObjectError(f"raw object holds {len(stored)} bytes, expected {size}")
        return 1
    width = _width(encoding)
    try:
        declared = zstandard.frame_content_size(stored)
    except zstandard.ZstdError as e:
        raise CorruptObjectError(f"{encoding} object has no valid zstd frame header") from e
    if declared != size:
        what = "no size" if declared < 0 else f"{declared} bytes"
        raise CorruptObjectError(f"{encoding} object declares {what}, expected {size}")
    return width


def decode_into(
    encoding: str, stored: bytes | memoryview, out: bytearray, size: int, scratch: bytearray
) -> None:
    """Decode into ``out[:size]`` without allocating (``scratch``, at least ``size`` long,
    holds the byte planes): what a checkout uses, piece after piece, into reused buffers.
    The frame must declare exactly ``size``; the caller checks the result against the id
    (bytes after the frame are not looked at here)."""
    width = _check(encoding, stored, size)
    if encoding == RAW:
        out[:size] = stored
        return
    target = memoryview(scratch if width > 1 else out)[:size]
    got = 0
    try:
        with _decompressor().stream_reader(stored, read_across_frames=False) as reader:
            while got < size:
                n = reader.readinto(target[got:])
                if not n:
                    break
                got += n
    except zstandard.ZstdError as e:
        raise CorruptObjectError(f"{encoding} object does not decompress: {e}") from e
    finally:
        target.release()
    if got != size:
        raise CorruptObjectError(f"{encoding} object decodes to {got} bytes, not {size}")
    if width > 1:
        _regroup(scratch, out, size, width)


def decode_verified(encoding: str, stored: bytes | memoryview, size: int, oid: str) -> bytes:
    """Decode, then check the bytes against the object id, which names the raw bytes."""
    plain = decode(encoding, stored, size)
    if oid_of(plain) != oid:
        raise CorruptObjectError(f"object {oid} decodes ({encoding}) to bytes of another hash")
    return plain


def _encoding_for(itemsize: int | None) -> str:
    if itemsize is None:
        return RAW
    if itemsize < 1:
        raise ValueError(f"item size must be positive, not {itemsize}")
    if itemsize == 1:
        return ZSTD
    return f"shuffle{itemsize}+zstd" if itemsize in SHUFFLE_WIDTHS else RAW


def _width(encoding: str) -> int:
    if encoding == ZSTD:
        return 1
    if encoding not in ENCODINGS:
        raise CorruptObjectError(f"unknown encoding {encoding!r}; known: {', '.join(ENCODINGS)}")
    return int(encoding[len("shuffle") : -len("+zstd")])


def _shuffle(raw: bytes, width: int) -> bytes:
    whole = len(raw) - len(raw) % width
    return b"".join([*(raw[i:whole:width] for i in range(width)), raw[whole:]])


def _unshuffle(grouped: bytes, width: int) -> bytes:
    out = bytearray(len(grouped))
    _regroup(grouped, out, len(grouped), width)
    return bytes(out)


def _regroup(planes: bytes | bytearray, out: bytearray, size: int, width: int) -> None:
    """Put the byte planes in ``planes[:size]`` back in element order into ``out[:size]``.

    Past ``NUMPY_ABOVE`` bytes numpy does it: faster than ``bytearray`` slices and, unlike
    them, it releases the GIL, so that pieces decode in parallel threads. Widths 2 and 4 are
    built as little-endian integers, a plane shifted in at a time (for a 4 MiB piece 3.5 and
    1.5 times as fast as byte-strided copies, which stay faster for width 8)."""
    whole = size - size % width
    plane = whole // width
    if whole >= NUMPY_ABOVE:
        import numpy as np

        src = np.frombuffer(planes, np.uint8, whole).reshape(width, plane)
        if width in (2, 4):
            dst = np.frombuffer(out, f"<u{width}", plane)
            np.copyto(dst, src[width - 1])
            for i in range(width - 2, -1, -1):
                np.left_shift(dst, 8, out=dst)
                np.bitwise_or(dst, src[i], out=dst)
        else:
            dst = np.frombuffer(out, np.uint8, whole).reshape(plane, width)
            for i in range(width):
                dst[:, i] = src[i]
        del dst, src  # a buffer may be reused (resized) only once no array holds it
    else:
        view = memoryview(planes)
        for i in range(width):
            out[i:whole:width] = view[i * plane : (i + 1) * plane]
        view.release()
    out[whole:size] = planes[whole:size]


def _compressor() -> zstandard.ZstdCompressor:
    c = getattr(_local, "compressor", None)
    if c is None:
        c = _local.compressor = zstandard.ZstdCompressor(level=LEVEL, write_content_size=True)
    return c


def _decompressor() -> zstandard.ZstdDecompressor:
    d = getattr(_local, "decompressor", None)
    if d is None:
        d = _local.decompressor = zstandard.ZstdDecompressor()
    return d
