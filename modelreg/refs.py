"""Per-family refs: which version record each vN names, and which version each tag names.

``refs/<name>.yaml`` is small and human-readable::

    name: resnet18
    versions:          # in numeric order
      v1: 5f0c...      # id of the version record object
      v2: 91aa...
    tags:
      production: v1
    removed: [v3]      # numbers never handed out again

Readers take no lock: a refs file is only ever replaced whole by an atomic rename. Writers of
one family serialize on ``locks/<name>.lock``; the lock is what makes version numbers unique.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import yaml

from . import _fs, names
from .errors import CorruptObjectError, NotFoundError
from .hashing import is_oid

T = TypeVar("T")

try:
    _Loader: type = yaml.CSafeLoader
    _Dumper: type = yaml.CSafeDumper
except AttributeError:  # PyYAML built without libyaml
    _Loader, _Dumper = yaml.SafeLoader, yaml.SafeDumper


# A refs file of ten thousand versions is under 1 MiB; anything this big is not one of ours.
MAX_REFS_BYTES = 16 << 20


class YamlRefusedError(ValueError):
    """YAML that modelreg never writes and will not read: aliases, or too many bytes."""


def _refuse_aliases(text: bytes | str) -> None:
    """Aliases let a kilobyte of YAML expand into gigabytes (nested ``&a [*b, *b, ...]``).
    modelreg never writes them, so any anchor or alias means the file was not written by us.
    Only a text holding '&' or '*' can have one; the event scan is for those alone."""
    marks = (b"&", b"*") if isinstance(text, bytes) else ("&", "*")
    if not any(m in text for m in marks):  # type: ignore[operator]
        return
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise YamlRefusedError("it uses YAML anchors or aliases, which modelreg never writes")


def yaml_load(text: bytes | str) -> object:
    """Load YAML written by modelreg: no aliases, at most MAX_REFS_BYTES."""
    if len(text) > MAX_REFS_BYTES:
        raise YamlRefusedError(f"it is larger than {MAX_REFS_BYTES >> 20} MiB")
    _refuse_aliases(text)
    return yaml.load(text, Loader=_Loader)


class _NoAliasDumper(_Dumper):
    """Writes an object seen twice in full, so what we write is always readable by us."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def yaml_dump(obj: object, sort_keys: bool = True) -> str:
    return yaml.dump(obj, Dumper=_NoAliasDumper, sort_keys=sort_keys, allow_unicode=True)


