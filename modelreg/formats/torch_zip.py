"""``torch.save`` since torch 1.6 (and ``torch.jit.save``): a zip archive whose members are
the pickle ``<archive>/data.pkl`` and one member per tensor storage ``<archive>/data/<key>``.

Each member's data is a span of its own, so ``torch.save`` of the same state dict twice (new
headers, a new serialization id) stores only the headers again.
"""

from __future__ import annotations

import struct
import zipfile
from typing import IO

from ._base import Span
from ._torch import load, tensor_table

NAME = "torch-zip"
TORCHSCRIPT = "torchscript"
ZIP = "zip"  # a zip that holds no torch pickle: cut by content, like any file
NAMES = (NAME, TORCHSCRIPT)

__all__ = ["NAME", "NAMES", "TORCHSCRIPT", "ZIP", "detect", "load", "spans", "tensor_table"]


def detect(head: bytes) -> bool:
    return head[:4] == b"PK\x03\x04"


def spans(f: IO[bytes], size: int) -> tuple[str, list[Span] | None]:
    """Each member's data, located through the zip's own directory and local headers."""
    try:
        infos = zipfile.ZipFile(f).infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return ZIP, None
    found: list[Span] = []
    for info in infos:
        f.seek(info.header_offset)
        local = f.read(30)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            return ZIP, None
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        start = info.header_offset + 30 + name_len + extra_len
        found.append((start, info.compress_size, info.filename))
    torch = any(n == "data.pkl" or str(n).endswith("/data.pkl") for _s, _l, n in found)
    return (NAME if torch else ZIP), found
