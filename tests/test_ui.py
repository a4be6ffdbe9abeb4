"""``modelreg ui`` over HTTP and ``modelreg report``: what each page shows, escaping, paths
that must not reach a file, and the errors of the two commands. The browser-driven tests are
in test_ui_browser.py."""

from __future__ import annotations

import http.client
import re
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelreg.repo import Repository
from modelreg.ui import data, detail, make_server, markdown, url_of
from modelreg.ui.html import el, esc

from .ui_registry import RESNET_ACCURACY, XSS, build


@pytest.fixture(scope="session")
def ui_root(tmp_path_factory: pytest.TempPathFactory, torch_mod) -> Path:
    return build(tmp_path_factory.mktemp("ui") / "registry")["root"]


@pytest.fixture(scope="session")
def ui_url(ui_root: Path) -> Iterator[str]:
    server = make_server(ui_root, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url_of(server)
    server.shutdown()
    server.server_close()


def fetch(url: str, path: str, method: str = "GET", host: str | None = None):
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Host": host} if host else {}
    conn.request(method, path, headers=headers)
    response = conn.getresponse()
    body = response.read().decode("utf-8", "replace")
    conn.close()
    return response.status, dict(response.getheaders()), body


def test_home_lists_each_family_with_counts_latest_and_tags(ui_url: str) -> None:
    status, headers, body = fetch(ui_url, "/")
    assert status == 200
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    for name in ("resnet", "distilled", "unsafe", "xss-probe"):
        assert f'href="/m/{name}"' in body
    assert "production → v4" in body and "staging → v6" in body
    assert "4 families, 11 versions" in body
    assert "<script" not in body


def test_family_page_has_one_chart_point_per_version_and_marks_tags(ui_url: str) -> None:
    status, _h, body = fetch(ui_url, "/m/resnet")
    assert status == 200
    chart = re.search(r'<svg[^>]*data-metric="accuracy".*?</svg>', body, re.S)
    assert chart is not None
    points = re.findall(r'<circle[^>]*class="(pt[^"]*)"[^>]*data-version="(v\d+)"', chart.group())
    assert [v for _c, v in points] == [f"v{n}" for n in range(1, 7)]
    assert {v for c, v in points if "tagged" in c} == {"v4", "v6"}
    assert "<title>v4: accuracy = 0.77 (production)</title>" in chart.group()
    assert 'data-metric="loss"' in body
    rows = re.findall(r'<tr><td><a href="/m/resnet/(v\d+)"', body)
    assert rows == [f"v{n}" for n in range(1, 7)]


def test_family_page_filters_and_sorts_like_list_where(ui_url: str) -> None:
    query = urllib.parse.urlencode(
        {"where": "accuracy>=0.77; params.optimizer=adamw", "sort": "-accuracy"}
    )
    status, _h, body = fetch(ui_url, f"/m/resnet?{query}")
    assert status == 200
    rows = re.findall(r'<tr><td><a href="/m/resnet/(v\d+)"', body)
    assert rows == ["v6", "v5", "v4"]
    assert "3 of 6 versions match" in body
    status, _h, body = fetch(ui_url, "/m/resnet?where=accuracy%3E%3Dhigh")
    error = re.search(r'id="query-error">(.*?)</p>', body)
    assert error is not None and "compares numbers" in error.group(1)


def test_lineage_links_across_families(ui_url: str) -> None:
    _s, _h, body = fetch(ui_url, "/m/resnet")
    lineage = body[body.index("<h2>Lineage</h2>") :]
    assert 'href="/m/distilled/v1"' in lineage and 'href="/m/resnet/v4"' in lineage
    _s, _h, body = fetch(ui_url, "/m/resnet/v4")
    assert re.search(r"children</th><td>.*distilled@v1", body)


def test_version_page_shows_fields_tensors_and_what_it_added(ui_url: str) -> None:
    status, _h, body = fetch(ui_url, "/m/resnet/v6")
    assert status == 200
    for text in ("resnet18-small", "ImageNet", "epoch 60", "adamw", "0.83", "safetensors"):
        assert text in body
    tensors = re.findall(r"<tr><td>([a-z_.]+)</td><td>(\w+)</td><td>(\[[0-9, ]*\])</td>", body)
    assert ("conv.weight", "float32", "[32, 16, 3, 3]") in tensors
    assert ("head.extra", "float32", "[10]") in tensors
    assert "compared with</th><td>resnet@v5" in body
    assert 'href="/compare?a=resnet%40v5&amp;b=resnet%40v6"' in body
    assert fetch(ui_url, "/m/resnet/production")[2].count("resnet@v4") >= 1


def test_user_text_is_escaped_everywhere(ui_url: str, ui_root: Path) -> None:
    _s, _h, body = fetch(ui_url, "/m/xss-probe/v1")
    assert "<script" not in body and "<img" not in body and "<i>" not in body
    assert str(esc(XSS)) in body
    assert "&lt;b&gt;not bold&lt;/b&gt;" in body and "&quot;&#x27;&amp;" in body
    card = body[body.index('id="card"') :]
    assert '<a href="https://arxiv.org/abs/1512.03385" rel="nofollow">the paper</a>' in card
    assert "javascript:" in card and 'href="javascript' not in card
    assert "<pre><code>modelreg get xss-probe@v1</code></pre>" in card


def test_unsafe_version_has_a_prominent_banner(ui_url: str) -> None:
    _s, _h, body = fetch(ui_url, "/m/unsafe/v1")
    banner = re.search(
        r'<div class="banner bad" id="safety" role="alert">(.*?)</div></div>', body, re.S
    )
    assert banner is not None
    assert "Not safe to load" in banner.group(1) and "run code" in banner.group(1)
    _s, _h, body = fetch(ui_url, "/m/resnet/v1")
    assert 'id="safety"' not in body


def test_compare_shows_metric_deltas_and_the_tensor_diff(ui_url: str) -> None:
    status, _h, body = fetch(ui_url, "/compare?a=resnet@v5&b=resnet@v6")
    assert status == 200
    assert "4 changed, 1 added, 0 removed, 2 unchanged" in body
    diff_rows = re.findall(r'<tr><td><span class="(\w+)">[^<]*</span></td><td>([^<]+)</td>', body)
    assert ("changed", "conv.weight") in diff_rows and ("added", "head.extra") in diff_rows
    delta = round(RESNET_ACCURACY[5] - RESNET_ACCURACY[4], 4)
    assert f"+{delta:.4g}" in body
    assert re.search(r'id="shared">[0-9.]+ \w+ of resnet@v6', body)
    status, _h, body = fetch(ui_url, "/compare?a=resnet@v1&b=resnet@v1")
    assert "0 changed, 0 added, 0 removed, 6 unchanged" in body
    assert "(100% shared)" in body
    status, _h, body = fetch(ui_url, "/compare")
    assert status == 200 and 'name="a"' in body


def test_storage_page(ui_url: str) -> None:
    status, _h, body = fetch(ui_url, "/storage")
    assert status == 200
    assert "gc would free" in body and "dedup ratio" in body
    assert body.count('href="/m/resnet/v') >= 6
    assert "<svg" in body
    checkouts = body[body.index('id="checkouts"') :]
    assert re.search(
        r'<td><a href="/m/resnet/v4">resnet@v4</a></td><td>[0-9.]+ KiB</td>', checkouts
    )


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/m/..%2F..%2Fetc%2Fpasswd", 400),
        ("/m/resnet/..%2F..%2F..%2Fconfig.yaml", 400),
        ("/m/resnet/v99", 404),
        ("/m/nope", 404),
        ("/etc/passwd", 404),
        ("/.modelreg/config.yaml", 404),
        ("/compare?a=resnet@v1&b=../../x", 400),
        ("/m/resnet/v1/extra", 404),
    ],
)
def test_no_path_reaches_a_file(ui_url: str, path: str, status: int) -> None:
    got, _h, body = fetch(ui_url, path)
    assert got == status
    assert 'class="error"' in body and "format:" not in body


