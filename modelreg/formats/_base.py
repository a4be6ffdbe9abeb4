"""What every format module shares: the tensor record, the stored-file view, gap filling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..chunking import Span

UNKNOWN_KEY = "?"  # no span to key the tensor by: never equal to anything in a diff


@dataclass
class Tensor:
    dtype: str
    shape: list[int]
    numel: int
    key: str  # content key of the bytes that hold it


class Stored(Protocol):
    """Random access to a stored file (``modelinfo.StoredFile``)."""

    def read(self, start: int, length: int) -> bytes: ...

    def span(self, name: str) -> tuple[int, int] | None: ...

    def content_key(self, start: int, length: int) -> str: ...


def numel(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def fill_gaps(spans: list[Span], size: int) -> list[Span] | None:
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
