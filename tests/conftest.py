from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from modelreg.cli import cli
from modelreg.repo import Repository

TORCH_REQUIRED = os.environ.get("MODELREG_REQUIRE_TORCH") == "1"


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the real home directory or depends on the caller's cwd."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MODELREG_LOCK_TIMEOUT", "30")
    monkeypatch.delenv("MODELREG_DEBUG", raising=False)
    monkeypatch.delenv("MODELREG_CACHE", raising=False)  # the shared cache goes under HOME
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)


@pytest.fixture
def repo_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    Repository.init(root)
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def repo(repo_dir: Path) -> Repository:
    return Repository(repo_dir)


CliRun = Callable[..., Result]


@pytest.fixture
def run() -> CliRun:
    """Invoke the CLI in-process; returns click's Result (stdout, stderr, exit_code)."""
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)

    return invoke


def write_bytes(path: Path, size: int, seed: int = 0) -> Path:
    """Deterministic incompressible bytes (a stand-in for weights where the format does not
    matter)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.blake2b(f"{seed}-{counter}".encode(), digest_size=64).digest()
        counter += 1
    path.write_bytes(bytes(out[:size]))
    return path


def tree_snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every file under root -> (size, sha1); the 'nothing changed' witness."""
    snap = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath, name)
            if p.is_symlink():
                snap[str(p.relative_to(root))] = (-1, os.readlink(p))
                continue
            data = p.read_bytes()
            snap[str(p.relative_to(root))] = (len(data), hashlib.sha1(data).hexdigest())
    return snap


@pytest.fixture(scope="session")
def torch_mod():  # type: ignore[no-untyped-def]
    try:
        import torch
    except ImportError:
        if TORCH_REQUIRED:
            raise
        pytest.skip("torch is not installed (pip install -e '.[torch]')")
    return torch


def python() -> str:
    return sys.executable


# --- a real S3 API server (moto in server mode) on 127.0.0.1 ----------------------------------

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto(extra_env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    import socket
    import subprocess
    import time

    port = _free_port()
    env = {**os.environ, **S3_ENV, **(extra_env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("moto server did not start") from None
            time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def moto_server():  # type: ignore[no-untyped-def]
    proc, url = start_moto()
    yield url
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture
def s3(moto_server: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """AWS settings pointing at the moto server, as a user would set them."""
    for key, value in S3_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_server)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    import boto3

    return boto3.client("s3", endpoint_url=moto_server)


_buckets = iter(range(10**6))


def new_bucket(client) -> str:  # type: ignore[no-untyped-def]
    name = f"modelreg-test-{os.getpid()}-{next(_buckets)}"
    client.create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["folder", "s3"])
def remote_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same contract tests run against a folder remote and an S3 remote."""
    if request.param == "folder":
        return str(tmp_path / "team-remote")
    client = request.getfixturevalue("s3")
    return f"s3://{new_bucket(client)}/team"
