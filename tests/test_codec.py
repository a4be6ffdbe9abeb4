"""Encodings of stored objects: lossless for every size, bounded and checked when decoded."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from modelreg import codec
from modelreg.errors import CorruptObjectError
from modelreg.hashing import oid_of


def floats(n_bytes: int, seed: int = 0) -> bytes:
    """Float32 weights, cut to any length (also not a multiple of 4)."""
    values = np.random.default_rng(seed).normal(0, 0.02, n_bytes // 4 + 1).astype(np.float32)
    return values.tobytes()[:n_bytes]


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=5000), itemsize=st.sampled_from([None, 1, 2, 3, 4, 8, 16]))
def test_any_bytes_round_trip(data: bytes, itemsize: int | None) -> None:
    encoding, stored = codec.encode(data, itemsize)
    assert encoding in codec.ENCODINGS
    assert len(stored) <= len(data)
    assert codec.decode(encoding, stored, len(data)) == data


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 70_000), itemsize=st.sampled_from([1, 2, 4, 8]), seed=st.integers(0, 9))
def test_float_like_bytes_round_trip_and_compress(n: int, itemsize: int, seed: int) -> None:
    data = floats(n, seed)
    encoding, stored = codec.encode(memoryview(data), itemsize)
    assert codec.decode(encoding, memoryview(stored), n) == data
    if n >= 4096:
        assert encoding != codec.RAW and len(stored) < n


@pytest.mark.parametrize("n", [0, 1, 3, 7, 4 << 20, (4 << 20) + 1, 64 << 20])
@pytest.mark.parametrize("itemsize", [1, 2, 4, 8])
def test_sizes_round_trip(n: int, itemsize: int) -> None:
    data = floats(n)
    encoding, stored = codec.encode(data, itemsize)
    assert codec.decode_verified(encoding, stored, n, oid_of(data)) == data


def test_encoding_names_follow_the_item_size() -> None:
    data = floats(1 << 16)
    assert codec.encode(data, 4)[0] == "shuffle4+zstd"
    assert codec.encode(data, 2)[0] == "shuffle2+zstd"
    assert codec.encode(data, 8)[0] == "shuffle8+zstd"
    assert codec.encode(bytes(1 << 16), 1)[0] == "zstd"
    assert codec.ENCODINGS == ("raw", "zstd", "shuffle2+zstd", "shuffle4+zstd", "shuffle8+zstd")


def test_shuffle_groups_each_byte_position_before_zstd() -> None:
    data = struct.pack("<3I", 0x04030201, 0x14131211, 0x24232221) + b"\xaa"
    encoding, stored = codec.encode(data * 1000, 4)
    plain = zstandard.ZstdDecompressor().decompress(stored)
    assert encoding == "shuffle4+zstd"
    # byte 0 of every element, then byte 1, ..., then the bytes past the last whole element
    whole = len(data) * 1000 // 4 * 4
    elements = [(data * 1000)[i : i + 4] for i in range(0, whole, 4)]
    assert plain[: len(elements)] == bytes(e[0] for e in elements)
    assert plain[len(elements) : 2 * len(elements)] == bytes(e[1] for e in elements)
    assert plain[whole:] == (data * 1000)[whole:]


def test_random_bytes_stay_raw() -> None:
    data = os.urandom(1 << 20)
    for itemsize in (1, 2, 4, 8):
        assert codec.encode(data, itemsize) == ("raw", data)


def test_without_an_item_size_nothing_is_compressed() -> None:
    data = bytes(1 << 20)  # as compressible as bytes get
    assert codec.encode(data, None) == ("raw", data)


def test_item_sizes_without_a_byte_layout_stay_raw() -> None:
    assert codec.encode(bytes(4096), 3)[0] == "raw"
    assert codec.encode(bytes(4096), 16)[0] == "raw"
    with pytest.raises(ValueError, match="item size must be positive"):
        codec.encode(b"abc", 0)


@pytest.mark.parametrize(
    ("dtype", "itemsize"),
    [
        ("float32", 4),
        ("torch.float32", 4),
        ("float16", 2),
        ("bfloat16", 2),
        ("float64", 8),
        ("int64", 8),
        ("int32", 4),
        ("int16", 2),
        ("uint8", 1),
        ("int8", 1),
        ("bool", 1),
        ("float8_e4m3fn", 1),
        ("float8_e5m2", 1),
        ("complex64", 4),
        ("complex128", 8),
        ("unknown", None),
        ("F32", None),
    ],
)
def test_itemsize_of_dtype_names_modelreg_writes(dtype: str, itemsize: int | None) -> None:
    assert codec.itemsize_of(dtype) == itemsize


def test_every_dtype_modelreg_records_has_an_item_size() -> None:
    from modelreg.formats.safetensors import DTYPES as _ST_DTYPES
    from modelreg.pickle_scan import _DTYPES

    for dtype in [*_ST_DTYPES.values(), *_DTYPES.values()]:
        assert codec.itemsize_of(dtype) is not None, dtype


@pytest.fixture
def encoded() -> tuple[str, bytes, bytes]:
    data = floats(100_000)
    encoding, stored = codec.encode(data, 4)
    assert encoding == "shuffle4+zstd"
    return encoding, stored, data


def test_truncated_blob_is_refused(encoded: tuple[str, bytes, bytes]) -> None:
    encoding, stored, data = encoded
    with pytest.raises(CorruptObjectError, match="does not decompress"):
        codec.decode(encoding, stored[:-10], len(data))
    with pytest.raises(CorruptObjectError, match="no valid zstd frame header"):
        codec.decode(encoding, stored[:3], len(data))


def test_trailing_bytes_are_refused(encoded: tuple[str, bytes, bytes]) -> None:
    encoding, stored, data = encoded
    with pytest.raises(CorruptObjectError, match="does not decompress"):
        codec.decode(encoding, stored + b"\0" * 8, len(data))


def test_garbled_blob_is_refused_or_caught_by_the_id(encoded: tuple[str, bytes, bytes]) -> None:
    encoding, stored, data = encoded
    garbled = bytearray(stored)
    garbled[len(garbled) // 2] ^= 0x40
    with pytest.raises(CorruptObjectError):
        codec.decode_verified(encoding, bytes(garbled), len(data), oid_of(data))


def test_a_blob_declaring_another_size_is_refused_before_decompressing() -> None:
    bomb = zstandard.ZstdCompressor(level=19).compress(bytes(64 << 20))
    assert len(bomb) < 10_000
    with pytest.raises(CorruptObjectError, match=r"declares 67108864 bytes, expected 4096"):
        codec.decode("shuffle4+zstd", bomb, 4096)
    short = zstandard.ZstdCompressor().compress(b"x" * 100)
    with pytest.raises(CorruptObjectError, match="declares 100 bytes, expected 200"):
        codec.decode("zstd", short, 200)


def test_a_frame_without_a_declared_size_is_refused() -> None:
    frame = zstandard.ZstdCompressor(write_content_size=False).compress(b"x" * 4096)
    with pytest.raises(CorruptObjectError, match="declares no size, expected 4096"):
        codec.decode("zstd", frame, 4096)


def test_a_negative_size_is_refused() -> None:
    frame = zstandard.ZstdCompressor(write_content_size=False).compress(b"x" * 4096)
    with pytest.raises(CorruptObjectError, match="object size -1 is negative"):
        codec.decode("zstd", frame, -1)


def test_raw_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(CorruptObjectError, match="raw object holds 3 bytes, expected 4"):
        codec.decode("raw", b"abc", 4)


@pytest.mark.parametrize("name", ["lz4", "shuffle3+zstd", "shuffle16+zstd", "", "RAW"])
def test_unknown_encoding_is_refused(name: str) -> None:
    with pytest.raises(CorruptObjectError, match="unknown encoding"):
        codec.decode(name, b"abc", 3)


def test_decode_verified_refuses_bytes_of_another_object(
    encoded: tuple[str, bytes, bytes],
) -> None:
    encoding, stored, data = encoded
    other = oid_of(data + b"!")
    with pytest.raises(CorruptObjectError, match=f"object {other} decodes"):
        codec.decode_verified(encoding, stored, len(data), other)
    assert codec.decode_verified("raw", data, len(data), oid_of(data)) == data
    with pytest.raises(CorruptObjectError, match="bytes of another hash"):
        codec.decode_verified("raw", data, len(data), other)


def test_codec_imports_neither_torch_nor_numpy() -> None:
    import subprocess
    import sys

    code = "import sys, modelreg.codec; print('torch' in sys.modules, 'numpy' in sys.modules)"
    root = str(Path(__file__).resolve().parents[1])
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": root},
    ).stdout
    assert out.split() == ["False", "False"]


def test_compression_benchmark_smoke_run(tmp_path: Path, torch_mod, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    from benchmarks import compression

    out = tmp_path / "compression.json"
    assert compression.main(["--smoke", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    chosen = {label: fig["codecs"][compression.CHOSEN] for label, fig in results["inputs"].items()}
    assert set(chosen) == {"tiny-init-fp32", "tiny-init-bf16"}
    for c in chosen.values():
        assert 0.5 < c["ratio"] < 1.0 and c["compress_MBps"] > 0
    assert "tiny-init-fp32" in capsys.readouterr().out


@pytest.mark.parametrize("itemsize", [1, 2, 4, 8])
def test_decode_into_reused_buffers_round_trips(itemsize: int) -> None:
    data = bytes((i * 7) % 13 for i in range(100_003))
    encoding, stored = codec.encode(data, itemsize)
    out, scratch = bytearray(200_000), bytearray(200_000)
    codec.decode_into(encoding, stored, out, len(data), scratch)
    assert bytes(out[: len(data)]) == data
    with pytest.raises(CorruptObjectError, match="declares 100003 bytes, expected 100002"):
        codec.decode_into(encoding, stored, out, len(data) - 1, scratch)


def test_regrouping_in_numpy_and_in_python_give_the_same_bytes() -> None:
    for width in codec.SHUFFLE_WIDTHS:
        size = codec.NUMPY_ABOVE + 3 * width + 1  # numpy path, with trailing bytes
        raw = os.urandom(size // 2) + bytes(size - size // 2)
        encoding, stored = codec.encode(raw, width)
        out, scratch = bytearray(size), bytearray(size)
        codec.decode_into(encoding, stored, out, size, scratch)
        assert bytes(out) == raw == codec.decode(encoding, stored, size)
        small = raw[: codec.NUMPY_ABOVE // 2 + 1]  # python path
        assert codec.decode(*codec.encode(small, width), len(small)) == small
