"""Every pickle a loader could read from a file, found the way the loaders find them.

A safety verdict is only as good as the set of pickles it covers, so this module does not trust
how the chunker cut the file (a zip whose directory lies is cut as raw bytes) and does not stop
at the first pickle:

- a zip (``torch.save`` since 1.6, TorchScript) is read through its central directory, as
  torch's reader does; every ``.pkl`` member is scanned, a DEFLATE member decompressed up to a
  bound. A directory that is ambiguous (overlapping or duplicate members, a local header that
  disagrees with it, bytes between members, end records that torch's reader could follow to
  another directory than zipfile's) gives ``unknown``: two readers may disagree on it.
- a legacy ``torch.save`` file is five pickles in a row (magic number, protocol, system info,
  the object, storage keys) and then raw storages; all five are scanned, whatever protocol.
- a legacy tar checkpoint (torch before 0.4) is recognised as tarfile does (a first header
  with a right checksum, ``ustar`` magic or not) and reported ``unknown``; a tar without its
  members is read as whatever else it may be.
- an object-dtype ``.npy`` (and any such member of a zip, as in an ``.npz``) holds a pickle
  after its header, which ``numpy.load(allow_pickle=True)`` runs: it is scanned.
- anything else that starts like a pickle is scanned as one (any protocol, 0 included), and so
  is every pickle that directly follows it.

Nothing here imports or calls anything the file names.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from . import pickle_risk, pickle_scan
from .pickle_scan import PickleScan, ScanError

SAFE, UNSAFE, UNKNOWN, NA = "safe", "unsafe", "unknown", "n/a"
MAX_PICKLE = 256 << 20  # a pickle (or a decompressed .pkl member) larger than this is not read
_LEGACY_PICKLES = 5
_MAX_FOLLOWING = 16

Read = Callable[[int, int], bytes]


_LINE_MAX = 1 << 20  # a protocol-0 argument line longer than this is not a pickle's


class Stream(io.RawIOBase):
    """A read-only, seekable file over ``read(start, length)``.

    ``exact`` is for pickles: a read asking for more than is left returns nothing (the pickle
    is cut short either way), so a forged length never makes us allocate or read it."""

    def __init__(self, read: Read, size: int, exact: bool = False) -> None:
        self._read, self._size, self._pos, self._exact = read, size, 0, exact

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        left = max(0, self._size - self._pos)
        if size is None or size < 0:
            size = left
        elif size > left and self._exact:
            return b""
        data = self._read(self._pos, min(size, left)) if size and left else b""
        self._pos += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        limit = _LINE_MAX if size is None or size < 0 else size
        start, line = self._pos, b""
        while len(line) < limit:
            want = min(64 << 10, limit - len(line), self._size - self._pos)
            piece = self._read(self._pos, want) if want > 0 else b""
            if not piece:
                break
            cut = piece.find(b"\n")
            line += piece if cut < 0 else piece[: cut + 1]
            self._pos = start + len(line)
            if cut >= 0:
                break
        if size is None or size < 0:
            self._too_long(line)
        return line

    def _too_long(self, line: bytes) -> None:
        """A line cut at the limit whose newline comes later: a loader reads it whole."""
        pos = self._pos
        if line.endswith(b"\n") or pos >= self._size:
            return
        while pos < self._size:
            piece = self._read(pos, min(1 << 20, self._size - pos))
            if not piece:
                return
            if b"\n" in piece:
                raise pickle_scan.Inconclusive(
                    f"a protocol-0 argument longer than {_LINE_MAX >> 20} MiB"
                )
            pos += len(piece)


@dataclass
class Verdict:
    """What the pickles of one file would do; ``format`` says what holds them."""

    format: str
    safety: str
    unsafe_globals: set[str] = field(default_factory=set)
    code_globals: set[str] = field(default_factory=set)
    calls_computed: bool = False
    saved_module: bool = False
    notes: list[str] = field(default_factory=list)
    main: PickleScan | None = None  # the pickle holding the checkpoint's object
    archive: str = ""  # a torch zip's folder, "<archive>/"

    def add(self, result: PickleScan) -> None:
        self.unsafe_globals.update(result.unsafe_globals)
        self.code_globals.update(pickle_risk.code_globals(result))
        self.calls_computed |= result.calls_computed
        self.saved_module |= result.saved_module

    def add_partial(self, where: str, error: ScanError) -> None:
        """A pickle that breaks off: what it did before the fault counts, and it is unknown."""
        if error.partial is not None:
            self.add(error.partial)
        self.notes.append(f"{where} could not be read")

    def finish(self) -> Verdict:
        if self.unsafe_globals or self.calls_computed:
            self.safety = UNSAFE
        elif self.notes and self.safety != NA:
            self.safety = UNKNOWN
        return self

    @property
    def risk(self) -> str | None:
        if self.safety != UNSAFE:
            return None
        if self.code_globals or self.calls_computed:
            return pickle_risk.EXECUTES_CODE
        return pickle_risk.UNSAFE_CLASSES

    def summary(self) -> dict[str, object]:
        info: dict[str, object] = {"format": self.format, "safety": self.safety}
        if self.risk:
            info["risk"] = self.risk
        if self.unsafe_globals:
            info["unsafe_globals"] = sorted(self.unsafe_globals)
        if self.code_globals or self.calls_computed:
            calls = ["<a call of a computed object>"] if self.calls_computed else []
            info["code_globals"] = sorted(self.code_globals) + calls
        if self.saved_module:
            info["saved_module"] = True
        if self.notes:
            info["note"] = "; ".join(self.notes)
        return info


def examine(read: Read, size: int) -> Verdict | None:
    """The verdict over every pickle in the file, or None when no loader reads it as one."""
    head = read(0, 4)
    if head == b"PK\x03\x04":
        return _zip(read, size)
    if read(0, 6) == _NPY_MAGIC:
        return _npy(read, size)
    if _tar_header(read(0, 512)):
        verdict = _tar(read, size)
        if verdict is not None:
            return verdict
    return _pickle_run(read, size)


def leading_pickle_globals(read: Read, size: int) -> list[str]:
    """Globals that ``pickle.load`` would import from the file's first bytes (for a format that
    is not meant to be a pickle, such as safetensors: any hit means the file is both)."""
    try:
        result, _end = pickle_scan.scan(Stream(read, min(size, MAX_PICKLE), exact=True))
    except ScanError as e:
        result = e.partial  # type: ignore[assignment]
    return list(result.globals) if result is not None else []


# --- a run of pickles ---------------------------------------------------------------------


def _pickle_run(read: Read, size: int) -> Verdict | None:
    stream = Stream(read, min(size, MAX_PICKLE), exact=True)
    try:
        first, end = pickle_scan.scan(stream)
    except ScanError as e:
        declared = read(0, 2)[:1] == b"\x80" and read(1, 1) <= b"\x05"  # PROTO 0-5
        imports = e.partial is not None and (e.partial.globals or e.partial.calls_computed)
        if not (declared or imports or e.inconclusive):
            return None  # neither says it is a pickle nor imports anything: not a pickle
        verdict = Verdict("pickle", UNKNOWN)
        verdict.add_partial("the pickle", e)
        return verdict.finish()
    legacy = first.root == pickle_scan.LEGACY_MAGIC
    verdict = Verdict("torch-legacy" if legacy else "pickle", SAFE)
    verdict.add(first)
    verdict.main = first
    for i in range(1, _LEGACY_PICKLES if legacy else _MAX_FOLLOWING):
        if end >= size:
            if legacy:
                verdict.notes.append(f"the file ends after {i} of its {_LEGACY_PICKLES} pickles")
            break
        stream.seek(end)
        try:
            result, end = pickle_scan.scan(stream)
        except ScanError as e:
            if legacy:
                verdict.add_partial(f"pickle {i + 1} of {_LEGACY_PICKLES}", e)
            elif e.inconclusive or (
                e.partial is not None and (e.partial.globals or e.partial.calls_computed)
            ):
                verdict.add_partial(f"the pickle at byte {end}", e)
            break
        verdict.add(result)
        if legacy and i == 3:
            verdict.main = result
    return verdict.finish()


# --- zip ----------------------------------------------------------------------------------


def _zip(read: Read, size: int) -> Verdict:
    verdict = Verdict("zip", NA)
    try:
        archive = zipfile.ZipFile(Stream(read, size))
        infos = archive.infolist()
        directory_start = archive.start_dir
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError, struct.error) as e:
        verdict.notes.append(f"its zip directory could not be read ({e})")
        verdict.safety = UNKNOWN
        return verdict
    problem = _end_records(read, size, len(infos), directory_start)
    if problem:
        verdict.notes.append(problem)
        verdict.safety = UNKNOWN
    if not infos:
        return verdict.finish()
    problem = None if problem else _ambiguity(read, infos, directory_start)
    if problem:
        verdict.notes.append(problem)
        verdict.safety = UNKNOWN
    names = {i.filename for i in infos}
    first = infos[0].filename
    prefix = first.split("/", 1)[0] + "/" if "/" in first else ""
    main_name = f"{prefix}data.pkl"
    torchscript = bool(prefix) and f"{prefix}constants.pkl" in names
    if prefix and main_name in names:
        verdict.format = "torchscript" if torchscript else "torch-zip"
        verdict.archive = prefix
    budget = 4 * MAX_PICKLE  # all .pkl members together
    for info in infos:
        data: bytes | str | None
        if info.filename.lower().endswith(".pkl"):
            data = None
        else:  # numpy.load of an .npz unpickles any member that is an object-dtype .npy
            data = _npz_member(archive, info)
            if data is None:
                continue
        if verdict.safety == NA:
            verdict.safety = SAFE
        if budget <= 0:
            verdict.notes.append(f"its .pkl members hold more than {4 * MAX_PICKLE >> 20} MiB")
            break
        if data is None:
            data = _member(read, info)
        if isinstance(data, str):
            verdict.notes.append(data)
            continue
        budget -= len(data)
        try:
            result, _end = pickle_scan.scan(data)
        except ScanError as e:
            verdict.add_partial(info.filename, e)
            continue
        if torchscript:  # TorchScript's own unpickler resolves these, not Python's import
            result.unsafe_globals = [
                g
                for g in result.unsafe_globals
                if not g.startswith(("__torch__.", "torch.jit._pickle."))
            ]
        verdict.add(result)
        if info.filename == main_name:
            verdict.main = result
    if torchscript:
        verdict.notes.append("a TorchScript archive holds code; it was not checked")
    return verdict.finish()


_EOCD, _EOCD64, _LOCATOR64 = b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07"
_SENTINELS = (0xFFFF,) * 4 + (0xFFFFFFFF,) * 2  # "see the zip64 record" in a classic field


def _end_records(read: Read, size: int, count: int, directory_start: int) -> str | None:
    """Why torch's reader (miniz) could find another central directory than Python's zipfile,
    or None.

    Both search the end record backwards from the file's end; then miniz follows the zip64
    locator's offset while zipfile reads the zip64 record just before the locator, and each
    takes the zip64 values over the classic ones. So the end record must be the only one a
    reader could pick, the locator must point at the zip64 record right before it, the two
    records must agree, and the directory they name must be the one zipfile read."""
    window = min(size, 0xFFFF + 22 + 4096)  # a little more than either reader searches
    base = size - window
    tail = read(base, window)
    sigs = [m.start() for m in re.finditer(re.escape(_EOCD), tail)]
    if not sigs or window - sigs[-1] < 22:
        return "the zip end record is not the last thing in the file"
    end = sigs[-1]
    disk, cd_disk, n_disk, n, cd_size, cd_offset, comment = struct.unpack(
        "<HHHHIIH", tail[end + 4 : end + 22]
    )
    if end + 22 + comment != window:
        return "the zip end record does not end the file"
    for other in sigs[:-1]:  # a record whose comment would run to the end could be picked
        (other_comment,) = struct.unpack("<H", tail[other + 20 : other + 22])
        if other + 22 + other_comment == window:
            return "the zip has two end records a reader could pick"
    values = (disk, cd_disk, n_disk, n, cd_size, cd_offset)
    records_end = base + end
    locator = read(base + end - 20, 20) if base + end >= 20 else b""
    if locator[:4] == _LOCATOR64:
        _sig, locator_disk, z64_offset, disks = struct.unpack("<IIQI", locator)
        records_end = base + end - 20 - 56
        if z64_offset != records_end or locator_disk != 0 or disks != 1:
            return "the zip64 locator does not point at the zip64 record before it"
        record = read(records_end, 56)
        if len(record) != 56 or record[:4] != _EOCD64:
            return "the zip64 locator points at no zip64 record"
        fields = struct.unpack("<IQHHIIQQQQ", record)
        if fields[1] != 44:
            return "the zip64 end record holds extra data"
        z64 = fields[4:]  # disk, directory's disk, entries on it, entries, size, offset
        for classic, wide, sentinel in zip(values, z64, _SENTINELS, strict=True):
            if classic not in (wide, sentinel):
                return "the zip64 end record disagrees with the classic one"
        values = z64
    if values[:3] != (0, 0, values[3]) or values[3] != count:
        return "the zip end record counts other members than its directory holds"
    if values[5] != directory_start or values[5] + values[4] != records_end:
        return "the zip end record names another directory than the one read"
    return None


def _ambiguity(read: Read, infos: list[zipfile.ZipInfo], directory_start: int) -> str | None:
    """Why two zip readers could see different members here, or None."""
    seen: set[str] = set()
    ranges: list[tuple[int, int, str, bool]] = []
    for info in infos:
        if info.filename in seen:
            return f"two zip members are named {info.filename}"
        seen.add(info.filename)
        local = read(info.header_offset, 30)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            return f"zip member {info.filename} has no local header where the directory says"
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        raw = read(info.header_offset + 30, name_len)
        local_name = raw.decode("utf-8" if info.flag_bits & 0x800 else "cp437", "replace")
        if local_name != info.orig_filename:
            return f"zip member {info.filename} is named {local_name} in its local header"
        if info.flag_bits & 0x1:
            return f"zip member {info.filename} is encrypted"
        if _zip64_extras(info.extra) > 1:  # miniz takes the first, zipfile every one in turn
            return f"zip member {info.filename} has two zip64 size fields"
        end = info.header_offset + 30 + name_len + extra_len + info.compress_size
        ranges.append((info.header_offset, end, info.filename, bool(info.flag_bits & 0x8)))
    pos, previous_descriptor = 0, False
    for start, end, name, descriptor in sorted(ranges):
        slack = 24 if previous_descriptor else 0  # an optional data descriptor
        if start < pos or start > pos + slack:
            what = "overlaps another" if start < pos else "starts after unexplained bytes"
            return f"zip member {name} {what}"
        pos, previous_descriptor = end, descriptor
    if pos > directory_start or directory_start > pos + (24 if previous_descriptor else 0):
        return "the zip directory does not follow the last member"
    return None


def _npz_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes | str | None:
    """The pickle of a member that is an object-dtype ``.npy``, read through zipfile as
    ``numpy.load`` reads an ``.npz``; None when numpy reads no pickle from it."""
    try:
        with archive.open(info) as member:
            if member.read(len(_NPY_MAGIC)) != _NPY_MAGIC:
                return None
            head = _NPY_MAGIC + member.read(6 + _NPY_HEADER_MAX)
            start = _npy_pickle_start(head)
            if not isinstance(start, int):
                return f"{info.filename}: {start}" if start else None
            data = head[start:] + member.read(max(0, start + MAX_PICKLE + 1 - len(head)))
    except MemoryError:
        return f"{info.filename} could not be read"
    except Exception:  # zipfile cannot read it, so numpy cannot either
        return None
    if len(data) > MAX_PICKLE:
        return f"{info.filename} is larger than {MAX_PICKLE >> 20} MiB unpacked and was not read"
    return data


def _zip64_extras(extra: bytes) -> int:
    """How many zip64 fields (id 1) a central directory entry's extra data holds."""
    count = pos = 0
    while pos + 4 <= len(extra):
        kind, length = struct.unpack("<HH", extra[pos : pos + 4])
        count += kind == 1
        pos += 4 + length
    return count


