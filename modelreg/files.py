"""Files and directories as objects: file manifests and trees.

A *file manifest* lists the pieces of one file in order. A piece of ``inline_max`` bytes or
less is kept inside the manifest (base64), so headers and tiny tensors cost no file each;
a larger one is a chunk object. The manifest also keeps the whole file's hash, checked again
when the file is rebuilt, and the named spans (tensor records) the chunker found.

A *tree* maps each relative path of a directory model to the manifest of that file.
"""

from __future__ import annotations

import base64
import itertools
import os
import stat
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

from . import chunking, hints
from ._fs import check_relpath
from .errors import CorruptObjectError, InvalidInputError, UnsafePathError
from .hashing import new_hasher, oid_of
from .ignore import FILENAME as IGNORE_FILE
from .ignore import IgnoreRules
from .objects import Mapped
from .store_api import Store

READ_AHEAD = 4  # pieces being read and verified ahead of the one being written
READERS = 2  # threads doing it: hashing, zstd and regrouping all release the GIL

STORE_DIRNAME = ".modelreg"  # a registry's store: never part of a folder model
Progress = Callable[[int], None]
Planner = Callable[[IO[bytes], int], tuple[str, "list[chunking.Span] | None"]]
# A folder's files -> planners for those whose layout another file of it states
FolderPlanner = Callable[[list[tuple[str, Path]]], dict[str, Planner]]


def _no_progress(n: int) -> None:
    pass


def no_plan(f: IO[bytes], size: int) -> tuple[str, list[chunking.Span] | None]:
    """The planner that knows no format: every file is cut by content."""
    return "raw", None


def store_file(
    store: Store,
    path: Path,
    params: chunking.ChunkParams,
    progress: Progress = _no_progress,
    plan: Planner = no_plan,
) -> tuple[str, dict[str, Any]]:
    """Store one file as chunks plus a manifest; return the manifest's id and body.
    ``plan`` (``formats.plan``) says where the file's format wants it cut."""
    parts: list[dict[str, Any]] = []
    whole = new_hasher()
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        fmt, spans = plan(f, size)
        pieces: Iterator[bytes | memoryview] = (
            chunking.span_pieces(f, spans, params)
            if spans is not None
            else chunking.cdc_pieces(f, params)
        )
        # Item sizes cost a pickle scan (ms per file): worth it only to compress right now.
        widths = _span_widths(f, fmt, spans if store.compress else None)
        total = 0
        for piece in pieces:
            if len(piece) <= params.inline_max:
                parts.append({"b": base64.b64encode(piece).decode()})
            else:
                oid = oid_of(piece)
                width = widths.at(total, len(piece))
                parts.append({"o": store.add(piece, oid, itemsize=width), "n": len(piece)})
            whole.update(piece)
            total += len(piece)
            progress(len(piece))
    if total != size:
        raise EOFError(f"{path} changed size while it was being read")
    manifest: dict[str, Any] = {
        "type": "file",
        "size": size,
        "hash": whole.hexdigest(),
        "format": fmt,
        "parts": parts,
    }
    if spans is not None:
        manifest["spans"] = [[name, start, length] for start, length, name in spans if name]
    return store.add_json(manifest), manifest


class _Widths:
    """The item size of the span holding each piece, looked up in file order."""

    def __init__(self, spans: list[tuple[int, int, int | None]]) -> None:
        self.spans = spans
        self.i = 0

    def at(self, start: int, length: int) -> int | None:
        while self.i < len(self.spans) and self.spans[self.i][1] <= start:
            self.i += 1
        if self.i < len(self.spans):
            begin, end, width = self.spans[self.i]
            if begin <= start and start + length <= end:
                return width
        return None


def _span_widths(f: IO[bytes], fmt: str, spans: list[chunking.Span] | None) -> _Widths:
    """Item sizes of the file's tensor spans, from its own tensor table (hints.py)."""
    if spans is None:
        return _Widths([])

    def read(start: int, length: int) -> bytes:
        f.seek(start)
        data = f.read(length)
        f.seek(0)
        return data

    named = [(name, start, length) for start, length, name in spans if name]
    widths = hints.span_itemsizes(fmt, named, read)
    return _Widths([(s, s + n, widths.get(name)) for name, s, n in named if name in widths])


