"""A remote in an S3-compatible bucket (AWS S3, MinIO, Cloudflare R2, ...).

Credentials, region and endpoint come from the standard AWS environment and config files
(``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``, ...);
a remote's own ``endpoint_url`` overrides them. Refs change only by conditional writes:
``If-None-Match: *`` to create, ``If-Match: <etag>`` to replace.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from ..errors import NotFoundError, RemoteError, RemoteMovedError
from ..hashing import is_oid
from ..refs import MAX_REFS_BYTES
from .base import (
    BLOCK,
    MARKER,
    MARKER_BODY,
    Remote,
    bounded,
    object_key,
    pack_names,
    ref_key,
    too_big,
    too_large,
)

T = TypeVar("T")
MULTIPART_ABOVE = 32 << 20  # a larger file goes up in parts (one request each)
PART = 16 << 20
PART_JOBS = 2  # parts in flight: PART_JOBS * PART bytes held
BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_DENIED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "403",
    "InvalidToken",
    "ExpiredToken",
    "AllAccessDisabled",
}


class S3Remote(Remote):
    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None = None) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise RemoteError("S3 remotes need boto3", hint="pip install 'modelreg[s3]'") from None
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        config = Config(
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
            max_pool_connections=32,
        )
        self.client = boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)
        self.endpoint = self.client.meta.endpoint_url

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Turn botocore's failures into one line that says what to fix."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
        )

        try:
            yield
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code == "NoSuchBucket" or (code == "404" and what == "opening the bucket"):
                raise RemoteError(
                    f"bucket {self.bucket!r} does not exist ({self.url})",
                    hint="create it, or fix the remote's URL",
                ) from None
            if code in _DENIED:
                raise RemoteError(
                    f"access denied to {self.url} while {what} ({code})",
                    hint="check the AWS credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE)",
                ) from None
            raise RemoteError(f"S3 error while {what} at {self.url}: {code or e}") from None
        except NoCredentialsError:
            raise RemoteError(
                f"no AWS credentials for {self.url}",
                hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE",
            ) from None
        except EndpointConnectionError:
            raise RemoteError(
                f"cannot reach the S3 endpoint {self.endpoint}",
                hint="check the network and the endpoint URL (--endpoint-url, AWS_ENDPOINT_URL_S3)",
            ) from None
        except BotoCoreError as e:
            raise RemoteError(f"S3 failure while {what} at {self.url}: {e}") from None

    def _call(self, what: str, fn: Callable[..., T], **kwargs: Any) -> T:
        with self._errors(what):
            return fn(Bucket=self.bucket, **kwargs)
        raise AssertionError("unreachable")

    def _missing(self, e: Exception) -> bool:
        from botocore.exceptions import ClientError

        return isinstance(e, ClientError) and str(e.response.get("Error", {}).get("Code")) in (
            "NoSuchKey",
            "404",
        )

    def _open(self, key: str, **kwargs: Any) -> dict[str, Any] | None:
        """The GetObject response (its body not yet read), or None when the key is absent."""
        from botocore.exceptions import ClientError

        what = "opening the bucket" if key == MARKER else f"reading {key}"
        with self._errors(what):
            try:
                return dict(
                    self.client.get_object(Bucket=self.bucket, Key=self.prefix + key, **kwargs)
                )
            except ClientError as e:
                if self._missing(e):
                    return None
                raise
        raise AssertionError("unreachable")

    def _get(self, key: str, limit: int = MAX_REFS_BYTES) -> tuple[bytes, str] | None:
        """A small key's bytes and ETag (None if absent); ValueError when it holds more than
        ``limit`` bytes, before reading them, so a hostile key cannot make us allocate."""
        r = self._open(key)
        if r is None:
            return None
        if int(r.get("ContentLength", 0)) > limit:
            r["Body"].close()
            raise ValueError(key)
        with self._errors(f"reading {key}"):
            data = r["Body"].read(limit + 1)
        if len(data) > limit:
            raise ValueError(key)
        return data, str(r["ETag"])

    def check(self, create: bool) -> None:
        """One request when the remote exists: the marker's GET also says whether the
        bucket does (NoSuchBucket)."""
        try:
            if self._get(MARKER) is not None:
                return
        except ValueError:
            pass  # a huge marker is not ours
        if not create:
            raise RemoteError(
                f"{self.url} is not a modelreg remote", hint="check the URL, or push to it first"
            )
        listed = self._call(
            "listing the prefix", self.client.list_objects_v2, Prefix=self.prefix, MaxKeys=1
        )
        if listed.get("KeyCount", 0):
            raise RemoteError(
                f"{self.url} is not empty and not a modelreg remote", hint="choose an empty prefix"
            )
        self._call(
            "marking the remote", self.client.put_object, Key=self.prefix + MARKER, Body=MARKER_BODY
        )

    def list_objects(self) -> set[str]:
        found: set[str] = set()
        base = self.prefix + "objects/"
        paginator = self.client.get_paginator("list_objects_v2")
        with self._errors("listing objects"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=base):
                for item in page.get("Contents", []):
                    rest = item["Key"][len(base) :].replace("/", "")
                    if is_oid(rest):
                        found.add(rest)
        return found

    def put_object(self, oid: str, data: bytes) -> None:
        self._call(
            f"uploading object {oid}",
            self.client.put_object,
            Key=self.prefix + object_key(oid),
            Body=data,
        )

    def put_file(self, oid: str, path: Path) -> None:
        with open(path, "rb") as body:
            self._call(
                f"uploading object {oid}",
                self.client.put_object,
                Key=self.prefix + object_key(oid),
                Body=body,
            )

    def iter_object(self, oid: str, limit: int | None = None) -> Iterator[bytes]:
        r = self._open(object_key(oid))
        if r is None:
            raise NotFoundError(
                f"object {oid} is missing on remote {self.url}",
                hint="push it again from a registry that has it",
            )
        if limit is not None and int(r.get("ContentLength", 0)) > limit:
            r["Body"].close()
            raise too_large(self.url, oid, limit)
        return bounded(self._stream(oid, r["Body"]), self.url, oid, limit)

    def _stream(self, oid: str, body: Any) -> Iterator[bytes]:
        with self._errors(f"downloading object {oid}"):
            try:
                yield from body.iter_chunks(BLOCK)
            finally:
                body.close()

    def list_packs(self) -> list[str]:
        base = self.prefix + "packs/"
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        with self._errors("listing packs"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=base):
                keys += [item["Key"][len(base) :] for item in page.get("Contents", [])]
        return pack_names(iter(keys))

    def read_key(self, key: str, limit: int) -> bytes | None:
        try:
            got = self._get(key, limit)
        except ValueError:
            raise too_large(self.url, key, limit) from None
        return None if got is None else got[0]

    def read_range(self, key: str, start: int, length: int) -> Iterator[bytes]:
        r = self._open(key, Range=f"bytes={start}-{start + length - 1}")
        if r is None or int(r.get("ContentLength", -1)) != length:
            if r is not None:
                r["Body"].close()
            raise RemoteError(
                f"{key} on remote {self.url} is missing or shorter than its index says",
                hint="push again from a registry that has its objects",
            )
        return bounded(self._stream(key, r["Body"]), self.url, key, length)

    def put_key_file(
        self,
        key: str,
        path: Path,
        journal: Path | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        size = path.stat().st_size
        if size <= MULTIPART_ABOVE:
            with open(path, "rb") as body:
                self._call(
                    f"uploading {key}", self.client.put_object, Key=self.prefix + key, Body=body
                )
            if progress:
                progress(size)
            return
        with self._errors(f"uploading {key}"):
            self._multipart(key, path, size, journal, progress)

    def _multipart(
        self,
        key: str,
        path: Path,
        size: int,
        journal: Path | None,
        progress: Callable[[int], None] | None,
    ) -> None:
        """Upload in parts, PART_JOBS at a time. The upload id goes to ``journal`` first; a
        rerun finds it there and sends only the parts the remote does not list with the
        right size and MD5 (a part's ETag)."""
        import hashlib

        from botocore.exceptions import ClientError

        full = self.prefix + key
        upload_id, done = None, {}
        if journal is not None and journal.exists():
            upload_id = json.loads(journal.read_text()).get("upload_id")
            try:
                listed = self.client.list_parts(Bucket=self.bucket, Key=full, UploadId=upload_id)
                done = {p["PartNumber"]: (p["Size"], p["ETag"].strip('"')) for p in listed["Parts"]}
            except ClientError:
                upload_id = None  # expired or aborted: start again
        if upload_id is None:
            made = self.client.create_multipart_upload(Bucket=self.bucket, Key=full)
            upload_id = made["UploadId"]
            if journal is not None:
                from .. import _fs

                _fs.atomic_write(journal, json.dumps({"upload_id": upload_id}).encode())
        count = (size + PART - 1) // PART

        def send(number: int) -> dict[str, Any]:
            start = (number - 1) * PART
            with open(path, "rb") as f:
                f.seek(start)
                data = f.read(min(PART, size - start))
            etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
            if done.get(number) != (len(data), etag):
                self._upload_part(full, upload_id, number, data)
            if progress:
                progress(len(data))
            return {"PartNumber": number, "ETag": f'"{etag}"'}

        with ThreadPoolExecutor(PART_JOBS) as pool:
            parts = list(pool.map(send, range(1, count + 1)))
        self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=full, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
        if journal is not None:
            os.unlink(journal)

    def _upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> None:
        self.client.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
        )

    def list_keys(self, prefix: str) -> dict[str, tuple[int, float]]:
        found: dict[str, tuple[int, float]] = {}
        paginator = self.client.get_paginator("list_objects_v2")
        with self._errors(f"listing {prefix}"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Contents", []):
                    key = item["Key"][len(self.prefix) :]
                    found[key] = (int(item["Size"]), item["LastModified"].timestamp())
        return found

    def delete_key(self, key: str) -> None:
        self._call(f"deleting {key}", self.client.delete_object, Key=self.prefix + key)

    def list_refs(self) -> list[str]:
        base = self.prefix + "refs/"
        names: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        with self._errors("listing refs"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=base):
                for item in page.get("Contents", []):
                    key = item["Key"][len(base) :]
                    if key.endswith(".yaml") and "/" not in key:
                        names.append(key[: -len(".yaml")])
        return sorted(names)

    def read_ref(self, name: str) -> tuple[bytes, str] | None:
        try:
            return self._get(ref_key(name))
        except ValueError:
            raise too_big(self.url, name) from None

    def read_side(self, key: str) -> tuple[bytes, str] | None:
        try:
            return self._get(key)
        except ValueError:
            raise RemoteError(
                f"{key} on remote {self.url} is larger than {MAX_REFS_BYTES >> 20} MiB",
                hint="it was not written by modelreg; remove it from the remote",
            ) from None

    def write_ref(self, name: str, data: bytes, token: str | None) -> None:
        self._swap(ref_key(name), f"the refs of {name!r}", f"refs of {name!r}", data, token)

    def write_side(self, key: str, data: bytes, token: str | None) -> None:
        self._swap(key, key, key, data, token)

    def _swap(self, key: str, what: str, moved: str, data: bytes, token: str | None) -> None:
        from botocore.exceptions import ClientError

        condition = {"IfMatch": token} if token else {"IfNoneMatch": "*"}
        with self._errors(f"updating {what}"):
            try:
                self.client.put_object(
                    Bucket=self.bucket, Key=self.prefix + key, Body=data, **condition
                )
            except ClientError as e:
                status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                code = str(e.response.get("Error", {}).get("Code", ""))
                if status in (409, 412) or code in (
                    "PreconditionFailed",
                    "ConditionalRequestConflict",
                ):
                    raise RemoteMovedError(
                        f"the remote {self.url} moved: {moved} changed"
                    ) from None
                raise