def test_read_only_and_host_checked(ui_url: str) -> None:
    assert fetch(ui_url, "/", method="POST")[0] == 501
    assert fetch(ui_url, "/", method="DELETE")[0] == 501
    assert fetch(ui_url, "/", method="HEAD")[0] == 200
    assert fetch(ui_url, "/", host="evil.example:80")[0] == 403


def test_tag_history_is_shown_only_when_the_registry_keeps_one(ui_root: Path) -> None:
    from modelreg.ui.server import App

    repo = Repository(ui_root)
    family_page = App(ui_root).render("/m/resnet", {})[1]
    if hasattr(repo, "tag_history"):  # a modelreg that keeps a journal of tag moves
        history = family_page[family_page.index("<h2>Tag history</h2>") :]
        assert "production" in history and "staging" in history
    else:
        assert data.tag_history(repo, "resnet") is None
        assert "Tag history" not in family_page
    entries = [
        {
            "tag": "production",
            "op": "move",
            "from": "v3",
            "to": "v4",
            "by": "<script>x</script>",
            "at": "2026-11-28T10:00:00+00:00",
        }
    ]
    shown = detail.tag_history(entries)
    assert "<h2>Tag history</h2>" in shown and "&lt;script&gt;" in shown
    assert "<td>2026-11-28 10:00:00 UTC</td>" in shown
    assert detail.tag_history(None) == ""


