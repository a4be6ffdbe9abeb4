"""``modelreg ui``: a local, read-only web app over the registry, on the standard library's
ThreadingHTTPServer. GET and HEAD only; every page is built from the library's read
functions per request (a new ``Repository`` each time, so no state is shared between
threads and a register in another shell shows up on reload). No URL reaches a file: names
are validated before they are looked up, and there are no static files to serve."""

from __future__ import annotations

import http.server
import os
import socket
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import names
from ..errors import InvalidInputError, ModelregError, NotFoundError
from ..repo import Repository
from . import data, detail, pages
from .html import Markup, el, page

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


Params = dict[str, list[str]]


class App:
    """Routes a path and its query to (status, title, body)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.links = pages.Links()

    def render(self, path: str, params: Params) -> tuple[int, Markup]:
        try:
            title, body = self.route(path, params)
            status = 200
        except HttpError as e:
            status, title, body = e.status, "error", el("p", str(e), class_="error")
        except NotFoundError as e:
            status, title, body = 404, "not found", el("p", str(e), class_="error")
        except InvalidInputError as e:
            status, title, body = 400, "bad request", el("p", str(e), class_="error")
        except ModelregError as e:
            status, title, body = 500, "error", el("p", str(e), class_="error")
        except Exception as e:  # one page failing must not take the server down
            if os.environ.get("MODELREG_DEBUG") == "1":
                raise
            words = f"internal error ({type(e).__name__}: {e}); rerun with MODELREG_DEBUG=1"
            status, title, body = 500, "error", el("p", words, class_="error")
        return status, page(f"{title} · modelreg", body, self.links.nav())

    def route(self, path: str, params: Params) -> tuple[str, Markup]:
        repo = Repository(self.root)
        parts = [urllib.parse.unquote(p) for p in path.split("/") if p]
        if not parts:
            fams = data.families(repo)
            return "families", pages.home(fams, self.links)
        if parts == ["storage"]:
            fams = data.families(repo)
            return "storage", pages.storage(data.storage(repo), fams, self.links)
        if parts == ["compare"]:
            return self._compare(repo, params)
        if parts[0] == "m" and len(parts) in (2, 3):
            name = names.check_family(parts[1])
            if len(parts) == 2:
                everything = data.families(repo)
                fam = next((f for f in everything if f.name == name), None)
                if fam is None:
                    repo.check_family_exists(name)
                    raise HttpError(404, f"{name} has no versions")
                body = pages.family(
                    fam, self.links, everything, params.get("where", []), _one(params, "sort")
                )
                history = detail.tag_history(data.tag_history(repo, name))
                return name, Markup(body + history)
            rec = repo.lookup(f"{name}@{parts[2]}")
            rows = list(repo.versions(name))
            kids = data.children(data.families(repo)).get(data.label(rec), [])
            return data.label(rec), detail.version(repo, rec, rows, self.links, kids)
        raise HttpError(404, f"no page at {path}; start from /")

    def _compare(self, repo: Repository, params: Params) -> tuple[str, Markup]:
        a, b = _one(params, "a"), _one(params, "b")
        form = detail.compare_form(self.links, a or "", b or "")
        if not a or not b:
            return "compare", Markup(el("h1", "Compare two versions") + form)
        compared = data.compare(repo, a, b)
        return f"{a} → {b}", Markup(form + detail.compare(compared, self.links))


def _one(params: Params, key: str) -> str | None:
    values = params.get(key)
    return values[-1] if values else None


def handler_for(
    app: App, allowed_hosts: set[str] | None, log: Callable[[str], None] | None = None
) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "modelreg-ui"
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._answer(send_body=True)

        def do_HEAD(self) -> None:
            self._answer(send_body=False)

        def _answer(self, send_body: bool) -> None:
            url = urllib.parse.urlsplit(self.path)
            host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
            if allowed_hosts is not None and host not in allowed_hosts:
                # a page from elsewhere reaching a local server through a name it controls
                status, body = 403, page("refused", el("p", "unexpected Host header"))
            else:
                try:
                    params = urllib.parse.parse_qs(url.query, max_num_fields=50)
                except ValueError:
                    params = None
                if params is None:
                    status, body = 400, page("refused", el("p", "too many query parameters"))
                else:
                    status, body = app.render(url.path, params)
            raw = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(raw)))
            for key, value in HEADERS.items():
                self.send_header(key, value)
            self.end_headers()
            if send_body:
                self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:
            if log is not None:
                log(f"{self.address_string()} {format % args}")

    return Handler


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


class Server6(Server):
    address_family = socket.AF_INET6


def make_server(
    root: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    log: Callable[[str], None] | None = None,
) -> Server:
    """A server over the registry at ``root``, bound but not yet serving (``port`` 0: any
    free port; ``server.server_address`` says which)."""
    Repository(root)  # refuse a folder that is not a registry before binding
    allowed = LOCAL_HOSTS | {host} if host in LOCAL_HOSTS else None
    kind = Server6 if ":" in host else Server
    return kind((host, port), handler_for(App(root), allowed, log))


def url_of(server: Server) -> str:
    host, port = server.server_address[:2]
    host = host.decode() if isinstance(host, bytes) else str(host)
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def render_time(root: Path, path: str) -> float:
    """Seconds to build one page (the benchmark's probe)."""
    app = App(root)
    start = time.perf_counter()
    parsed = urllib.parse.urlsplit(path)
    status, _ = app.render(parsed.path, urllib.parse.parse_qs(parsed.query))
    if status != 200:
        raise ModelregError(f"{path} answered {status}")
    return time.perf_counter() - start
