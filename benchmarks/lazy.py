"""Lazy clone figures: a registry of 20 versions on S3 (moto, requests counted on the server's
side), cloned lazily; the clone's size, what a ``get`` of one version adds against that
version's stored bytes, and the requests a second registry sharing the cache makes.

``python -m benchmarks.lazy [--smoke]`` (results in benchmarks/results/lazy.json).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from .run import fresh
from .s3counter import requests, since, start
from .scale import Targets, arguments, publish

VERSIONS = 20
TARGETS: Targets = [
    ("lazy clone of 20 versions: .modelreg <= 2 MB", ("lazy", "clone_bytes"), 2 << 20),
    ("get of one version adds <= 1.1 x its stored bytes", ("lazy", "get_added_ratio"), 1.1),
    ("second registry, same version: <= 3 data requests", ("lazy", "second_get_requests"), 3),
]


def _versions(work: Path, size: int) -> list[Path]:
    """Version n rewrites one eighth of the file (a fine-tune touching some layers)."""
    rng = __import__("random").Random(7)
    data = bytearray(rng.randbytes(size))
    out = []
    for n in range(VERSIONS):
        at = (n % 8) * (size // 8)
        data[at : at + size // 8] = rng.randbytes(size // 8)
        path = work / f"v{n + 1}.bin"
        path.write_bytes(data)
        out.append(path)
    return out


def _stored(repo: Any, spec: str) -> int:
    from modelreg.files import chunk_ids

    rec = repo.lookup(spec)
    return sum(repo.objects.size(oid) for oid in set(chunk_ids(repo.objects.get_json(rec["root"]))))


def _disk(work: Path, reg: Path) -> int:
    from modelreg.maintenance import disk_usage

    cache = work / "cache"
    return disk_usage(reg / ".modelreg") + (disk_usage(cache) if cache.exists() else 0)


def lazy_figures(work: Path, size: int) -> dict[str, Any]:
    import warnings

    import boto3

    from modelreg import ModelRegistry
    from modelreg.maintenance import disk_usage

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["MODELREG_CACHE"] = str(work / "cache")
    proc, endpoint = start()
    try:
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="lazy")
        url = "s3://lazy/team"
        alice = ModelRegistry(work / "alice")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # plain bytes, not a model format
            for path in _versions(work, size):
                alice.register("m", path)
        alice.add_remote("origin", url, endpoint)
        alice.push()
        out: dict[str, Any] = {"versions": VERSIONS, "file_bytes": size}
        out["source_store_bytes"] = disk_usage(alice.repo.dir / "objects")

        started = time.monotonic()
        bob = ModelRegistry.clone(url, work / "bob", endpoint)
        out["clone_s"] = time.monotonic() - started
        out["clone_bytes"] = disk_usage(bob.repo.dir)
        spec = f"m@v{VERSIONS // 2}"
        out["version_stored_bytes"] = stored = _stored(alice.repo, spec)
        before, counts = _disk(work, bob.root), requests(endpoint)
        started = time.monotonic()
        bob.get("m", f"v{VERSIONS // 2}")
        out["get_s"] = time.monotonic() - started
        out["get_requests"] = sum(since(counts, requests(endpoint)).values())
        out["get_added_bytes"] = added = _disk(work, bob.root) - before
        out["get_added_ratio"] = added / stored

        carol = ModelRegistry.clone(url, work / "carol", endpoint)
        counts = requests(endpoint)
        carol.get("m", f"v{VERSIONS // 2}")
        out["second_get_requests"] = sum(since(counts, requests(endpoint)).values())
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        os.environ.pop("MODELREG_CACHE", None)


def main(argv: list[str] | None = None) -> int:
    args = arguments(__doc__, "lazy", argv)
    work = fresh(args.workdir)
    size = (1 if args.smoke else 16) << 20
    figures = {"lazy": lazy_figures(work, size)}
    publish(args, 1, figures, TARGETS)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
