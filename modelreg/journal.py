"""The refs journal of one family: the changes made since its snapshot, one line each.

``refs/<name>.journal``::

    modelreg-journal 1 <token>\\n                       names the snapshot it continues
    <xxh3-64 of the JSON, 16 hex> {"ops":[...]}\\n       one line per change, in order

A change is one line, written with one ``write`` on a file opened ``O_APPEND`` and fsynced
before the family's lock is released; so it is all there or not at all. Ops::

    ["set", "v5", "<record id>"]     version v5 names that record
    ["drop", "v5"]                   v5 no longer names one (renumbered by a pull)
    ["removed", "v5", "<ISO time>"]  v5 was removed; its number is never reused
    ["tag", "production", "v5"]      the tag names v5 (null: the tag was deleted)
    ["protected", ["production"]]    the protected tags, all of them
    ["history", {...}]               a tag event (taghistory.py)

A line that does not end in a newline, or whose checksum does not match, is the last line
of a writer killed while writing (or of a power cut): readers ignore it, and the next writer
cuts it off before it appends. Anywhere else such a line means the file was damaged.

A journal whose first line names another token belongs to an older snapshot whose changes
the current snapshot already holds (compaction writes the snapshot, then a fresh journal):
readers ignore it; the next writer replaces it.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash

from . import _fs, names, taghistory
from .errors import CorruptObjectError
from .hashing import is_oid
from .refs import FamilyRefs

Op = list[Any]
MAGIC = b"modelreg-journal 1 "
_SUM = 16


def header(token: str) -> bytes:
    return MAGIC + token.encode() + b"\n"


def encode(ops: list[Op]) -> bytes:
    body = json.dumps({"ops": ops}, sort_keys=True, separators=(",", ":")).encode()
    return b"%016x " % xxhash.xxh3_64_intdigest(body) + body + b"\n"


def _decode(line: bytes) -> list[Op] | None:
    """The ops of one whole line (without its newline), or None when its sum is wrong."""
    if len(line) <= _SUM + 1 or line[_SUM : _SUM + 1] != b" ":
        return None
    body = line[_SUM + 1 :]
    try:
        if int(line[:_SUM], 16) != xxhash.xxh3_64_intdigest(body):
            return None
        ops = json.loads(body)["ops"]
    except (ValueError, KeyError, TypeError):
        return None
    return ops if isinstance(ops, list) else None


def parse(data: bytes, token: str, where: Path) -> list[list[Op]] | None:
    """Every change the journal holds, in order; None when it continues another snapshot."""
    if not data.startswith(header(token)):
        return None
    lines = data[len(header(token)) :].split(b"\n")
    changes = []
    for i, line in enumerate(lines[:-1]):
        ops = _decode(line)
        if ops is None:
            if i == len(lines) - 2 and not lines[-1]:
                break  # the last line, torn: never published
            raise CorruptObjectError(f"refs journal {where} is damaged (line {i + 2})")
        changes.append(ops)
    return changes


def apply(refs: FamilyRefs, ops: list[Op], where: Path) -> None:
    """Replay one change on ``refs``, checking every name and id it holds."""
    try:
        for op in ops:
            kind = op[0]
            if kind == "set":
                version, oid = names.check_version(op[1]), op[2]
                if not (isinstance(oid, str) and is_oid(oid)):
                    raise ValueError(oid)
                refs.versions[version] = oid
            elif kind == "drop":
                refs.versions.pop(names.check_version(op[1]), None)
            elif kind == "removed":
                version = names.check_version(op[1])
                if version not in refs.removed:
                    refs.removed.append(version)
                if op[2] is not None:
                    refs.removed_at[version] = str(op[2])
            elif kind == "tag":
                if op[2] is None:
                    refs.tags.pop(names.check_tag(op[1]), None)
                else:
                    refs.tags[names.check_tag(op[1])] = names.check_version(op[2])
            elif kind == "protected":
                refs.protected = sorted(names.check_tag(t) for t in op[1])
            elif kind == "history":
                refs.history.append(taghistory.check_event(op[1]))
            else:
                raise ValueError(kind)
    except Exception:
        raise CorruptObjectError(
            f"refs journal {where} is damaged (a change it cannot hold)"
        ) from None


@dataclass
class Before:
    """What a writer's change is compared with to find the ops it made."""

    versions: dict[str, str] | None  # None: the refs track their own version ops
    tags: dict[str, str]
    removed: list[str]
    removed_at: dict[str, str]
    protected: list[str]
    history: set[str]

    @classmethod
    def of(cls, refs: Any, versions: bool) -> Before:
        return cls(
            dict(refs.versions) if versions else None,
            dict(refs.tags),
            list(refs.removed),
            dict(refs.removed_at),
            sorted(refs.protected),
            {e["id"] for e in refs.history},
        )


