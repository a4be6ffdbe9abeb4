"""Hostile checkpoints the first scanner missed, each built for real and each proven dangerous.

Every file here makes ``torch.load(weights_only=False)`` run a shell command (shown in a
throwaway subprocess, in a temp folder, by the marker file it creates), and every one must come
out of modelreg as not ``safe``: ``register`` warns and ``load()`` refuses it. modelreg itself
never creates the marker.
"""

from __future__ import annotations

import copy
import io
import os
import pickle
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from modelreg import ModelRegistry, pickle_scan
from modelreg.errors import UnsafeModelError, UnsafeModelWarning

from .conftest import CliRun
from .models import save_torch, small_state_dict

MARKER = "MARKER_was_executed"


class Evil:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


def torch_would_run_it(path: Path, marker: Path, tmp_path: Path) -> bool:
    """Load ``path`` with torch.load(weights_only=False) in a subprocess; did the code run?"""
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    code = "import sys, torch; torch.load(sys.argv[1], weights_only=False)"
    subprocess.run(
        [sys.executable, "-c", code, str(path)],
        cwd=scratch,
        capture_output=True,
        timeout=300,
        check=False,
    )
    ran = marker.exists()
    marker.unlink(missing_ok=True)
    return ran


def _pickle_ends(data: bytes, count: int) -> list[int]:
    """Where each of the first ``count`` pickles of a legacy file ends."""
    ends, pos = [], 0
    for _ in range(count):
        pos += pickle_scan.scan(data[pos:])[1]
        ends.append(pos)
    return ends


def legacy_with_later_pickle(protocol: int, which: int) -> Callable[[Path, Path], Path]:
    """A real legacy torch.save file whose pickle number ``which`` (0-based) is replaced by a
    protocol-0/1 pickle that runs code."""

    def build(folder: Path, marker: Path) -> Path:
        import torch

        path = folder / f"legacy_p{protocol}.pt"
        torch.save(small_state_dict(), path, _use_new_zipfile_serialization=False)
        data = path.read_bytes()
        ends = _pickle_ends(data, 5)
        start = ends[which - 1]
        evil = pickle.dumps([Evil(marker)], protocol=protocol)
        path.write_bytes(data[:start] + evil + data[ends[which] :])
        return path

    return build


def _torch_members(folder: Path) -> tuple[str, list[tuple[str, bytes]]]:
    src = save_torch(folder / "src.pt", small_state_dict())
    with zipfile.ZipFile(src) as zf:
        members = [(i.filename, zf.read(i)) for i in zf.infolist()]
    src.unlink()
    prefix = members[0][0].split("/", 1)[0]
    return prefix, members


def _evil_torch_zip(
    folder: Path,
    marker: Path,
    name: str,
    *,
    before: list[tuple[str, bytes]] = (),  # type: ignore[assignment]
    after: list[tuple[str, bytes]] = (),  # type: ignore[assignment]
    deflate: bool = False,
) -> tuple[Path, zipfile.ZipFile]:
    prefix, members = _torch_members(folder)
    path = folder / name
    zf = zipfile.ZipFile(path, "w")
    for member, data in [(n.replace("{a}", prefix), d) for n, d in before] + members:
        if member == f"{prefix}/data.pkl":
            data = pickle.dumps({"w": Evil(marker)}, protocol=2)
            kind = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
            zf.writestr(zipfile.ZipInfo(member), data, compress_type=kind)
        else:
            zf.writestr(member, data)
    for member, data in after:
        zf.writestr(member.replace("{a}", prefix), data)
    return path, zf


def decoy_data_pkl(folder: Path, marker: Path) -> Path:
    benign = pickle.dumps({"w": 1}, protocol=2)
    path, zf = _evil_torch_zip(folder, marker, "decoy.pt", before=[("{a}/x/data.pkl", benign)])
    zf.close()
    return path


def deflated_data_pkl(folder: Path, marker: Path) -> Path:
    path, zf = _evil_torch_zip(folder, marker, "deflated.pt", deflate=True)
    zf.close()
    return path


def stray_constants_pkl(folder: Path, marker: Path) -> Path:
    benign = pickle.dumps([], protocol=2)
    path, zf = _evil_torch_zip(folder, marker, "stray.pt", after=[("{a}/x/constants.pkl", benign)])
    zf.close()
    return path


