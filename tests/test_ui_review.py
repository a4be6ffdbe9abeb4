"""A hostile review of ``modelreg ui`` and ``modelreg report``: markup in every string a user
or a crafted file can put in a record, metrics at the float limits, odd URLs and Host
headers, and the command-line failures of the two commands. Over real HTTP against the real
server, and in headless Chromium where what matters is what a browser makes of the page."""

from __future__ import annotations

import contextlib
import html.parser
import json
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelreg import ModelRegistry
from modelreg.ui import make_server, url_of

from .test_ui import fetch
from .test_ui_browser import browser, visit  # noqa: F401 - the browser fixture
from .ui_registry import _add_card

EVIL = '"\'><script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
CARD = (
    f"# Card {EVIL}\n\n[click](javascript:window.__xss=3) "
    f'[quote](https://e.org/"onmouseover="window.__xss=4) {EVIL}\n\n- `{EVIL}`\n'
)


# each took the server's thread for hours before the fix (cubic, quadratic, quadratic)
SLOW_CARD = "# a" + " \t" * 200_000 + "x\n\n" + "[" * 400_000 + "\n\nthe end\n"
LONG_NUMBER = "1" * 200_000 + "x"


def _safetensors(path: Path, names: list[str]) -> Path:
    """A real safetensors file whose header names the tensors ``names`` (any text)."""
    header = {
        n: {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]}
        for i, n in enumerate(names)
    }
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(4 * len(names)))
    return path


@pytest.fixture(scope="module")
def hostile_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ui-review") / "registry"
    root.mkdir()
    src = root / "src"
    src.mkdir()
    registry = ModelRegistry(root)
    for n, extreme in enumerate((1e308, -1e308), start=1):
        registry.register(
            "evil",
            _safetensors(src / f"e{n}.safetensors", [EVIL, f"plain{n}"]),
            metrics={EVIL: float(n), "extreme": extreme},
            params={EVIL: EVIL, "lr": "3e-4"},
            description=EVIL,
            dataset=EVIL,
            framework=EVIL,
            architecture=EVIL,
        )
    folder = src / "folder"
    folder.mkdir()
    (folder / (EVIL.replace("/", "_") + ".bin")).write_bytes(b"weights")
    _safetensors(folder / "model.safetensors", ["w"])
    registry.register("evildir", folder, description=EVIL, parent="evil@v2")
    registry.tag("evil", "v1", "production", message=EVIL)  # shown in the tag history
    _add_card("evil", root, CARD)
    registry.register(
        "slow",
        _safetensors(src / "slow.safetensors", ["w"]),
        params={"lr": LONG_NUMBER},
        description="a card and a param made to make regular expressions backtrack",
    )
    _add_card("slow", root, SLOW_CARD)
    return root