def diff(before: Before, refs: Any, version_ops: list[Op]) -> list[Op] | None:
    """The ops that bring ``before`` to ``refs``; None when they cannot say it (a removed
    number taken back, an event dropped): the writer then writes a whole snapshot."""
    ops: list[Op] = []
    if before.versions is None:
        ops += version_ops
    else:
        now = refs.versions
        ops += [["drop", v] for v in before.versions if v not in now]
        ops += [["set", v, oid] for v, oid in now.items() if before.versions.get(v) != oid]
    was = set(before.removed)
    if not was <= set(refs.removed):
        return None
    for v in refs.removed:
        if v not in was:
            ops.append(["removed", v, refs.removed_at.get(v)])
    for v in before.removed_at:
        if refs.removed_at.get(v) != before.removed_at[v]:
            return None
    for tag in sorted(set(before.tags) | set(refs.tags)):
        if before.tags.get(tag) != refs.tags.get(tag):
            ops.append(["tag", tag, refs.tags.get(tag)])
    if sorted(refs.protected) != before.protected:
        ops.append(["protected", sorted(refs.protected)])
    ids = {e["id"] for e in refs.history}
    if not before.history <= ids:
        return None
    ops += [["history", e] for e in refs.history if e["id"] not in before.history]
    return ops


def _line_start(fd: int, end: int, start: int) -> int:
    """Where the line whose last byte is at ``end - 1`` starts."""
    pos = end - 1
    while pos > start:
        n = min(pos - start, 1 << 16)
        cut = os.pread(fd, n, pos - n).rfind(b"\n")
        if cut >= 0:
            return pos - n + cut + 1
        pos -= n
    return start


def _valid_end(fd: int, size: int, start: int) -> int:
    """Where the journal's last whole, checked line ends (``start``: after its header)."""
    end = size
    while end > start:
        begin = _line_start(fd, end, start)
        line = os.pread(fd, end - begin, begin)
        if line.endswith(b"\n") and _decode(line[:-1]) is not None:
            return end
        end = begin  # torn or damaged: cut off
    return start


def append(path: Path, token: str, line: bytes) -> None:
    """Append one change to the family's journal (under its lock), durably: a journal of
    another snapshot is replaced first, and a torn last line is cut off."""
    head = header(token)
    for _attempt in range(2):
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND)
        except FileNotFoundError:
            _fs.atomic_write(path, head)
            continue
        try:
            if os.pread(fd, len(head), 0) != head:
                os.close(fd)
                fd = -1
                _fs.atomic_write(path, head)
                continue
            size = os.fstat(fd).st_size
            end = _valid_end(fd, size, len(head))
            if end != size:
                os.ftruncate(fd, end)
            written = os.write(fd, line)
            if written != len(line):
                os.ftruncate(fd, end)
                raise OSError(f"short write to {path}")
            os.fdatasync(fd)
            return
        finally:
            if fd >= 0:
                os.close(fd)
    raise OSError(f"could not open the refs journal {path}")


def reset(path: Path, token: str) -> None:
    """A fresh, empty journal for a new snapshot (after it was published)."""
    _fs.atomic_write(path, header(token))


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
