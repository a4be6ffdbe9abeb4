"""Partial tensor reads: some tensors of a version, fetching only the chunks that hold them.

``open_tensors`` gives a lazy mapping of tensor name -> tensor; ``select`` picks names by
exact name or glob pattern (``fnmatch``). For a torch zip the zip directory and the main
pickle are read (a few small chunks), the pickle is scanned symbolically
(``pickle_scan``: nothing in it runs, torch.load is never called), and a tensor is built
from its storage's bytes alone with ``torch.frombuffer`` and ``as_strided``, bounds checked.
For safetensors the header gives each tensor's bytes, handed to safetensors' own loader in
a file of that one tensor. Any other format (a legacy torch file) is loaded whole, then
picked from.

Where the chunks come from is a ``ChunkSource``: ``StoreSource`` reads them from an object
store (the registry's, which reads through to the shared cache) and counts what it
fetched; a remote fetcher is another source with the same ``get``, and ``prefetch`` lets it
ask for the chunks of one tensor in one batch.
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import json
import struct
import sys
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from . import containers, formats, pickle_scan
from .cache import Cache
from .errors import CorruptObjectError, ModelregError, NotFoundError
from .formats.safetensors import HEADER_MAX
from .loading import StoredVersion, label_of, load_shard, model_files
from .modelinfo import StoredFile
from .repo import Record, Repository
from .store_api import Store

GLOB = frozenset("*?[")


class ChunkSource(Protocol):
    def get(self, oid: str) -> bytes: ...  # the chunk's bytes, verified against its id

    def prefetch(self, oids: Sequence[str]) -> None: ...  # these are about to be read


class StoreSource:
    """Chunks from an object store; ``bytes_read`` counts every chunk byte handed out."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.bytes_read = 0
        self.chunks_read = 0

    def get(self, oid: str) -> bytes:
        data = self.store.get(oid)
        self.bytes_read += len(data)
        self.chunks_read += 1
        return data

    def prefetch(self, oids: Sequence[str]) -> None:
        pass  # a local store has nothing to gain from a batch


Fetch = Callable[[Store, list[str]], object]  # fetch these ids into this store (wire.fetch)


class FetchingSource(StoreSource):
    """The registry's store (which reads through to the shared cache), then a remote: the
    chunks of a tensor that neither holds are fetched in one batch into the cache, where
    every other registry on the machine finds them. ``fetched`` counts the ids asked for."""

    def __init__(self, store: Store, fetch: Fetch, cache: Cache | None = None) -> None:
        super().__init__(store)
        self.fetch = fetch
        self.cache = cache or Cache()
        self.fetched = 0

    def prefetch(self, oids: Sequence[str]) -> None:
        missing = sorted({o for o in oids if not self.store.exists(o) and not self.cache.exists(o)})
        if missing:
            self.fetch(self.cache.store, missing)  # verified by id as they are added
            self.cache.sync()
            self.fetched += len(missing)

    def get(self, oid: str) -> bytes:
        if self.store.exists(oid):
            return super().get(oid)
        self.prefetch([oid])  # a read nobody announced (a zip directory, a pickle)
        data = self.cache.get(oid)
        self.bytes_read += len(data)
        self.chunks_read += 1
        return data


class _Bad(ModelregError):
    pass


def _bad(label: str, what: str) -> CorruptObjectError:
    return CorruptObjectError(f"cannot read tensors of {label}: {what}")