def iter_file(store: Store, manifest: dict[str, Any]) -> Iterator[bytes | memoryview]:
    """Yield a file's bytes, each chunk verified against its id.

    The manifest itself was verified against its own id when it was read, and it names every
    chunk by hash, so verified chunks in manifest order are the file: hashing the whole file
    again would only repeat that proof. A yielded piece may be a view that is released when
    the next piece is asked for: use it (write it) before that.
    """
    total = 0
    parts = iter(manifest["parts"])

    def load(part: dict[str, Any]) -> bytes | Mapped:
        return base64.b64decode(part["b"]) if "b" in part else store.open_mapped(part["o"])

    # Mapping, decoding and verifying the next chunks overlaps with the caller writing this
    # one; memory is bounded by READ_AHEAD pieces.
    with ThreadPoolExecutor(READERS) as reader:
        ahead = deque(reader.submit(load, p) for p in itertools.islice(parts, READ_AHEAD))
        try:
            while ahead:
                item = ahead.popleft().result()
                following = next(parts, None)
                if following is not None:
                    ahead.append(reader.submit(load, following))
                if isinstance(item, bytes):
                    total += len(item)
                    yield item
                    continue
                try:
                    total += len(item.view)
                    yield item.view
                finally:
                    item.close()
        finally:
            for job in ahead:
                if not job.cancel() and job.exception() is None:
                    done = job.result()
                    if isinstance(done, Mapped):
                        done.close()
    if total != manifest["size"]:
        raise CorruptObjectError("a rebuilt file does not have its recorded size")


def chunk_ids(manifest: dict[str, Any]) -> list[str]:
    return [p["o"] for p in manifest["parts"] if "o" in p]


def walk_dir(root: Path, exclude: frozenset[Path] = frozenset()) -> list[tuple[str, Path]]:
    """Regular files under ``root`` as (relative posix path, path), sorted.

    Left out: folders whose resolved path is in ``exclude`` (a registry's own store and
    checkouts), the store of any registry nested inside, and what ``root/.modelregignore``
    names (that file too). A symlink that
    resolves outside the registered folder is refused; one inside it is stored as the file (or
    folder) it points to, since checkouts hold plain files. A folder link that leads back to a
    folder being walked is refused as a loop.
    """
    return sorted(_walk(root, root, "", frozenset(), exclude, IgnoreRules.of_folder(root)))


def _walk(
    root: Path,
    outer: Path,
    prefix: str,
    seen: frozenset[Path],
    exclude: frozenset[Path],
    rules: IgnoreRules,
) -> list[tuple[str, Path]]:
    real_root = root.resolve()
    if real_root in seen:
        raise UnsafePathError(f"{root} is a symlink loop", hint="remove the link and retry")
    seen = seen | {real_root}
    found: list[tuple[str, Path]] = []

    def rel_of(p: Path) -> str:
        return prefix + p.relative_to(root).as_posix()

    for folder, dirs, names in os.walk(root, followlinks=False):
        for name in list(dirs):
            p = Path(folder, name)
            nested_store = name == STORE_DIRNAME and (p / "config.yaml").is_file()
            if nested_store or p.resolve() in exclude or rules.ignored(rel_of(p), is_dir=True):
                dirs.remove(name)
            elif p.is_symlink():
                _check_inside(p, outer.resolve(), outer)
                dirs.remove(name)
                names.append(name)
        for name in names:
            p = Path(folder, name)
            rel = rel_of(p)
            if rel == IGNORE_FILE:
                continue
            if p.is_symlink():
                _check_inside(p, outer.resolve(), outer)
                if p.is_dir():
                    if not rules.ignored(rel, is_dir=True):
                        found.extend(_walk(p, outer, f"{rel}/", seen, exclude, rules))
                    continue
            if rules.ignored(rel, is_dir=False):
                continue
            if not stat.S_ISREG(p.stat().st_mode):
                raise UnsafePathError(f"{p} is not a regular file; remove it or register files")
            found.append((check_relpath(rel), p))
    return found


def _check_inside(link: Path, real_root: Path, root: Path) -> None:
    target = link.resolve()
    if target != real_root and real_root not in target.parents:
        raise UnsafePathError(
            f"{link} is a symlink to {target}, outside {root}",
            hint="copy the file into the folder (cp -L copies what links point to)",
        )


def store_tree(
    store: Store,
    root: Path,
    params: chunking.ChunkParams,
    progress: Progress = _no_progress,
    exclude: frozenset[Path] = frozenset(),
    plan: Planner = no_plan,
    plan_folder: FolderPlanner | None = None,
) -> tuple[str, dict[str, Any]]:
    """``plan_folder`` (``formats.plan_folder``) may plan a file from what another file of
    the folder says about it; ``plan`` plans the rest."""
    listed = walk_dir(root, exclude)
    if not listed:
        raise InvalidInputError(
            f"{root} holds no files to register",
            hint=f"put the model's files in it (and check its {IGNORE_FILE})",
        )
    planners = plan_folder(listed) if plan_folder is not None else {}
    entries: dict[str, Any] = {}
    whole = new_hasher()
    size = 0
    for rel, path in listed:
        oid, manifest = store_file(store, path, params, progress, planners.get(rel, plan))
        entries[rel] = {"manifest": oid, "size": manifest["size"], "hash": manifest["hash"]}
        whole.update(f"{rel}\0{manifest['hash']}\n".encode())
        size += manifest["size"]
    tree = {"type": "tree", "entries": entries, "size": size, "hash": whole.hexdigest()}
    return store.add_json(tree), tree