def test_report_is_one_self_contained_file(ui_root: Path, run, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = run("-C", ui_root, "report", "-o", out)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "<script" not in text and "<img" not in text and "<link" not in text
    assert not re.search(r"<[^>]*\ssrc=|@import|url\(", text)  # nothing loaded from anywhere
    assert text.count('<svg xmlns="http://www.w3.org/2000/svg"') >= 4
    for anchor in ("m-resnet", "v-resnet@v6", "storage", "families"):
        assert f'id="{anchor}"' in text
    assert 'href="#v-resnet@v4"' in text
    assert str(esc(XSS)) in text
    assert "4 changed, 1 added, 0 removed" in text  # resnet@v6 against its parent


def test_report_of_named_families_and_of_a_missing_one(ui_root: Path, run, tmp_path) -> None:
    out = tmp_path / "one.html"
    assert run("-C", ui_root, "report", "distilled", "-o", out).exit_code == 0
    text = out.read_text()
    assert 'id="m-distilled"' in text and 'id="m-resnet"' not in text
    assert "resnet@v4" in text and 'href="#v-resnet@v4"' not in text  # named, not linked
    result = run("-C", ui_root, "report", "nope", "-o", tmp_path / "x.html")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no model named 'nope'")
    assert not (tmp_path / "x.html").exists()


def test_ui_refuses_a_busy_port_in_one_line(repo_dir: Path, run) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("ui", "--port", port)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot listen on 127.0.0.1:{port}")


def test_ui_outside_a_registry(tmp_path: Path, run) -> None:
    result = run("-C", tmp_path, "ui", "--port", "0")
    assert result.exit_code == 1 and "no modelreg registry" in result.stderr


def test_markdown_subset_is_escaped_first() -> None:
    html = markdown.render(
        "# Title <b>\n\ntext with `code <x>` and [ok](https://e.org/a?b=1&c=2) "
        "[bad](javascript:alert(1)) [data](data:text/html,x)\n\n1. one\n2. two\n\n- a\n- b\n"
    )
    assert "<h3>Title &lt;b&gt;</h3>" in html
    assert "<code>code &lt;x&gt;</code>" in html
    assert '<a href="https://e.org/a?b=1&amp;c=2" rel="nofollow">ok</a>' in html
    assert 'href="javascript' not in html and 'href="data' not in html
    assert "<ol><li>one</li><li>two</li></ol>" in html and "<ul><li>a</li><li>b</li></ul>" in html
    tricky = markdown.render('[x](https://e.org/"onmouseover="alert(1))')
    assert "onmouseover=" not in tricky.replace("&quot;onmouseover=&quot;", "")


def test_elements_escape_attributes_and_text() -> None:
    made = el("a", '<"x">', href='"><script>', title=None, hidden=True)
    assert made == '<a href="&quot;&gt;&lt;script&gt;" hidden>&lt;&quot;x&quot;&gt;</a>'


def test_ui_command_serves_until_stopped(ui_root: Path) -> None:
    """The real command in its own process: it says where it listens, serves, and stops on
    SIGINT (Ctrl-C), the way a server is meant to end, with exit 0."""
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "modelreg", "ui", "--port", "0", "--quiet"],
        cwd=ui_root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.match(r"Serving (.+) at (http://127\.0\.0\.1:\d+/) \(read-only", line)
        assert match is not None, line
        assert Path(match.group(1)) == ui_root
        status, _h, body = fetch(match.group(2), "/m/resnet")
        assert status == 200 and 'data-metric="accuracy"' in body
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert err.strip() == "stopped"


def test_pages_of_an_empty_registry_and_of_a_one_version_family(repo_dir: Path) -> None:
    from modelreg import ModelRegistry
    from modelreg.ui.server import App

    from .conftest import write_bytes

    app = App(repo_dir)
    status, body = app.render("/", {})
    assert status == 200 and "No models yet" in body
    assert app.render("/storage", {})[0] == 200
    ModelRegistry(repo_dir).register(
        "solo", write_bytes(repo_dir / "m.bin", 3000), metrics={"accuracy": 0.5}
    )
    status, body = app.render("/m/solo", {})
    assert status == 200
    assert body.count('class="pt"') == 1  # one version, one point
    status, body = app.render("/m/solo/v1", {})
    assert status == 200 and "new bytes</th><td>2.9 KiB of 2.9 KiB" in body


def test_too_many_query_parameters_are_refused(ui_url: str) -> None:
    query = "&".join(f"x{i}=1" for i in range(60))
    assert fetch(ui_url, f"/m/resnet?{query}")[0] == 400


def test_a_card_stored_as_an_object_or_as_text(repo: Repository) -> None:
    """``register --card`` keeps the card as an object the record names; a record may also
    carry the text itself. The page shows either."""
    oid = repo.objects.add(b"# Card\n\nstored <apart>\n")
    repo.objects.sync()
    assert data.card_text(repo, {"card": oid}) == "# Card\n\nstored <apart>\n"
    assert data.card_text(repo, {"card": "inline text"}) == "inline text"
    assert data.card_text(repo, {}) is None


def test_a_removed_parent_is_named_not_compared(repo_dir: Path, run, tmp_path: Path) -> None:
    from modelreg import ModelRegistry

    from .conftest import write_bytes

    registry = ModelRegistry(repo_dir)
    for seed in (1, 2):
        registry.register("m", write_bytes(repo_dir / f"m{seed}.bin", 5000, seed=seed))
    registry.remove("m", "v1")
    out = tmp_path / "r.html"
    assert run("report", "-o", out).exit_code == 0
    text = out.read_text()
    assert "m@v1" in text and 'href="#v-m@v1"' not in text
    from modelreg.ui.server import App

    status, body = App(repo_dir).render("/m/m/v2", {})
    assert status == 200 and "compared with</th><td>nothing" in body
