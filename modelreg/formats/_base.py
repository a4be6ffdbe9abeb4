"""What every format module shares: the tensor record, the stored-file view, gap filling."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Protocol

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

    def horizon(self, pos: int, want: int) -> int: ...


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


Read = Callable[[int, int], bytes]  # (start, length) -> the file's bytes there
Planner = Callable[[IO[bytes], int], tuple[str, "list[Span] | None"]]  # as formats.plan
Horizon = Callable[[int, int], int]  # (pos, want) -> how far reading is cheap (Stored.horizon)


class Malformed(ValueError):
    """A header that does not add up: the file is cut by content, as an unknown format."""


def file_reader(f: IO[bytes]) -> Read:
    def read(start: int, length: int) -> bytes:
        f.seek(start)
        return f.read(length)

    return read


class Cursor:
    """Reads a header field by field from ``read``, through a window of up to ``WINDOW``
    bytes, so a header of many small fields costs few reads. Every length is checked against
    ``end`` before anything is read or allocated.

    ``horizon(pos, want)`` (a stored file's) says how far from ``pos`` reading costs no more:
    the window never reaches past it, since reading into the next chunk, most likely a
    tensor's, would load all of it (ONNX keeps its fields between the tensors)."""

    WINDOW = 1 << 16

    def __init__(self, read: Read, pos: int, end: int, horizon: Horizon | None = None) -> None:
        self._read, self.pos, self.end, self._horizon = read, pos, end, horizon
        self._base, self._buf = pos, b""

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise Malformed("a field runs past the end")
        at = self.pos - self._base
        if at < 0 or at + n > len(self._buf):
            self._base = self.pos
            ahead = self.WINDOW
            if self._horizon is not None:
                ahead = min(ahead, self._horizon(self.pos, ahead) - self.pos)
            self._buf = self._read(self.pos, min(max(n, ahead), self.end - self.pos))
            at = 0
            if len(self._buf) < n:
                raise Malformed("the file is shorter than its header says")
        self.pos += n
        return self._buf[at : at + n]

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > self.end:
            raise Malformed("a field runs past the end")
        self.pos += n