@pytest.fixture(scope="module")
def hostile_url(hostile_root: Path) -> Iterator[str]:
    server = make_server(hostile_root, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield url_of(server)
    server.shutdown()
    server.server_close()


ELEMENTS = set(
    [
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "header",
        "span",
        "a",
        "main",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "p",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "code",
        "pre",
        "div",
        "svg",
        "line",
        "text",
        "polyline",
        "circle",
        "rect",
        "figure",
        "figcaption",
        "form",
        "label",
        "input",
        "button",
        "ul",
        "ol",
        "li",
        "section",
    ]
)


class _Markup(html.parser.HTMLParser):
    """Every element and attribute a page holds that user text could have smuggled in."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ELEMENTS:
            self.problems.append(("element", tag))
        for key, value in attrs:
            if key.startswith("on"):
                self.problems.append((key, value))
            if key in ("href", "action") and value is not None:
                parsed = urllib.parse.urlsplit(value)
                if parsed.scheme not in ("", "http", "https") or value.startswith("//"):
                    self.problems.append((key, value))
                if parsed.scheme and key == "href" and not value.startswith("https://e.org/"):
                    self.problems.append((key, value))


HOSTILE_PAGES = [
    "/",
    "/m/evil",
    "/m/evil/v1",
    "/m/evil/v2",
    "/m/evildir",
    "/m/evildir/v1",
    "/compare?a=evil@v1&b=evil@v2",
    "/compare?a=evil@v2&b=evildir@v1",
    "/storage",
    "/m/evil?" + urllib.parse.urlencode({"where": f"dataset={EVIL}", "sort": f"-{EVIL}"}),
]


@pytest.mark.parametrize("path", HOSTILE_PAGES)
def test_markup_in_every_user_string_stays_text(hostile_url: str, path: str) -> None:
    """Tensor names from a crafted header, a file name in a folder model, params, metric
    names, dataset, framework, architecture, description, card and the query itself."""
    status, _h, body = fetch(hostile_url, path)
    assert status == 200, body[-500:]
    parser = _Markup()
    parser.feed(body)
    assert parser.problems == []
    if path not in ("/", "/storage"):  # the pages that show user text
        assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in body
    if path == "/m/evil":
        history = body[body.index('id="tag-history"') :]
        assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in history  # the -m message


def test_the_report_of_hostile_strings_has_no_markup_from_them(
    hostile_root: Path, run, tmp_path: Path
) -> None:
    out = tmp_path / "r.html"
    assert run("-C", hostile_root, "report", "-o", out).exit_code == 0
    parser = _Markup()
    parser.feed(out.read_text())
    assert parser.problems == []


def _svg_numbers(body: str) -> list[str]:
    """Every attribute of the SVG charts that must be a finite number."""
    charts = re.findall(r"<svg.*?</svg>", body, re.S)
    assert charts
    found = []
    for chart in charts:
        found += re.findall(r'\s(?:cx|cy|x|y|x1|x2|y1|y2|width|height)="([^"]*)"', chart)
        found += [
            p for pts in re.findall(r'points="([^"]*)"', chart) for p in re.split("[ ,]", pts)
        ]
    return found


def test_a_chart_of_metrics_at_the_float_limits_has_finite_coordinates(hostile_url: str) -> None:
    """-1e308 and 1e308: their difference overflows to infinity, which made every y 'nan'."""
    status, _h, body = fetch(hostile_url, "/m/evil")
    assert status == 200
    chart = re.search(r'<svg[^>]*data-metric="extreme".*?</svg>', body, re.S)
    assert chart is not None
    assert len(re.findall(r"<circle", chart.group())) == 2
    numbers = _svg_numbers(body)
    bad = [n for n in numbers if not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", n)]
    assert bad == []
    ys = [float(y) for y in re.findall(r'cy="([^"]*)"', chart.group())]
    assert ys[0] < ys[1]  # 1e308 drawn above -1e308


def test_the_chart_at_the_float_limits_draws_without_browser_errors(
    browser: Any,  # noqa: F811 - the fixture imported above
    hostile_url: str,
) -> None:
    logs = visit(browser, hostile_url.rstrip("/") + "/m/evil")
    problems = [e for e in logs if e["level"] in ("SEVERE", "WARNING")]
    assert problems == []
    assert browser.execute_script("return window.__xss") is None


def test_a_hostile_card_runs_nothing_in_a_browser(
    browser: Any,  # noqa: F811 - the fixture imported above
    hostile_url: str,
) -> None:
    from selenium.webdriver.common.by import By

    visit(browser, hostile_url.rstrip("/") + "/m/evil/v2")
    hrefs = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "a")]
    assert not [h for h in hrefs if h and not h.startswith(("http://127.0.0.1", "https://e.org/"))]
    for element in browser.find_elements(By.CSS_SELECTOR, "a[href^='https://e.org/']"):
        assert element.get_attribute("onmouseover") is None
    assert browser.execute_script("return window.__xss") is None


def test_a_query_with_a_unicode_digit_is_shown_as_a_problem_not_a_500(hostile_url: str) -> None:
    query = urllib.parse.urlencode({"where": "version>=²"})
    status, _h, body = fetch(hostile_url, f"/m/evil?{query}")
    assert status == 200
    assert 'id="query-error"' in body and "internal error" not in body


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("LOCALHOST", 200),
        ("Localhost:1", 200),
        ("[::1]", 200),
        ("[::1]:80", 200),
        ("evil.example", 403),
        ("127.0.0.1.evil.example", 403),
        ("", 403),
    ],
)
def test_the_host_header_is_read_as_a_host(hostile_url: str, host: str, status: int) -> None:
    """Host names are case-blind and an IPv6 literal keeps its brackets; a name the page
    came through (DNS rebinding) is still refused."""
    assert fetch(hostile_url, "/", host=host or " ")[0] == status


# --- the commands ---------------------------------------------------------------------------
def _one_line_error(result: Any, starts: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(starts), result.stderr


def test_report_into_a_missing_folder(hostile_root: Path, run, tmp_path: Path) -> None:
    target = tmp_path / "missing" / "r.html"
    result = run("-C", hostile_root, "report", "-o", target)
    _one_line_error(result, f"error: cannot write the report to {target}: ")
    assert ".tmp" not in result.stderr and "-o" in result.stderr
    assert not (tmp_path / "missing").exists()


def test_report_over_a_folder(hostile_root: Path, run, tmp_path: Path) -> None:
    result = run("-C", hostile_root, "report", "-o", tmp_path)
    _one_line_error(result, f"error: cannot write the report to {tmp_path}: it is a folder")
    assert list(tmp_path.iterdir()) == []


def test_report_under_a_file(hostile_root: Path, run, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("kept")
    result = run("-C", hostile_root, "report", "-o", blocker / "r.html")
    _one_line_error(result, "error: cannot write the report to ")
    assert blocker.read_text() == "kept" and list(tmp_path.iterdir()) == [blocker]


def test_ui_on_a_host_it_cannot_use_names_the_host(hostile_root: Path, run) -> None:
    result = run("-C", hostile_root, "ui", "--host", "no-such-host.invalid", "--port", "0")
    _one_line_error(result, "error: cannot listen on no-such-host.invalid:0")
    assert "--host" in result.stderr and "--port" not in result.stderr


@contextlib.contextmanager
def _ui_command(root: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The real ``modelreg ui`` in its own process, and its first line; killed at the end
    unless the block stopped it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelreg", "ui", "--port", "0", "--quiet", *args],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc, proc.stdout.readline()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def _first_lines(root: Path, *args: str) -> tuple[str, str]:
    """The command's first line on stdout and its stderr, stopped with Ctrl-C."""
    with _ui_command(root, *args) as (proc, line):
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    return line, err


def test_ui_on_another_loopback_address_does_not_warn(hostile_root: Path) -> None:
    line, err = _first_lines(hostile_root, "--host", "127.0.0.2")
    assert line.startswith("Serving ") and "http://127.0.0.2:" in line
    assert "warning" not in err


def test_ui_on_every_address_warns(hostile_root: Path) -> None:
    line, err = _first_lines(hostile_root, "--host", "0.0.0.0")
    assert line.startswith("Serving ")
    assert "warning: listening on 0.0.0.0: other machines can read this registry" in err


def test_ui_on_a_busy_port_of_another_host_names_the_port(hostile_root: Path, run) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.2", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("-C", hostile_root, "ui", "--host", "127.0.0.2", "--port", port)
    _one_line_error(result, f"error: cannot listen on 127.0.0.2:{port}")
    assert "--port" in result.stderr


def test_a_filter_of_thousands_of_expressions_is_refused_not_run(hostile_url: str) -> None:
    """Each expression is tried on every version: 12,000 of them fit in a URL, which took
    half a minute of CPU for a family of 1,000 versions (a page elsewhere can send that)."""
    query = urllib.parse.urlencode({"where": "; ".join(["extreme>0"] * 3000)})
    status, _h, body = fetch(hostile_url, f"/m/evil?{query}")
    assert status == 200
    error = re.search(r'id="query-error">([^<]*)<', body)
    assert error is not None and error.group(1).startswith("3,000 expressions; a filter here")
    few = urllib.parse.urlencode({"where": "; ".join(["extreme>0"] * 20)})
    status, _h, body = fetch(hostile_url, f"/m/evil?{few}")
    assert 'id="query-error"' not in body and "1 of 2 versions match" in body


@contextlib.contextmanager
def _served(root: Path) -> Iterator[str]:
    """The URL of ``modelreg ui`` in its own process: a regular expression that backtracks
    holds the GIL, so in this process it would freeze the test instead of failing it."""
    with _ui_command(root) as (_proc, line):
        match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        assert match is not None
        yield match.group(1)


def test_a_card_made_to_backtrack_renders_at_once(hostile_root: Path) -> None:
    """A heading line of 400,000 spaces and tabs and a line of 400,000 '[': the regular
    expressions they met backtracked for hours (holding the GIL: the whole server froze);
    fetch gives up after 30 s."""
    with _served(hostile_root) as url:
        status, _h, body = fetch(url, "/m/slow/v1")
    assert status == 200
    assert "<h3>a" in body and "<p>the end</p>" in body


def test_sorting_by_a_long_run_of_digits_answers_at_once(hostile_root: Path) -> None:
    """Reading '111...1x' (200,000 digits) as a number backtracked quadratically."""
    with _served(hostile_root) as url:
        status, _h, body = fetch(url, "/m/slow?sort=-lr")
    assert status == 200 and 'id="query-error"' not in body
    assert 'href="/m/slow/v1"' in body


def test_an_idle_connection_is_closed(hostile_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection that never sends a request (or keeps one alive) held its thread forever:
    enough of them, from a page elsewhere, and the server runs out of threads."""
    from modelreg.ui import server as ui_server

    monkeypatch.setattr(ui_server, "REQUEST_TIMEOUT", 0.5, raising=False)
    server = make_server(hostile_root, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with socket.create_connection(server.server_address[:2], timeout=30) as idle:
            assert idle.recv(1) == b""  # closed by the server, long before this side's 30 s
    finally:
        server.shutdown()
        server.server_close()