def _member(read: Read, info: zipfile.ZipInfo) -> bytes | str:
    """A member's bytes, decompressed up to MAX_PICKLE, or why they cannot be read."""
    local = read(info.header_offset, 30)
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    start = info.header_offset + 30 + name_len + extra_len
    if info.compress_size > MAX_PICKLE:
        return f"{info.filename} is larger than {MAX_PICKLE >> 20} MiB and was not read"
    raw = read(start, info.compress_size)
    if info.compress_type == zipfile.ZIP_STORED:
        if info.file_size != info.compress_size:
            return f"{info.filename} is stored with two different sizes"
        return raw
    if info.compress_type != zipfile.ZIP_DEFLATED:
        return f"{info.filename} is compressed with method {info.compress_type}"
    inflate = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        data = inflate.decompress(raw, MAX_PICKLE + 1)
    except zlib.error as e:
        return f"{info.filename} could not be decompressed ({e})"
    if len(data) > MAX_PICKLE:
        return f"{info.filename} is larger than {MAX_PICKLE >> 20} MiB unpacked and was not read"
    return data


# --- numpy ------------------------------------------------------------------------------

_NPY_MAGIC = b"\x93NUMPY"
_NPY_VERSIONS = {(1, 0): ("<H", "latin1"), (2, 0): ("<I", "latin1"), (3, 0): ("<I", "utf8")}
_NPY_HEADER_MAX = 1 << 20


