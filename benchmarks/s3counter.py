"""A local S3 API server (moto) that counts the requests it serves, on the server's side.

``python -m benchmarks.s3counter HOST PORT`` serves moto's S3 with a WSGI middleware in
front: every request is counted (method and the S3 call it is: ``GET``, ``GET ?list-type``,
``PUT ?partNumber``...); ``GET /__requests`` answers the counts so far as JSON and is not
counted itself. ``start()`` runs it in a child process and ``requests(url)`` reads it.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

COUNT_PATH = "/__requests"
_QUERY_KINDS = ("uploads", "uploadId", "partNumber", "delete", "tagging")


def _kind(environ: dict[str, Any]) -> str:
    """``LIST <last folder of the prefix>/`` for a listing, else the method and the S3
    sub-resources named in the query (``PUT ?uploadId&partNumber``)."""
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if "list-type" in query:
        prefix = query.get("prefix", [""])[0].rstrip("/")
        return f"LIST {prefix.rsplit('/', 1)[-1]}/"
    words = [k for k in _QUERY_KINDS if k in query]
    method = str(environ.get("REQUEST_METHOD", "?"))
    return f"{method} ?{'&'.join(words)}" if words else method


class Counting:
    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") == COUNT_PATH:
            with self.lock:
                body = json.dumps(dict(self.counts)).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        with self.lock:
            self.counts[_kind(environ)] += 1
        return self.app(environ, start_response)


def main(argv: list[str]) -> None:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    host, port = argv[0], int(argv[1])
    app = Counting(DomainDispatcherApplication(create_backend_app))
    run_simple(host, port, app, threaded=True, request_handler=MotoRequestHandler)


def start(env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """The server in a child process, once it answers: (process, endpoint URL)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.s3counter", "127.0.0.1", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            requests(url)
            return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("the counting S3 server did not start") from None
            time.sleep(0.1)


def requests(url: str) -> dict[str, int]:
    """Requests served so far, by kind (see ``_kind``)."""
    with urllib.request.urlopen(url + COUNT_PATH, timeout=5) as r:
        return dict(json.loads(r.read()))


def since(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The requests between two readings, by kind (kinds with none left out)."""
    return {k: n - before.get(k, 0) for k, n in after.items() if n - before.get(k, 0)}


if __name__ == "__main__":
    main(sys.argv[1:])
