"""Per-family refs: which version record each vN names, and which version each tag names.

A family's refs are a *snapshot*, ``refs/<name>.yaml``, small and human-readable::

    # stamp: <XXH3-128 of the lines below>
    # journal: <token of the journal that continues this snapshot>
    name: resnet18
    versions:          # in numeric order
      v1: 5f0c...      # id of the version record object
      v2: 91aa...
    tags:
      production: v1
    removed: [v3]      # numbers never handed out again
    protected: [production]
    history: [...]     # tag events (taghistory.py)

and the changes made since, one line each, in ``refs/<name>.journal`` (journal.py, written by
refstore.py). A register appends one line; it never rewrites the snapshot, so its cost does
not grow with the family.

Readers take no lock: a snapshot is only ever replaced whole by an atomic rename, and a
journal only grows (a torn last line is ignored). Writers of one family serialize on
``locks/<name>.lock``; the lock is what makes version numbers unique.

YAML ignores the two comment lines. The stamp lets the version index (index.py) tell which
refs it was built from by reading one line instead of parsing the file; a file without it
(written by an older modelreg, or by hand) is keyed on the hash of its whole content and has
no journal.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import xxhash
import yaml

from . import names, taghistory
from .errors import CorruptObjectError, NotFoundError
from .hashing import is_oid

STAMP = b"# stamp: "
_STAMP_LINE = len(STAMP) + 33  # the prefix, 32 hex digits and a newline
JOURNAL = b"# journal: "
_JOURNAL_LINE = len(JOURNAL) + 17  # the prefix, 16 hex digits and a newline
HEAD_BYTES = _STAMP_LINE + _JOURNAL_LINE
_TOKEN_RE = re.compile(r"[0-9a-f]{16}")


class StaleView(Exception):
    """A cheap view of a family's refs (the version index's) turned out unreliable while a
    writer used it: the writer starts again from the refs themselves."""


class RefsKey(NamedTuple):
    """What a refs file was when it was read: the version index is valid only for this key.
    The stamp changes with the content; size, inode and ``mtime_ns`` (the later of mtime and
    ctime: a user can set mtime back, never ctime) catch an edit by hand that left the stamp
    line as it was."""

    size: int
    mtime_ns: int
    ino: int
    stamp: str
    journal_size: int = 0  # the journal's: it only grows, or is replaced (a new inode)
    journal_ns: int = 0
    journal_ino: int = 0

    def with_journal(self, st: os.stat_result | None) -> RefsKey:
        if st is None:
            return self
        return self._replace(
            journal_size=st.st_size, journal_ns=_changed(st), journal_ino=st.st_ino
        )


def _changed(st: os.stat_result) -> int:
    return max(st.st_mtime_ns, st.st_ctime_ns)


def _stamp_of(head: bytes) -> str | None:
    if head.startswith(STAMP) and len(head) >= _STAMP_LINE and head[_STAMP_LINE - 1] == 10:
        stamp = head[len(STAMP) : _STAMP_LINE - 1].decode("ascii", "replace")
        return stamp if is_oid(stamp) else None
    return None


def journal_token(text: bytes) -> str | None:
    """The token of the journal that continues a snapshot (its second line), if any."""
    if _stamp_of(text[:_STAMP_LINE]) is None:
        return None
    line = text[_STAMP_LINE:HEAD_BYTES]
    if line.startswith(JOURNAL) and line.endswith(b"\n"):
        token = line[len(JOURNAL) : -1].decode("ascii", "replace")
        return token if _TOKEN_RE.fullmatch(token) else None
    return None


def read_keyed(path: Path) -> tuple[bytes, RefsKey] | None:
    """The refs file's bytes and key, from one open file (so both describe the same file)."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        return None
    with f:
        st = os.fstat(f.fileno())
        text = f.read()
    stamp = _stamp_of(text[:_STAMP_LINE]) or xxhash.xxh3_128_hexdigest(text)
    return text, RefsKey(st.st_size, _changed(st), st.st_ino, stamp)


