"""Push figures: bytes sent and time to push ResNet-18 v1..v4 against uploading the files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from modelreg.repo import Repository

from .run import fresh, interleaved, register_all


def _start_moto() -> tuple[subprocess.Popen[bytes], str] | None:
    """A local S3 API server (moto) for the S3 half of the push figures, if installed."""
    import importlib.util
    import socket

    if importlib.util.find_spec("moto") is None:
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    return None


def _push_one(
    work: Path,
    repo: Repository,
    versions: list[tuple[str, Path]],
    label: str,
    url: str,
    options: dict[str, str],
    reps: int,
) -> dict[str, Any]:
    from modelreg import remote_config, sync

    sent: list[int] = []
    client = None
    if label == "s3":
        import boto3

        client = boto3.client("s3", endpoint_url=options["endpoint_url"])
        client.create_bucket(Bucket="bench")

    def reset_remote() -> None:
        if client is not None:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket="bench"):
                for item in page.get("Contents", []):
                    client.delete_object(Bucket="bench", Key=item["Key"])
        else:
            fresh(Path(url))
            Path(url).rmdir()
        shutil.rmtree(repo.dir / "remotes", ignore_errors=True)
        if "bench" in remote_config.remotes(repo):
            remote_config.remove(repo, "bench")
        remote_config.add(repo, "bench", url, options.get("endpoint_url"))

    def push_each() -> None:
        total = 0
        for n in range(1, len(versions) + 1):
            total += sync.push(repo, "bench", [f"resnet18@v{n}"]).bytes
        sent.append(total)

    def reset_whole() -> None:
        if client is None:
            fresh(work / "whole-upload")

    def upload_whole() -> None:
        for i, (_f, path) in enumerate(versions):
            if client is not None:
                client.put_object(
                    Bucket="bench", Key=f"whole/{i}/{path.name}", Body=path.read_bytes()
                )
            else:
                subprocess.run(["cp", str(path), str(work / "whole-upload")], check=True)
        if client is None:
            subprocess.run(["sync"], check=True)

    t = interleaved({"push": (reset_remote, push_each), "whole": (reset_whole, upload_whole)}, reps)
    whole_bytes = sum(p.stat().st_size for _f, p in versions)
    return {
        f"{label}_bytes_sent": sent[-1],
        f"{label}_sent_vs_whole": sent[-1] / whole_bytes,
        f"{label}_push_s": t["push"],
        f"{label}_whole_s": t["whole"],
        f"{label}_push_vs_whole_time": t["push"] / t["whole"],
    }


def push_figures(work: Path, seq: list[tuple[str, Path]], reps: int) -> dict[str, Any]:
    """Push ResNet-18 v1..v4 one version at a time, as a user would after each register,
    against uploading the four files whole, to a folder remote and to S3 (moto)."""
    versions = [(f, p) for f, p in seq if f == "resnet18"][:4]
    repo = register_all(fresh(work / "push-src"), versions)
    out: dict[str, Any] = {"whole_bytes": sum(p.stat().st_size for _f, p in versions)}
    targets: list[tuple[str, str, dict[str, str]]] = [("folder", str(work / "push-remote"), {})]
    moto = _start_moto()
    if moto is not None:
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        targets.append(("s3", "s3://bench/team", {"endpoint_url": moto[1]}))
    try:
        for label, url, options in targets:
            out.update(_push_one(work, repo, versions, label, url, options, reps))
    finally:
        if moto is not None:
            moto[0].terminate()
            moto[0].wait(timeout=20)
    return out
