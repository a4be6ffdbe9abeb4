"""Object ids: XXH3-128 of the bytes, as 32 lowercase hex digits."""

from __future__ import annotations

import re
from pathlib import Path

import xxhash

ALGORITHM = "xxh3-128"
OID_RE = re.compile(r"[0-9a-f]{32}")
READ_SIZE = 4 << 20


def oid_of(data: bytes | memoryview) -> str:
    return xxhash.xxh3_128_hexdigest(data)


def new_hasher() -> xxhash.xxh3_128:
    return xxhash.xxh3_128()


def is_oid(text: str) -> bool:
    return bool(OID_RE.fullmatch(text))


def hash_file(path: Path) -> str:
    h = new_hasher()
    with open(path, "rb") as f:
        while block := f.read(READ_SIZE):
            h.update(block)
    return h.hexdigest()
