"""Push figures: bytes sent and time to push ResNet-18 v1..v4 against uploading the files."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelreg.repo import Repository

from .run import fresh, interleaved, register_all


def _start_moto() -> tuple[subprocess.Popen[bytes], str] | None:
    """A local S3 API server (moto, counting the requests it serves: s3counter.py) for the
    S3 half of the push figures, if installed."""
    import importlib.util

    if importlib.util.find_spec("moto") is None:
        return None
    from .s3counter import start

    try:
        return start()
    except RuntimeError:
        return None


def request_figures(work: Path, seq: list[tuple[str, Path]], endpoint: str) -> dict[str, Any]:
    """Requests the S3 server served, counted on its side, for: one push of every version
    of ``seq``; a push with nothing to do; a clone; a pull with nothing to do; the same
    versions pushed one at a time (after each register, as a user would); and how many of
    all those requests listed ``objects/`` (a listing of every object: never)."""
    import boto3

    from modelreg import remote_config, sync

    from .s3counter import requests, since

    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="counted")
    options = {"endpoint_url": endpoint}
    out: dict[str, Any] = {"versions": len(seq)}
    lists = 0

    def counted(label: str, step: Callable[[], object]) -> None:
        nonlocal lists
        before = requests(endpoint)
        step()
        got = since(before, requests(endpoint))
        out[f"{label}_requests"] = sum(got.values())
        lists += got.get("LIST objects/", 0)

    repo = register_all(fresh(work / "requests-src"), seq)
    remote_config.add(repo, "counted", "s3://counted/all", endpoint)
    counted("push", lambda: sync.push(repo, "counted"))
    counted("noop_push", lambda: sync.push(repo, "counted"))
    dest = work / "requests-clone"
    shutil.rmtree(dest, ignore_errors=True)
    clone: list[Repository] = []
    counted("clone", lambda: clone.append(sync.clone("s3://counted/all", dest, options)[0]))
    counted("noop_pull", lambda: sync.pull(clone[0], "origin"))
    each, _ = Repository.init(fresh(work / "requests-each"))
    remote_config.add(each, "counted", "s3://counted/each", endpoint)
    total = 0
    for family, path in seq:
        each.register(family, path)
        before = requests(endpoint)
        sync.push(each, "counted", [family])
        total += sum(since(before, requests(endpoint)).values())
    out["push_each_requests"] = total
    out["object_listings"] = lists
    return out


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
        if moto is not None:
            counts = request_figures(work, seq, moto[1])
            out.update({f"s3_{k}": v for k, v in counts.items()})
    finally:
        if moto is not None:
            moto[0].terminate()
            moto[0].wait(timeout=20)
    return out


def many_objects_figures(work: Path, endpoint: str, count: int) -> dict[str, Any]:
    """A remote that already holds ``count`` objects (one pack whose index names them all),
    then two pushes of a new small version each: the requests each costs, by kind, and its
    time. The first push reads the big index once (and caches it); neither lists objects."""
    import boto3

    from modelreg import packs, remote_config, sync
    from modelreg.hashing import oid_of
    from modelreg.remotes.base import pack_key

    from .s3counter import requests, since

    client = boto3.client("s3", endpoint_url=endpoint)
    bucket = f"many-{count}"
    client.create_bucket(Bucket=bucket)
    started = time.monotonic()
    entries = {
        oid_of(i.to_bytes(8, "little")): packs.Entry(len(packs.PACK_MAGIC), 0, 0, "raw", 0)
        for i in range(count)
    }
    index = packs.build_index(entries, 0, len(packs.PACK_MAGIC))
    name = index[-packs.SUM_LEN :].hex()
    prefix = "team/"
    client.put_object(Bucket=bucket, Key=prefix + "modelreg-remote.yaml", Body=b"format: 1\n")
    client.put_object(Bucket=bucket, Key=prefix + pack_key(name, "pack"), Body=packs.PACK_MAGIC)
    client.put_object(Bucket=bucket, Key=prefix + pack_key(name, "idx"), Body=index)
    out: dict[str, Any] = {"remote_objects": count, "index_bytes": len(index)}
    out["build_s"] = time.monotonic() - started
    repo, _ = Repository.init(fresh(work / f"many-{count}"))
    remote_config.add(repo, "many", f"s3://{bucket}/team", endpoint)
    for n in (1, 2):
        path = work / f"many-{n}.bin"
        path.write_bytes(os.urandom(1 << 20))
        repo.register("m", path)
        before = requests(endpoint)
        t = time.monotonic()
        sync.push(repo, "many")
        out[f"push{n}_s"] = time.monotonic() - t
        got = since(before, requests(endpoint))
        out[f"push{n}_requests"] = sum(got.values())
        out[f"push{n}_object_listings"] = got.get("LIST objects/", 0) + got.get("LIST team/", 0)
    return out


if __name__ == "__main__":
    import json
    import sys
    import tempfile

    from .s3counter import start

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    proc, url = start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(many_objects_figures(Path(tmp), url, int(sys.argv[1])), indent=1))
    finally:
        proc.terminate()
        proc.wait(timeout=20)
