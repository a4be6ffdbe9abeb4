"""Remotes: where a team's registry lives. ``open_remote`` turns a configured URL into one."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import InvalidNameError
from .base import Remote
from .folder import FolderRemote

REMOTE_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,63}")


def check_remote_name(name: str) -> str:
    if not REMOTE_NAME_RE.fullmatch(name):
        raise InvalidNameError(
            f"invalid remote name {name!r}",
            hint="use letters, digits, '.', '_' or '-', starting with a letter",
        )
    return name


def normalize_url(url: str) -> str:
    """Check a remote URL; a folder path becomes absolute."""
    if url.startswith("s3://"):
        from .s3 import BUCKET_RE

        bucket, _, _prefix = url[len("s3://") :].partition("/")
        if not BUCKET_RE.fullmatch(bucket):
            raise InvalidNameError(
                f"invalid S3 bucket name {bucket!r} in {url!r}",
                hint="bucket names are 3-63 lowercase letters, digits, '.' or '-'",
            )
        return url.rstrip("/")
    if url.startswith("file://"):
        url = url[len("file://") :]
    if not url or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", url):
        raise InvalidNameError(
            f"unsupported remote URL {url!r}",
            hint="use s3://BUCKET/PREFIX or a folder path",
        )
    return str(Path(url).expanduser().absolute())


def open_remote(
    url: str, options: dict[str, Any] | None = None, lock_timeout: float = 60
) -> Remote:
    options = options or {}
    url = normalize_url(url)
    if url.startswith("s3://"):
        from .s3 import S3Remote

        bucket, _, prefix = url[len("s3://") :].partition("/")
        return S3Remote(bucket, prefix, endpoint_url=options.get("endpoint_url"))
    return FolderRemote(Path(url), lock_timeout)


__all__ = ["Remote", "check_remote_name", "normalize_url", "open_remote"]