def key_of(path: Path) -> RefsKey | None:
    """The key of a refs file, reading only its first line when it carries a stamp."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        st = os.fstat(fd)
        stamp = _stamp_of(os.pread(fd, _STAMP_LINE, 0))
    finally:
        os.close(fd)
    if stamp is None:
        got = read_keyed(path)
        return got[1] if got else None
    return RefsKey(st.st_size, _changed(st), st.st_ino, stamp)


def stamped(body: bytes, journal: str | None = None) -> bytes:
    if journal is not None:
        body = JOURNAL + journal.encode() + b"\n" + body
    return STAMP + xxhash.xxh3_128_hexdigest(body).encode() + b"\n" + body


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


def yaml_dump(obj: object, sort_keys: bool = True, width: int | None = None) -> str:
    return yaml.dump(
        obj, Dumper=_NoAliasDumper, sort_keys=sort_keys, allow_unicode=True, width=width
    )


def _number(version: str) -> int:
    """vN -> N for versions already checked (every key of a parsed or written refs)."""
    return int(version[1:])


class RefsMethods:
    """What the parsed refs and the version index's stand-in (indexfile.IndexedRefs) answer
    alike from ``latest``, ``versions``, ``removed`` and ``tags``."""

    versions: Any
    removed: list[str]
    tags: dict[str, str]

    def latest(self) -> str | None:
        raise NotImplementedError

    def next_version(self) -> str:
        latest = self.latest()
        used = [_number(v) for v in [*([latest] if latest else []), *self.removed]]
        return f"v{max(used, default=0) + 1}"

    def has(self, version: str) -> bool:
        return version in self.versions

    def resolve(self, ref: str) -> str:
        """Map a normalized ref (vN, latest or a tag) to an existing version of this family."""
        return resolve_ref(self, ref)  # type: ignore[arg-type]

    def tags_of(self, version: str) -> list[str]:
        return sorted(t for t, v in self.tags.items() if v == version)


@dataclass
class FamilyRefs(RefsMethods):
    name: str
    versions: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    removed_at: dict[str, str] = field(default_factory=dict)  # vN -> when (ISO, UTC)
    protected: list[str] = field(default_factory=list)
    history: list[taghistory.Event] = field(default_factory=list)
    journal: str | None = field(default=None, compare=False)  # the journal continuing it

    def latest(self) -> str | None:
        return max(self.versions, key=_number) if self.versions else None

    def to_yaml(self) -> bytes:
        """The same bytes libyaml writes, but the ``versions`` block (100,000 lines in a big
        family) is written here: libyaml took 0.6 s for it, this takes a tenth of that."""
        body: dict[str, object] = {
            "name": self.name,
            "versions": {},
            "tags": dict(sorted(self.tags.items())),
            "removed": sorted(self.removed, key=names.version_number),
        }
        if self.removed_at:
            body["removed_at"] = dict(sorted(self.removed_at.items()))
        if self.protected:
            body["protected"] = sorted(self.protected)
        if self.history:
            body["history"] = taghistory.ordered(self.history)
        text = yaml_dump(body, sort_keys=False).encode()
        if not self.versions:
            return text
        block = "".join(
            f"  {v}: {_scalar(self.versions[v])}\n" for v in sorted(self.versions, key=_number)
        )
        head, sep, tail = text.partition(b"\nversions: {}\n")
        assert sep, "yaml_dump wrote the empty mapping another way"
        return head + b"\nversions:\n" + block.encode() + tail

    @classmethod
    def from_yaml(cls, name: str, text: bytes, where: str | Path) -> FamilyRefs:
        try:
            if len(text) > MAX_REFS_BYTES:
                raise YamlRefusedError(f"it is larger than {MAX_REFS_BYTES >> 20} MiB")
            fast = _split_versions(text)
            raw = yaml_load(fast[0] if fast else text)
            if not isinstance(raw, dict) or raw.get("name") != name:
                raise ValueError("not the refs of this family")
            versions = raw.get("versions") or {}
            if fast:
                if versions:
                    raise ValueError("two versions blocks")
                versions = fast[1]
            refs = cls(
                name=name,
                versions=versions if fast else {str(k): str(v) for k, v in versions.items()},
                tags={str(k): str(v) for k, v in (raw.get("tags") or {}).items()},
                removed=[str(v) for v in raw.get("removed") or []],
                removed_at={str(k): str(v) for k, v in (raw.get("removed_at") or {}).items()},
                protected=[names.check_tag(t) for t in raw.get("protected") or []],
                history=[taghistory.check_event(e) for e in raw.get("history") or []],
                journal=journal_token(text),
            )
            for version, oid in () if fast else refs.versions.items():  # fast: checked by regex
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


# A line of the versions block as to_yaml writes it. A plain value YAML would read as a number,
# and anything else unexpected, send the file to the YAML parser.
_VERSION_LINE = re.compile(
    rb"^  (v[1-9][0-9]{0,8}): (?:'([0-9a-f]{32})'|([0-9a-f]{32}))\n", re.MULTILINE
)
_BLOCK_END = re.compile(rb"\n(?!  )")
_NOT_TEXT = re.compile(r"[0-9b]+")


def _scalar(oid: str) -> str:
    """The id as libyaml writes it: quoted only where YAML would read a number."""
    if _NOT_TEXT.fullmatch(oid) and _RESOLVER.resolve(yaml.ScalarNode, oid, (True, False)) != (
        "tag:yaml.org,2002:str"
    ):
        return f"'{oid}'"
    return oid


_RESOLVER = yaml.resolver.Resolver()


def _split_versions(text: bytes) -> tuple[bytes, dict[str, str]] | None:
    """(the document with an empty versions block, the versions) when the block is exactly
    what to_yaml writes; None sends the whole file to the YAML parser. The rest of the file
    is small and always parsed by YAML."""
    start = text.find(b"\nversions:\n")
    head = text[:start].split(b"\n")
    if start < 0 or not head[-1].startswith(b"name: ") or len(head) > 3:
        return None
    if len(head) == 3 and journal_token(text) is None:
        return None
    if len(head) == 2 and _stamp_of(text[:_STAMP_LINE]) is None:
        return None
    first = start + len(b"\nversions:\n")
    after = _BLOCK_END.search(text, first - 1)
    end = after.start() + 1 if after else len(text)
    block = text[first:end]
    lines = _VERSION_LINE.findall(block)  # ^-anchored: each match is one whole line
    if not lines or len(lines) != block.count(b"\n") or not block.endswith(b"\n"):
        return None
    versions: dict[str, str] = {}
    for version, quoted, plain in lines:
        if (
            plain
            and _NOT_TEXT.fullmatch(plain.decode())
            and _scalar(plain.decode()) != plain.decode()
        ):
            return None  # YAML would read a number there
        versions[version.decode()] = (quoted or plain).decode()
    return text[: start + 1] + b"versions: {}\n" + text[end:], versions


class RefsLike(Protocol):
    name: str
    tags: dict[str, str]
    removed: list[str]
    removed_at: dict[str, str]

    def latest(self) -> str | None: ...

    def has(self, version: str) -> bool: ...


def resolve_ref(refs: RefsLike, ref: str) -> str:
    """Map a normalized ref (vN, latest or a tag) to an existing version of ``refs``; shared by
    the parsed refs and the version index, so both answer and fail alike."""
    if ref == names.LATEST:
        version = refs.latest()
    elif names.VERSION_RE.fullmatch(ref):
        version = ref
    else:
        version = refs.tags.get(ref)
        if version is None:
            close = difflib.get_close_matches(ref, refs.tags, n=1)
            known = ", ".join(sorted(refs.tags)) or "none"
            raise NotFoundError(
                f"{refs.name} has no tag {ref!r}",
                hint=f"did you mean {close[0]}?" if close else f"its tags: {known}",
            )
    if version is not None and version in refs.removed:
        when = refs.removed_at.get(version)
        raise NotFoundError(
            f"{refs.name}@{version} was removed"
            + (f" on {when[:19].replace('T', ' ')} UTC" if when else ""),
            hint="a removed version is gone for good (its number is not reused); "
            f"see 'modelreg log {refs.name}'",
        )
    if version is None or not refs.has(version):
        raise NotFoundError(
            f"{refs.name} has no version {version or ref}",
            hint=f"see 'modelreg log {refs.name}' for its versions",
        )
    return version
