"""``torch.save(..., _use_new_zipfile_serialization=False)``, the format before torch 1.6:
five pickles (magic number, protocol, system info, the object, the storage keys), then each
storage as an int64 element count and its bytes, in the order of the keys.

Found by its magic-number pickle. Each storage is a span of its own; a file whose pickles
cannot be read (or are longer than ``HEAD_MAX``) is cut by content, still as this format.
"""

from __future__ import annotations

import struct
from typing import IO

from .. import pickle_scan
from ._base import Span
from ._torch import load, tensor_table

NAME = "torch-legacy"
# A bare pickle (no magic number) is handed to the same weights-only loader, as torch.load
# would try it.
NAMES = (NAME, "pickle")
HEAD_MAX = 64 << 20  # five pickles longer than this are not read

__all__ = ["NAME", "NAMES", "detect", "load", "spans", "tensor_table"]


def detect(head: bytes) -> bool:
    return pickle_scan.is_legacy_torch(head)


def spans(f: IO[bytes], size: int) -> tuple[str, list[Span] | None]:
    want = 1 << 20
    while True:
        f.seek(0)
        head = f.read(min(want, size, HEAD_MAX))
        try:
            pos, scans = 0, []
            for _ in range(5):
                result, used = pickle_scan.scan(head[pos:])
                scans.append(result)
                pos += used
            break
        except pickle_scan.ScanError:
            if len(head) >= min(size, HEAD_MAX):
                return NAME, None
            want *= 4
    keys, item_sizes = scans[4].root, pickle_scan.legacy_storage_sizes(scans[3])
    if not isinstance(keys, list) or not all(str(k) in item_sizes for k in keys):
        return NAME, None
    found: list[Span] = []
    for key in keys:
        f.seek(pos)
        count = f.read(8)
        if len(count) != 8:
            return NAME, None
        length = struct.unpack("<q", count)[0] * item_sizes[str(key)]
        if length < 0 or pos + 8 + length > size:
            return NAME, None
        found.append((pos + 8, length, f"data/{key}"))
        pos += 8 + length
    return NAME, (found if pos == size else None)
