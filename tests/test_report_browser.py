"""The HTML report in a real headless browser: loads offline, no console errors, every
figure decodes. Needs Debian's chromium and chromium-driver (.ci/run installs them)."""

import os
import shutil

import pytest
from test_report import _fill

from benchmark.report import write
from benchmark.store import ResultStore

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
# Skipped on a developer machine without chromium; in CI (.ci/run installs it) a missing
# browser is a failure, not a silent skip.
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (CHROMIUM and DRIVER) and not os.environ.get("CI"),
                       reason="needs chromium and chromedriver"),
]


@pytest.fixture
def browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER),
                              options=options)
    yield driver
    driver.quit()


def test_html_report_renders_with_images_and_no_console_errors(tmp_path, browser):
    _fill(tmp_path / "r.sqlite", fail=(2.0,))
    store = ResultStore(f"sqlite:///{tmp_path / 'r.sqlite'}", create=False)
    write(store, "demo", tmp_path / "out", ("html",), "v1")
    browser.get((tmp_path / "out" / "index.html").as_uri())
    assert browser.title == "cnnbench report: demo"
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, "
        "i.naturalHeight]);")
    assert len(images) >= 4
    assert all(done and w > 0 and h > 0 for done, w, h in images), images
    assert browser.execute_script("return document.querySelectorAll('script').length") == 0
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    headings = [h.text for h in browser.find_elements("tag name", "h2")]
    assert "C: Batch norm" in headings and "<script>alert(1)</script>: needs escaping & " \
        "<b>more</b>" in headings
