"""``modelreg ui`` in a real browser: headless Chromium driven by Selenium through the
system chromedriver. Skipped when Chromium is missing, except on CI (``CI`` set), where a
missing browser fails, as a missing torch does under MODELREG_REQUIRE_TORCH.

Set MODELREG_UI_SCREENSHOTS=docs/ui to write the screenshots docs/ui.md shows."""

from __future__ import annotations

import os
import shutil
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelreg.ui import make_server, url_of

from .ui_registry import XSS, build

CHROMEDRIVER = "/usr/bin/chromedriver"
ON_CI = bool(os.environ.get("CI"))


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    binary = _chromium()
    missing = [
        what
        for what, ok in [("chromium", binary), ("chromedriver", os.path.exists(CHROMEDRIVER))]
        if not ok
    ]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("selenium (pip)")
    if missing:
        message = (
            f"browser tests need {', '.join(missing)} (apt-get install chromium chromium-driver)"
        )
        if ON_CI:
            pytest.fail(message)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--disable-gpu",
    ):
        options.add_argument(arg)
    options.binary_location = str(binary)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, torch_mod) -> Iterator[str]:
    root = build(tmp_path_factory.mktemp("ui-browser") / "registry")["root"]
    server = make_server(root, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url_of(server).rstrip("/")
    server.shutdown()
    server.server_close()


def visit(browser: Any, url: str) -> list[dict[str, Any]]:
    """Load ``url``; the console messages it logged."""
    browser.get_log("browser")  # drop what earlier pages left
    browser.get(url)
    return list(browser.get_log("browser"))


def by_css(browser: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(browser.find_elements(By.CSS_SELECTOR, selector))


MAIN_PAGES = {
    "home": "/",
    "family": "/m/resnet",
    "version": "/m/resnet/v6",
    "unsafe": "/m/unsafe/v1",
    "card": "/m/xss-probe/v1",
    "compare": "/compare?a=resnet@v5&b=resnet@v6",
    "storage": "/storage",
}


@pytest.mark.parametrize("page", list(MAIN_PAGES))
def test_pages_load_without_console_errors(browser: Any, site: str, page: str) -> None:
    logs = visit(browser, site + MAIN_PAGES[page])
    assert browser.title.endswith("modelreg")
    assert by_css(browser, "main h1")
    problems = [entry for entry in logs if entry["level"] in ("SEVERE", "WARNING")]
    assert problems == []


def test_charts_have_one_point_per_version(browser: Any, site: str) -> None:
    visit(browser, site + "/m/resnet")
    for metric in ("accuracy", "loss"):
        points = by_css(browser, f'svg.chart[data-metric="{metric}"] circle.pt')
        assert [p.get_attribute("data-version") for p in points] == [f"v{n}" for n in range(1, 7)]
    tagged = by_css(browser, 'svg.chart[data-metric="accuracy"] circle.pt.tagged')
    assert {p.get_attribute("data-version") for p in tagged} == {"v4", "v6"}
    title = browser.execute_script(
        "return document.querySelector('circle[data-version=\"v4\"] title').textContent"
    )
    assert title == "v4: accuracy = 0.77 (production)"  # what hovering the point shows
    assert len(by_css(browser, "#versions tbody tr")) == 6


def test_a_chart_point_links_to_its_version(browser: Any, site: str) -> None:
    visit(browser, site + "/m/resnet")
    point = by_css(browser, 'svg.chart[data-metric="accuracy"] circle[data-version="v3"]')[0]
    browser.execute_script(
        "arguments[0].parentNode.dispatchEvent(new MouseEvent('click', {bubbles: true}))", point
    )
    assert urllib.parse.urlsplit(browser.current_url).path == "/m/resnet/v3"


def test_filter_form_and_sort_links(browser: Any, site: str) -> None:
    visit(browser, site + "/m/resnet")
    box = by_css(browser, "form.where input[name=where]")[0]
    box.send_keys("accuracy>=0.78")
    box.submit()
    versions = [e.text for e in by_css(browser, "#versions tbody tr td:first-child")]
    assert versions == ["v3", "v5", "v6"]
    header = next(a for a in by_css(browser, "#versions thead a") if a.text.startswith("accuracy"))
    header.click()
    versions = [e.text for e in by_css(browser, "#versions tbody tr td:first-child")]
    assert versions == ["v6", "v5", "v3"]  # filter kept, largest first
    assert "where=" in browser.current_url and "sort=-metrics.accuracy" in browser.current_url


def test_compare_shows_the_changed_tensors(browser: Any, site: str) -> None:
    visit(browser, site + MAIN_PAGES["compare"])
    rows = [r.text for r in by_css(browser, "#tensor-diff tbody tr")]
    changed = {r.split()[2] for r in rows if r.startswith("~ changed")}
    assert changed == {"conv.weight", "conv.bias", "fc.weight", "fc.bias"}
    assert any(r.startswith("+ added head.extra") for r in rows)


def test_the_xss_probe_stays_text(browser: Any, site: str) -> None:
    logs = visit(browser, site + "/m/xss-probe/v1")
    assert browser.execute_script("return window.__xss") is None
    assert by_css(browser, "#description")[0].text == XSS
    assert not by_css(browser, "main script, main img")
    card = by_css(browser, "#card")[0]
    assert XSS in card.text
    hrefs = [a.get_attribute("href") for a in by_css(browser, "#card a")]
    assert hrefs == ["https://arxiv.org/abs/1512.03385"]
    assert [e for e in logs if e["level"] == "SEVERE"] == []


def test_unsafe_version_banner_is_visible(browser: Any, site: str) -> None:
    visit(browser, site + "/m/unsafe/v1")
    banner = by_css(browser, "#safety")[0]
    assert banner.is_displayed() and "Not safe to load" in banner.text


def test_screenshots_of_the_main_views(browser: Any, site: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("MODELREG_UI_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("home", "family", "version", "unsafe", "compare", "storage"):
        visit(browser, site + MAIN_PAGES[name])
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1280, max(600, min(int(height) + 20, 1600)))
        target = folder / f"{name}.png"
        assert browser.save_screenshot(str(target))
        assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    browser.set_window_size(1280, 900)