def overlapping_directory_entry(folder: Path, marker: Path) -> Path:
    """An extra central-directory entry that points at data.pkl's bytes under another name."""
    path, zf = _evil_torch_zip(folder, marker, "overlap.pt")
    real = next(i for i in zf.filelist if i.filename.endswith("/data.pkl"))
    extra = copy.copy(real)
    extra.filename = extra.orig_filename = real.filename.replace("data.pkl", "extra.bin")
    zf.filelist.append(extra)
    zf.NameToInfo[extra.filename] = extra
    zf.close()
    return path


def bare_pickle(protocol: int) -> Callable[[Path, Path], Path]:
    def build(folder: Path, marker: Path) -> Path:
        path = folder / f"bare_p{protocol}.pkl"
        path.write_bytes(pickle.dumps({"w": [1.0, 2.0], "x": Evil(marker)}, protocol=protocol))
        return path

    return build


HOSTILE = {
    "legacy, system-info pickle in protocol 0": legacy_with_later_pickle(0, 2),
    "legacy, storage-keys pickle in protocol 1": legacy_with_later_pickle(1, 4),
    "torch zip with a decoy x/data.pkl first": decoy_data_pkl,
    "bare protocol-0 pickle": bare_pickle(0),
    "bare protocol-1 pickle": bare_pickle(1),
    "zip directory entry overlapping data.pkl": overlapping_directory_entry,
    "DEFLATE-compressed data.pkl": deflated_data_pkl,
    "stray x/constants.pkl": stray_constants_pkl,
}


@pytest.mark.parametrize("build", HOSTILE.values(), ids=list(HOSTILE))
def test_a_hostile_file_is_never_called_safe(
    build: Callable[[Path, Path], Path], repo_dir: Path, tmp_path: Path, torch_mod
) -> None:
    marker = tmp_path / MARKER
    path = build(repo_dir, marker)
    registry = ModelRegistry(".")
    with pytest.warns(UnsafeModelWarning, match=r"h@v1 is marked unsafe \(executes code\)"):
        info = registry.register("h", path)["inspect"]
    assert info["safety"] == "unsafe" and info["risk"] == "executes-code"
    assert "posix.system" in info["code_globals"]
    with pytest.raises(UnsafeModelError, match=r"h@v1 is marked unsafe.*posix\.system"):
        registry.load("h")
    assert not marker.exists()
    assert torch_would_run_it(path, marker, tmp_path)


def test_the_hostile_files_get_their_real_format(repo_dir: Path, tmp_path: Path, torch_mod) -> None:
    registry = ModelRegistry(".")
    marker = tmp_path / MARKER
    expected = {
        "legacy, system-info pickle in protocol 0": "torch-legacy",
        "torch zip with a decoy x/data.pkl first": "torch-zip",
        "bare protocol-0 pickle": "pickle",
        "zip directory entry overlapping data.pkl": "torch-zip",
        "DEFLATE-compressed data.pkl": "torch-zip",
        "stray x/constants.pkl": "torch-zip",
    }
    for i, (case, fmt) in enumerate(expected.items()):
        with pytest.warns(UnsafeModelWarning):
            info = registry.register(f"f{i}", HOSTILE[case](repo_dir, marker))["inspect"]
        assert info["format"] == fmt, case
    assert not marker.exists()


def test_an_ambiguous_zip_is_unknown_even_when_its_pickles_look_fine(
    repo_dir: Path, run: CliRun, torch_mod
) -> None:
    prefix, members = _torch_members(repo_dir)
    path = repo_dir / "ambiguous.pt"
    with zipfile.ZipFile(path, "w") as zf:
        for member, data in members:
            zf.writestr(member, data)
        real = next(i for i in zf.filelist if i.filename == f"{prefix}/data.pkl")
        extra = copy.copy(real)
        extra.filename = extra.orig_filename = f"{prefix}/shadow.bin"
        zf.filelist.append(extra)
        zf.NameToInfo[extra.filename] = extra
    registry = ModelRegistry(".")
    with pytest.warns(UnsafeModelWarning, match=r"a@v1 could not be checked: zip member .* is"):
        info = registry.register("a", path)["inspect"]
    assert info["safety"] == "unknown" and "risk" not in info
    with pytest.raises(UnsafeModelError, match=r"a@v1 could not be checked.*pass trust=True"):
        registry.load("a")
    assert isinstance(registry.load("a", trust=True), dict)  # weights-only still reads it
    r = run("register", "a", path)
    assert r.exit_code == 0 and "warning: a@v2 could not be checked" in r.stderr
    assert "UNCHECKED  its pickles could not all be checked" in run("log", "a").stdout
    assert "a     v2 [unchecked]" in run("list").stdout


