"""Remote retention figures (issue 10, item 5): the bucket bytes ``rm --remote`` then
``gc --remote`` frees for a version whose data no other version shares, for a version alone
in its pack (the pack is deleted) and for one sharing a pack with others (the pack is
repacked), and the requests each step costs, counted on the S3 server's side
(``benchmarks/s3counter.py``). Every remaining version is cloned and compared byte for byte.

    python -m benchmarks.retention [SIZE_MIB]     # default 64 MiB a version
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from modelreg import ModelRegistry
from modelreg.hashing import hash_file
from modelreg.repo import Repository

from .run import fresh


def _bucket_bytes(client: Any, bucket: str) -> int:
    total = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        total += sum(int(item["Size"]) for item in page.get("Contents", []))
    return total


def retention_figures(work: Path, endpoint: str, size: int) -> dict[str, Any]:
    """Family ``alone``: v1..v3 pushed one at a time (a pack each); family ``mixed``: v1..v3
    pushed at once (one pack). ``alone@v2`` and ``mixed@v2`` are removed and collected."""
    import boto3

    from modelreg import remote_config, remote_gc, sync

    from .s3counter import requests, since

    client = boto3.client("s3", endpoint_url=endpoint)
    bucket = f"retention-{os.getpid()}"
    client.create_bucket(Bucket=bucket)
    repo, _ = Repository.init(fresh(work / "retention"))
    remote_config.add(repo, "origin", f"s3://{bucket}/team", endpoint)
    files: dict[str, Path] = {}
    out: dict[str, Any] = {"version_bytes": size}
    for family in ("alone", "mixed"):
        for n in (1, 2, 3):
            path = work / f"{family}-{n}.bin"
            path.write_bytes(os.urandom(size))
            repo.register(family, path)
            files[f"{family}@v{n}"] = path
            if family == "alone":
                before = _bucket_bytes(client, bucket)
                sync.push(repo, "origin")
                if n == 2:
                    out["alone_v2_stored_bytes"] = _bucket_bytes(client, bucket) - before
        if family == "mixed":
            sync.push(repo, "origin")

    def counted(what: str, fn: Any) -> Any:
        before, t = requests(endpoint), time.monotonic()
        got = fn()
        out[f"{what}_s"] = round(time.monotonic() - t, 3)
        out[f"{what}_requests"] = sum(since(before, requests(endpoint)).values())
        return got

    for family in ("alone", "mixed"):
        spec = f"{family}@v2"
        counted(f"rm_{family}", lambda s=spec: remote_gc.remove(repo, "origin", s))
        before = _bucket_bytes(client, bucket)
        counted(f"dry_run_{family}", lambda: remote_gc.gc(repo, "origin", 0, dry_run=True))
        assert _bucket_bytes(client, bucket) == before
        plan = counted(f"gc_{family}", lambda: remote_gc.gc(repo, "origin", 0))
        out[f"gc_{family}_freed_bytes"] = before - _bucket_bytes(client, bucket)
        out[f"gc_{family}_deleted_packs"] = len(plan.dead_packs)
        out[f"gc_{family}_repacked_packs"] = len(plan.mixed_packs)
        del files[spec]
    out["freed_fraction_alone"] = round(
        out["gc_alone_freed_bytes"] / out["alone_v2_stored_bytes"], 4
    )
    out["freed_fraction_mixed"] = round(out["gc_mixed_freed_bytes"] / size, 4)
    clone = fresh(work / "clone")
    url = f"s3://{bucket}/team"
    counted("clone_after", lambda: sync.clone(url, clone, {"endpoint_url": endpoint}))
    copy = ModelRegistry(clone)
    out["mismatched_after_gc"] = sum(
        hash_file(Path(copy.get(*spec.split("@"))["file_path"])) != hash_file(path)
        for spec, path in files.items()
    )
    out["versions_checked"] = len(files)
    return out


if __name__ == "__main__":
    import json
    import sys
    import tempfile

    from .s3counter import start

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 64
    proc, url = start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(retention_figures(Path(tmp), url, mib << 20), indent=1))
    finally:
        proc.terminate()
        proc.wait(timeout=20)