@dataclass
class FamilyRefs:
    name: str
    versions: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    removed_at: dict[str, str] = field(default_factory=dict)  # vN -> when (ISO, UTC)

    def latest(self) -> str | None:
        return max(self.versions, key=names.version_number) if self.versions else None

    def next_version(self) -> str:
        used = [names.version_number(v) for v in [*self.versions, *self.removed]]
        return f"v{max(used, default=0) + 1}"

    def resolve(self, ref: str) -> str:
        """Map a normalized ref (vN, latest or a tag) to an existing version of this family."""
        if ref == names.LATEST:
            version = self.latest()
        elif names.VERSION_RE.fullmatch(ref):
            version = ref
        else:
            version = self.tags.get(ref)
            if version is None:
                close = difflib.get_close_matches(ref, self.tags, n=1)
                known = ", ".join(sorted(self.tags)) or "none"
                raise NotFoundError(
                    f"{self.name} has no tag {ref!r}",
                    hint=f"did you mean {close[0]}?" if close else f"its tags: {known}",
                )
        if version is not None and version in self.removed:
            when = self.removed_at.get(version)
            raise NotFoundError(
                f"{self.name}@{version} was removed"
                + (f" on {when[:19].replace('T', ' ')} UTC" if when else ""),
                hint="a removed version is gone for good (its number is not reused); "
                f"see 'modelreg log {self.name}'",
            )
        if version is None or version not in self.versions:
            raise NotFoundError(
                f"{self.name} has no version {version or ref}",
                hint=f"see 'modelreg log {self.name}' for its versions",
            )
        return version

    def tags_of(self, version: str) -> list[str]:
        return sorted(t for t, v in self.tags.items() if v == version)

    def to_yaml(self) -> bytes:
        body = {
            "name": self.name,
            "versions": {
                v: self.versions[v] for v in sorted(self.versions, key=names.version_number)
            },
            "tags": dict(sorted(self.tags.items())),
            "removed": sorted(self.removed, key=names.version_number),
        }
        if self.removed_at:
            body["removed_at"] = dict(sorted(self.removed_at.items()))
        return yaml_dump(body, sort_keys=False).encode()

    @classmethod
    def from_yaml(cls, name: str, text: bytes, where: str | Path) -> FamilyRefs:
        try:
            raw = yaml_load(text)
            if not isinstance(raw, dict) or raw.get("name") != name:
                raise ValueError("not the refs of this family")
            refs = cls(
                name=name,
                versions={str(k): str(v) for k, v in (raw.get("versions") or {}).items()},
                tags={str(k): str(v) for k, v in (raw.get("tags") or {}).items()},
                removed=[str(v) for v in raw.get("removed") or []],
                removed_at={str(k): str(v) for k, v in (raw.get("removed_at") or {}).items()},
            )
            for version, oid in refs.versions.items():
                names.check_version(version)
                if not is_oid(oid):
                    raise ValueError(f"bad object id {oid!r}")
            for tag, version in refs.tags.items():
                names.check_tag(tag)
                names.check_version(version)
            for version in [*refs.removed, *refs.removed_at]:
                names.check_version(version)
        except YamlRefusedError as e:
            raise CorruptObjectError(f"refs file {where} is refused: {e}") from None
        except Exception:
            raise CorruptObjectError(f"refs file {where} is damaged") from None
        return refs


class RefStore:
    def __init__(self, root: Path, locks: Path, lock_timeout: float) -> None:
        self.root = root
        self.locks = locks
        self.lock_timeout = lock_timeout

    def path(self, name: str) -> Path:
        return self.root / f"{names.check_family(name)}.yaml"

    def read(self, name: str) -> FamilyRefs | None:
        p = self.path(name)
        try:
            text = p.read_bytes()
        except FileNotFoundError:
            return None
        return FamilyRefs.from_yaml(name, text, p)

    def get(self, name: str) -> FamilyRefs:
        refs = self.read(name)
        if refs is None:
            close = difflib.get_close_matches(name, self.families(), n=1)
            raise NotFoundError(
                f"no model named {name!r} in this registry",
                hint=f"did you mean {close[0]}?"
                if close
                else "see 'modelreg families' for the names it holds",
            )
        return refs

    def families(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            e.name[: -len(".yaml")]
            for e in os.scandir(self.root)
            if e.name.endswith(".yaml") and not e.name.startswith(_fs.TMP_PREFIX)
        )

    def __iter__(self) -> Iterator[FamilyRefs]:
        for name in self.families():
            refs = self.read(name)
            if refs is not None:
                yield refs

    def lock(self, name: str) -> _fs.FileLock:
        return _fs.FileLock(
            self.locks / f"{names.check_family(name)}.lock",
            f"the write lock of model {name!r}",
            self.lock_timeout,
        )

    def update(self, name: str, change: Callable[[FamilyRefs], T]) -> T:
        """Run ``change`` on the family's refs under its lock and publish the result.

        ``change`` may raise to abort; nothing is written then. When it empties the family,
        its refs file is removed.
        """
        with self.lock(name):
            refs = self.read(name) or FamilyRefs(name=name)
            result = change(refs)
            path = self.path(name)
            if refs.versions or refs.removed:
                _fs.atomic_write(path, refs.to_yaml())
            else:
                path.unlink(missing_ok=True)
                _fs.fsync_dir(self.root)
        return result
