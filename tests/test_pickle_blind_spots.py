"""Hostile checkpoints the first scanner missed, each built for real and each proven dangerous.

Every file here makes ``torch.load(weights_only=False)`` run a shell command (shown in a
throwaway subprocess, in a temp folder, by the marker file it creates), and every one must come
out of modelreg as not ``safe``: ``register`` warns and ``load()`` refuses it. modelreg itself
never creates the marker.
"""

from __future__ import annotations

import copy
import os
import pickle
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
    import io
    import tarfile

    marker = tmp_path / MARKER
    path = repo_dir / "old.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (
            ("storages", pickle.dumps(Evil(marker), protocol=2)),
            ("tensors", b""),
            ("pickle", b""),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    registry = ModelRegistry(".")
    with pytest.warns(UnsafeModelWarning, match="old@v1 could not be checked: a legacy tar"):
        info = registry.register("old", path)["inspect"]
    assert info["format"] == "torch-tar" and info["safety"] == "unknown"
    with pytest.raises(UnsafeModelError, match="old@v1 could not be checked"):
        registry.load("old")
    assert not marker.exists()
    assert torch_would_run_it(path, marker, tmp_path)