def _npy_pickle_start(head: bytes) -> int | str | None:
    """Where the pickle of an object-dtype ``.npy`` starts (``numpy.load(allow_pickle=True)``
    unpickles what follows the header), from the file's first bytes; None when numpy reads no
    pickle there (a dtype of plain numbers, or not a header numpy reads); why not, as text,
    when it cannot be told."""
    import ast

    import numpy.lib.format

    version = tuple(head[6:8])
    if head[:6] != _NPY_MAGIC or version not in _NPY_VERSIONS:
        return None
    length_format, encoding = _NPY_VERSIONS[version]
    start = 8 + struct.calcsize(length_format)
    if len(head) < start:
        return None
    (length,) = struct.unpack(length_format, head[8:start])
    if length > _NPY_HEADER_MAX:
        return f"its .npy header is larger than {_NPY_HEADER_MAX >> 20} MiB and was not read"
    if len(head) < start + length:
        return None  # numpy stops at the header too
    try:
        header = ast.literal_eval(head[start : start + length].decode(encoding))
        dtype = numpy.lib.format.descr_to_dtype(header["descr"])
    except Exception:  # whatever a hostile header raises: numpy's reading may differ
        return "its .npy header could not be read"
    return start + length if dtype.hasobject else None


def _npy(read: Read, size: int) -> Verdict | None:
    """An object-dtype ``.npy``: the pickle after its header."""
    start = _npy_pickle_start(read(0, 12 + _NPY_HEADER_MAX))
    if start is None:
        return None
    verdict = Verdict("npy", UNKNOWN if isinstance(start, str) else SAFE)
    if isinstance(start, str):
        verdict.notes.append(start)
        return verdict
    stream = Stream(read, min(size, start + MAX_PICKLE), exact=True)
    stream.seek(start)
    try:
        result, _end = pickle_scan.scan(stream)
    except ScanError as e:
        verdict.add_partial("the pickle of its objects", e)
        return verdict.finish()
    verdict.add(result)
    return verdict.finish()


# --- tar ----------------------------------------------------------------------------------


def _tar_header(block: bytes) -> bool:
    """Whether tarfile takes ``block`` for a first header, as torch.load's tarfile.open does:
    its checksum is right. The ``ustar`` magic is optional (an old V7 tar has none)."""
    import tarfile

    if len(block) < 512:
        return False
    try:
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def _tar(read: Read, size: int) -> Verdict | None:
    """torch.load tries a legacy tar checkpoint (members storages, tensors, pickle) before
    anything else; its pickles are streams of several, with raw bytes between them."""
    import tarfile

    try:
        with tarfile.open(fileobj=Stream(read, size), mode="r:") as tar:
            members = set(tar.getnames())
    except (tarfile.TarError, OSError, ValueError, EOFError):
        return None
    if not members & {"storages", "tensors", "pickle", "sys_info"}:
        return None
    verdict = Verdict("torch-tar", UNKNOWN)
    verdict.notes.append("a legacy tar checkpoint; its pickles were not checked")
    return verdict