def test_a_truncated_legacy_file_is_unknown(repo_dir: Path, torch_mod) -> None:
    path = repo_dir / "cut.pt"
    torch_mod.save(small_state_dict(), path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    path.write_bytes(data[: _pickle_ends(data, 3)[2] + 20])  # cut inside the main pickle
    with pytest.warns(UnsafeModelWarning, match="could not be checked: pickle 4 of 5"):
        info = ModelRegistry(".").register("cut", path)["inspect"]
    assert info == {
        "format": "torch-legacy",
        "safety": "unknown",
        "note": info["note"],
    }


def test_a_large_compressed_pickle_is_not_inflated_past_the_bound(
    repo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelreg import containers

    monkeypatch.setattr(containers, "MAX_PICKLE", 1 << 16)
    path = repo_dir / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a/data.pkl", pickle.dumps(b"\0" * (1 << 20), protocol=2))
    with pytest.warns(UnsafeModelWarning, match="larger than 0 MiB unpacked and was not read"):
        info = ModelRegistry(".").register("bomb", path)["inspect"]
    assert info["safety"] == "unknown"
    many = repo_dir / "many.zip"
    with zipfile.ZipFile(many, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for i in range(6):
            zf.writestr(f"a/{i}.pkl", pickle.dumps(b"\0" * 60_000, protocol=2))
    with pytest.warns(UnsafeModelWarning, match="its .pkl members hold more than 0 MiB"):
        assert ModelRegistry(".").register("many", many)["inspect"]["safety"] == "unknown"


def test_text_and_random_bytes_are_not_taken_for_pickles(repo_dir: Path) -> None:
    from .conftest import write_bytes

    (repo_dir / "README.md").write_text("# A model\n\nTrained on things.\n")
    write_bytes(repo_dir / "noise.bin", 100_000, seed=3)
    registry = ModelRegistry(".")
    for name in ("README.md", "noise.bin"):
        info = registry.register(name.split(".")[0], repo_dir / name)["inspect"]
        assert info["safety"] == "n/a", name


def test_forged_lengths_and_endless_lines_are_read_quickly(repo_dir: Path) -> None:
    """A pickle opcode's length field or newline-ended argument never makes the scan read or
    allocate what it claims."""
    import time

    huge = repo_dir / "huge_length.bin"
    huge.write_bytes(b"\x80\x04\x8e" + (1 << 62).to_bytes(8, "little") + b"x" * 5000)
    endless = repo_dir / "endless_line.bin"
    endless.write_bytes(b"S'" + b"x" * (8 << 20))
    registry = ModelRegistry(".")
    started = time.monotonic()
    with pytest.warns(UnsafeModelWarning, match="the pickle could not be read"):
        assert registry.register("huge", huge)["inspect"]["safety"] == "unknown"
    assert registry.register("endless", endless)["inspect"]["safety"] == "n/a"
    assert time.monotonic() - started < 20


def test_a_legacy_tar_checkpoint_is_unknown(repo_dir: Path, tmp_path: Path, torch_mod) -> None:
    """torch.load still tries the pre-0.4 tar layout first; its pickles run on a full load."""
    import tarfile

    marker = tmp_path / MARKER
    path = repo_dir / "old.tar"
    path.write_bytes(torch_tar(marker, tarfile.PAX_FORMAT))
    registry = ModelRegistry(".")
    with pytest.warns(UnsafeModelWarning, match="old@v1 could not be checked: a legacy tar"):
        info = registry.register("old", path)["inspect"]
    assert info["format"] == "torch-tar" and info["safety"] == "unknown"
    with pytest.raises(UnsafeModelError, match="old@v1 could not be checked"):
        registry.load("old")
    assert not marker.exists()
    assert torch_would_run_it(path, marker, tmp_path)


# --- files modelreg once called safe or n/a: every one is at least unknown -----------------


def numpy_would_run_it(path: Path, marker: Path, tmp_path: Path) -> bool:
    """Load ``path`` with numpy.load(allow_pickle=True) in a subprocess; did the code run?"""
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    code = (
        "import sys, numpy; z = numpy.load(sys.argv[1], allow_pickle=True)\n"
        "for k in getattr(z, 'files', ()): z[k]"  # an .npz reads each array on access
    )
    subprocess.run([sys.executable, "-c", code, str(path)], cwd=scratch, timeout=300, check=False)
    ran = marker.exists()
    marker.unlink(missing_ok=True)
    return ran


def _zip_bytes(files: dict[str, bytes]) -> bytearray:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return bytearray(out.getvalue())


def zip64_locator_elsewhere(folder: Path, marker: Path) -> Path:
    """A torch zip whose zip64 locator points at a second directory hidden in a tensor's bytes:
    zipfile reads the zip64 record before the locator (a benign checkpoint), torch's reader
    follows the locator (a data.pkl that runs code)."""
    prefix, members = _torch_members(folder)
    tensor = next(n for n, _d in members if "/data/" in n)

    def eocd(b: bytearray) -> tuple[int, tuple[int, int, int]]:
        e = b.rfind(b"PK\x05\x06")
        return e, struct.unpack("<HII", b[e + 10 : e + 20])

    def z64(n: int, size: int, off: int) -> bytes:
        return struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, size, off)

    def build(payload: bytes) -> bytearray:
        return _zip_bytes({n: (payload if n == tensor else d) for n, d in members})

    pad = 4096
    first = build(bytes(pad))
    info = zipfile.ZipFile(io.BytesIO(first)).getinfo(tensor)
    local = info.header_offset
    x = local + 30 + sum(struct.unpack("<HH", first[local + 26 : local + 30]))
    evil = pickle.dumps(Evil(marker), protocol=2)
    m = _zip_bytes(
        {f"{prefix}/data.pkl": evil, f"{prefix}/byteorder": b"little", f"{prefix}/version": b"3\n"}
    )
    e, (n, size, off) = eocd(m)
    p = off
    for _ in range(n):  # shift the hidden directory's offsets to where it will sit
        m[p + 42 : p + 46] = struct.pack("<I", struct.unpack("<I", m[p + 42 : p + 46])[0] + x)
        p += 46 + sum(struct.unpack("<HHH", m[p + 28 : p + 34]))
    hidden, hidden_z64 = bytes(m[:e]) + z64(n, size, off + x), x + e
    f = build(hidden + bytes(pad - len(hidden)))
    e, (n, size, off) = eocd(f)
    tail = (
        z64(n, size, off)
        + struct.pack("<IIQI", 0x07064B50, 0, hidden_z64, 1)
        + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, size, off, 0)
    )
    path = folder / "zip64.pt"
    path.write_bytes(bytes(f[:e]) + tail)
    return path


def hex_int_pickle(folder: Path, marker: Path) -> Path:
    """A protocol-0 pickle opening with ``I0x10``: the C unpickler reads INT with strtol (base
    0: hex, octal, blanks, a sign), pickletools with int() and gives up at the first opcode."""
    path = folder / "hex.pkl"
    path.write_bytes(b"I0x10\n0cos\nsystem\n(S'touch %s'\ntR." % str(marker).encode())
    return path


def padded_int_pickle(folder: Path, marker: Path) -> Path:
    """strtol skips leading blanks: 2 MiB of them put the INT's newline past the scan's line
    limit, where the scan cannot follow."""
    path = folder / "padded.pkl"
    evil = b"0cos\nsystem\n(S'touch %s'\ntR." % str(marker).encode()
    path.write_bytes(b"I" + b" " * (2 << 20) + b"0x10\n" + evil)
    return path


def torch_tar(marker: Path, layout: int) -> bytes:
    """torch's pre-0.4 tar checkpoint whose ``storages`` pickle runs code."""
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=layout) as tar:
        for name, data in [
            ("storages", pickle.dumps(Evil(marker), protocol=2)),
            ("tensors", b""),
            ("pickle", b""),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def v7_tar(folder: Path, marker: Path) -> Path:
    """A legacy tar checkpoint in the old V7 layout: no ``ustar`` magic at byte 257."""
    import tarfile

    b, off = bytearray(torch_tar(marker, tarfile.USTAR_FORMAT)), 0
    while b[off : off + 512] != bytes(512):
        size = int(b[off + 124 : off + 136].strip(b"\0 ") or b"0", 8)
        b[off + 257 : off + 265] = bytes(8)  # no magic, no version
        b[off + 148 : off + 156] = b" " * 8
        b[off + 148 : off + 156] = b"%06o\0 " % sum(b[off : off + 512])
        off += 512 + (size + 511) // 512 * 512
    path = folder / "v7.pt"
    path.write_bytes(bytes(b))
    return path


def object_npy(folder: Path, marker: Path) -> Path:
    """``np.save`` of an object array: the data after the header is a pickle."""
    import numpy as np

    array = np.empty(2, dtype=object)
    array[0], array[1] = 1, Evil(marker)
    path = folder / "objects.npy"
    np.save(path, array)
    return path


def object_npz(folder: Path, marker: Path) -> Path:
    """``np.savez_compressed`` with an object array among plain ones."""
    import numpy as np

    array = np.empty(1, dtype=object)
    array[0] = Evil(marker)
    path = folder / "objects.npz"
    np.savez_compressed(path, weights=np.arange(4.0), extra=array)
    return path


NOT_SAFE = {
    "zip64 locator pointing at a hidden directory": (zip64_locator_elsewhere, torch_would_run_it),
    "protocol-0 pickle opening with a hex INT": (hex_int_pickle, torch_would_run_it),
    "protocol-0 INT past the line limit": (padded_int_pickle, torch_would_run_it),
    "V7 tar checkpoint (no ustar magic)": (v7_tar, torch_would_run_it),
    "object-dtype .npy": (object_npy, numpy_would_run_it),
    "object-dtype member of an .npz": (object_npz, numpy_would_run_it),
}


@pytest.mark.parametrize("build, runs", NOT_SAFE.values(), ids=list(NOT_SAFE))
def test_a_file_a_loader_runs_is_never_safe_or_n_a(
    build: Callable[[Path, Path], Path],
    runs: Callable[[Path, Path, Path], bool],
    repo_dir: Path,
    tmp_path: Path,
    torch_mod,
) -> None:
    marker = tmp_path / MARKER
    path = build(repo_dir, marker)
    with pytest.warns(UnsafeModelWarning):
        info = ModelRegistry(".").register("h", path)["inspect"]
    assert info["safety"] in ("unsafe", "unknown"), info
    assert not marker.exists()
    assert runs(path, marker, tmp_path)


def test_code_in_a_hex_int_pickle_and_object_arrays_is_found(
    repo_dir: Path, tmp_path: Path
) -> None:
    """Not just unknown: the scan reads past ``I0x10`` and into the .npy's pickle."""
    registry = ModelRegistry(".")
    marker = tmp_path / MARKER
    for name, build in (("hex", hex_int_pickle), ("npy", object_npy), ("npz", object_npz)):
        with pytest.warns(UnsafeModelWarning, match="executes code"):
            info = registry.register(name, build(repo_dir, marker))["inspect"]
        assert info["risk"] == "executes-code", name
        assert {"os.system", "posix.system"} & set(info["code_globals"]), name


def test_ordinary_files_keep_their_verdicts(repo_dir: Path, torch_mod) -> None:
    import tarfile

    import numpy as np

    from .conftest import write_bytes

    save_torch(repo_dir / "sd.pt", small_state_dict())
    big = {f"layer{i}.weight": torch_mod.randn(300, 300) for i in range(3)}
    torch_mod.save(big, repo_dir / "big.pt")
    (repo_dir / "notes.txt").write_text("I am a text file, not a pickle.\n0 ok\n")
    (repo_dir / "ints.txt").write_text("I 12 apples\nL0x\n")
    write_bytes(repo_dir / "noise.bin", 100_000, seed=5)
    np.save(repo_dir / "numbers.npy", np.arange(12.0).reshape(3, 4))
    np.save(repo_dir / "records.npy", np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8")]))
    np.savez_compressed(repo_dir / "numbers.npz", a=np.arange(5), b=np.ones((2, 2)))
    with tarfile.open(repo_dir / "texts.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
        tar.add(repo_dir / "notes.txt", "notes.txt")
    registry = ModelRegistry(".")
    expected = {
        "sd.pt": "safe",
        "big.pt": "safe",
        "notes.txt": "n/a",
        "ints.txt": "n/a",
        "noise.bin": "n/a",
        "numbers.npy": "n/a",
        "records.npy": "n/a",
        "numbers.npz": "n/a",
        "texts.tar": "n/a",
    }
    for i, (name, safety) in enumerate(expected.items()):
        info = registry.register(f"m{i}", repo_dir / name)["inspect"]
        assert info["safety"] == safety, (name, info)


def test_a_zip_whose_end_record_a_reader_could_pick_otherwise_is_unknown(repo_dir: Path) -> None:
    """Readers search the end record backwards from the end: one in the comment, bytes after
    the record, or a zip64 record the classic one contradicts leave the choice open."""
    benign = pickle.dumps({"w": 1}, protocol=2)
    plain = _zip_bytes({"a/data.pkl": benign})
    end = plain.rfind(b"PK\x05\x06")
    fake = bytes(plain[end : end + 20]) + b"\0\0"  # the same record again, in the comment
    files = {
        "comment.zip": bytes(plain[: end + 20]) + struct.pack("<H", len(fake)) + fake,
        "trailing.zip": bytes(plain) + b"junk",
    }
    size, offset = struct.unpack("<II", plain[end + 12 : end + 20])
    zip64 = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, 1, 1, size, offset)
    locator = struct.pack("<IIQI", 0x07064B50, 0, end, 1)
    classic = bytearray(plain[end:])
    classic[8:12] = struct.pack("<HH", 7, 7)  # 7 entries, says the classic record; 1, zip64
    files["zip64.zip"] = bytes(plain[:end]) + zip64 + locator + bytes(classic)
    registry = ModelRegistry(".")
    for name, content in files.items():
        (repo_dir / name).write_bytes(content)
        if name != "comment.zip":  # zipfile takes the record in the comment and fails
            with zipfile.ZipFile(repo_dir / name) as zf:
                assert zf.read("a/data.pkl") == benign
        with pytest.warns(UnsafeModelWarning, match="could not be checked: (the|its) zip"):
            info = registry.register(name.split(".")[0], repo_dir / name)["inspect"]
        assert info["safety"] == "unknown", name


def test_a_zip_entry_with_two_zip64_fields_is_unknown(repo_dir: Path) -> None:
    """miniz reads a member's zip64 sizes and offset from its first zip64 extra field, zipfile
    from each in turn: two fields can send the two readers to different bytes."""
    plain = _zip_bytes({"a/data.pkl": pickle.dumps({"w": 1}, protocol=2)})
    end = plain.rfind(b"PK\x05\x06")
    offset = struct.unpack("<I", plain[end + 16 : end + 20])[0]
    name_len = struct.unpack("<H", plain[offset + 28 : offset + 30])[0]
    extra = struct.pack("<HHQ", 1, 8, 0) * 2  # the local header offset, twice
    entry = bytearray(plain[offset : offset + 46 + name_len])
    entry[30:32] = struct.pack("<H", len(extra))
    entry[42:46] = struct.pack("<I", 0xFFFFFFFF)  # "see the zip64 field"
    record = bytearray(plain[end:])
    record[12:16] = struct.pack("<I", len(entry) + len(extra))
    path = repo_dir / "two_fields.zip"
    path.write_bytes(bytes(plain[:offset]) + bytes(entry) + extra + bytes(record))
    with zipfile.ZipFile(path) as zf:
        assert zf.infolist()[0].header_offset == 0
    with pytest.warns(UnsafeModelWarning, match="has two zip64 size fields"):
        info = ModelRegistry(".").register("two", path)["inspect"]
    assert info["safety"] == "unknown"