class _SafetensorsFile:
    def __init__(self, f: StoredFile, chunks: ChunkSource, label: str) -> None:
        self.f, self.chunks, self.label = f, chunks, label
        size = int(f.manifest["size"])
        if size < 8:
            raise _bad(label, "the safetensors file is shorter than its header length")
        (n,) = struct.unpack("<Q", f.read(0, 8))
        if not 2 <= n <= min(size - 8, HEADER_MAX):
            raise _bad(label, f"its safetensors header length {n} does not fit the file")
        try:
            header = json.loads(f.read(8, n))
        except ValueError:
            raise _bad(label, "its safetensors header is not JSON") from None
        if not isinstance(header, dict):
            raise _bad(label, "its safetensors header is not a table")
        header.pop("__metadata__", None)
        self.base, self.size, self.header = 8 + n, size, header

    def names(self) -> list[str]:
        return list(self.header)

    def tensor(self, name: str) -> Any:
        entry = self.header[name]
        try:
            begin, end = entry["data_offsets"]
            one = {"dtype": entry["dtype"], "shape": entry["shape"], "data_offsets": [0, 0]}
        except (TypeError, KeyError, ValueError):
            raise _bad(self.label, f"tensor {name} has no valid entry in the header") from None
        if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end):
            raise _bad(self.label, f"tensor {name} has offsets {begin}..{end}")
        if self.base + end > self.size:
            raise _bad(self.label, f"tensor {name} runs past the end of the file")
        self.chunks.prefetch(self.f.chunk_ids(self.base + begin, end - begin))
        data = self.f.read(self.base + begin, end - begin)
        # A file of this one tensor, so safetensors' own loader checks dtype, shape and size.
        one["data_offsets"] = [0, len(data)]
        head = json.dumps({name: one}).encode()
        head += b" " * (-len(head) % 8)
        from safetensors.torch import load as load_bytes

        try:
            return load_bytes(struct.pack("<Q", len(head)) + head + data)[name]
        except Exception as e:  # safetensors raises its own error type
            raise _bad(self.label, f"tensor {name}: {e}") from None


class _TorchZipFile:
    def __init__(self, f: StoredFile, chunks: ChunkSource, label: str) -> None:
        self.f, self.chunks, self.label = f, chunks, label
        try:
            self.zip = zipfile.ZipFile(containers.Stream(f.read, int(f.manifest["size"])))
            infos = {i.filename: i for i in self.zip.infolist()}
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError, struct.error) as e:
            raise _bad(label, f"its zip directory could not be read ({e})") from None
        main = next((n for n in infos if n.endswith("/data.pkl") or n == "data.pkl"), None)
        if main is None:
            raise _bad(label, "the zip holds no data.pkl")
        self.prefix = main[: -len("data.pkl")]
        self.infos = infos
        order = infos.get(f"{self.prefix}byteorder")
        if order is not None and self._member(order) != sys.byteorder.encode():
            raise _Bad(f"{label} was saved {self._member(order).decode(errors='replace')}-endian")
        try:
            scan, _end = pickle_scan.scan(self._member(infos[main], containers.MAX_PICKLE))
        except pickle_scan.ScanError as e:
            raise _bad(label, f"its pickle could not be read ({e})") from None
        self.refs = {t.name: t for t in pickle_scan.tensors(scan.root)}
        self._storages: dict[str, bytearray] = {}

    def _member(self, info: zipfile.ZipInfo, limit: int | None = None) -> bytes:
        if limit is not None and info.file_size > limit:
            raise _bad(self.label, f"{info.filename} is larger than {limit >> 20} MiB")
        header = self.f.read(info.header_offset, 30)
        if len(header) == 30 and header[:4] == b"PK\x03\x04":
            name_len, extra_len = struct.unpack("<HH", header[26:30])
            start = info.header_offset + 30 + name_len + extra_len
            self.chunks.prefetch(self.f.chunk_ids(start, info.compress_size))
        try:
            with self.zip.open(info) as member:
                return member.read()
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as e:
            raise _bad(self.label, f"{info.filename} could not be read ({e})") from None

    def names(self) -> list[str]:
        return list(self.refs)

    def tensor(self, name: str) -> Any:
        import torch

        ref = self.refs[name]
        dtype = getattr(torch, ref.dtype, None)
        if not isinstance(dtype, torch.dtype):
            raise _Bad(f"{self.label}: tensor {name} has dtype {ref.dtype}, not read partially")
        data = self._storages.get(ref.storage)
        if data is None:
            info = self.infos.get(f"{self.prefix}data/{ref.storage}")
            if info is None:
                raise _bad(self.label, f"storage {ref.storage} of tensor {name} is missing")
            data = self._storages[ref.storage] = bytearray(self._member(info))
        if len(data) % dtype.itemsize:
            raise _bad(self.label, f"storage {ref.storage} does not hold whole {ref.dtype}s")
        shape, offset = list(ref.shape), ref.offset
        stride = list(ref.stride) if ref.stride is not None else _contiguous(shape)
        count = len(data) // dtype.itemsize
        last = offset + sum((n - 1) * s for n, s in zip(shape, stride, strict=True))
        if offset < 0 or min(stride, default=0) < 0 or (ref.numel and last >= count):
            raise _bad(self.label, f"tensor {name} reaches outside its storage")
        storage = torch.frombuffer(data, dtype=dtype) if count else torch.empty(0, dtype=dtype)
        return torch.as_strided(storage, shape, stride, offset)


def _contiguous(shape: list[int]) -> list[int]:
    stride, step = [], 1
    for n in reversed(shape):
        stride.append(step)
        step *= max(n, 1)
    return stride[::-1]


class _WholeFile:
    """A format read whole (a legacy torch file): loaded once, then picked from."""

    def __init__(self, rec: Record, stored: StoredVersion, rel: str, fmt: str) -> None:
        import torch

        state = load_shard(torch, rec, stored.read(rel), fmt)
        if not isinstance(state, dict):
            raise ModelregError(
                f"{label_of(rec)} holds a {type(state).__name__}, not named tensors",
                hint="load it whole with load()",
            )
        self.state = {k: v for k, v in state.items() if isinstance(k, str)}

    def names(self) -> list[str]:
        return list(self.state)

    def tensor(self, name: str) -> Any:
        return self.state[name]


_Reader = _SafetensorsFile | _TorchZipFile | _WholeFile


@contextlib.contextmanager
def _store_errors(label: str) -> Iterator[None]:
    """A missing or damaged object, said as what it stops (as ``load`` says it)."""
    try:
        yield
    except (CorruptObjectError, NotFoundError) as e:
        if str(e.args[0]).startswith("cannot "):
            raise
        raise CorruptObjectError(
            f"cannot load {label}: {e.args[0]}", hint=CorruptObjectError.hint
        ) from None


class TensorMap(Mapping[str, Any]):
    """The tensors of one version by name, each read from the store when it is asked for."""

    def __init__(self, readers: dict[str, _Reader], label: str, source: ChunkSource) -> None:
        self._where = readers
        self.label = label
        self.source = source

    def __getitem__(self, name: str) -> Any:
        reader = self._where.get(name)
        if reader is None:
            raise KeyError(name)
        with _store_errors(self.label):
            return reader.tensor(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def select(self, patterns: Sequence[str]) -> list[str]:
        """The names the patterns pick, in file order; a pattern picking none is an error."""
        names = list(self._where)
        picked: set[str] = set()
        for pattern in patterns:
            if not isinstance(pattern, str) or not pattern:
                raise ModelregError(f"tensors= takes names or glob patterns, not {pattern!r}")
            if GLOB & set(pattern):
                found = fnmatch.filter(names, pattern)
            else:
                found = [pattern] if pattern in self._where else []
            if not found:
                near = difflib.get_close_matches(pattern, names, n=3, cutoff=0.5)
                raise NotFoundError(
                    f"{self.label} has no tensor {pattern!r}"
                    + (f" (near: {', '.join(near)})" if near else ""),
                    hint=f"{len(names)} tensors; list them with open_tensors(...).keys()",
                )
            picked.update(found)
        return [n for n in names if n in picked]


def open_tensors(
    repo: Repository, rec: Record, source: Callable[[Store], ChunkSource] = StoreSource
) -> TensorMap:
    """A lazy mapping of the version's tensors (every model file of a sharded folder)."""
    label = label_of(rec)
    chunks = source(repo.objects)
    with _store_errors(label):
        stored = StoredVersion(repo, rec)
        readers: dict[str, _Reader] = {}
        for rel, fmt in model_files(rec, stored):
            f = StoredFile(chunks, stored.manifest(rel))
            reader: _Reader
            if fmt == formats.safetensors.NAME:
                reader = _SafetensorsFile(f, chunks, label)
            elif fmt == formats.torch_zip.NAME:
                try:
                    reader = _TorchZipFile(f, chunks, label)
                except _Bad:
                    reader = _WholeFile(rec, stored, rel, fmt)
            else:
                reader = _WholeFile(rec, stored, rel, fmt)
            for name in reader.names():
                if name in readers:
                    raise ModelregError(f"{label}: tensor {name} is in two model files")
                readers[name] = reader
    return TensorMap(readers, label, chunks)


def load_tensors(
    repo: Repository,
    rec: Record,
    patterns: Sequence[str],
    source: Callable[[Store], ChunkSource] = StoreSource,
) -> dict[str, Any]:
    if isinstance(patterns, str):
        patterns = [patterns]
    found = open_tensors(repo, rec, source)
    return {name: found[name] for name in found.select(patterns)}


__all__ = [
    "ChunkSource",
    "FetchingSource",
    "StoreSource",
    "TensorMap",
    "load_tensors",
    "open_tensors",
]
