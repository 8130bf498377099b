"""The web UI end to end: the real `lode serve` process on a free port, headless Chromium driven by Selenium.

Indexes a fixture through the status page's form (POST /v1/index), searches in the page, opens a symbol, and
checks that the cytoscape graph holds the callers and callees and has drawn them on its canvas.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FIXTURE = Path(__file__).parent / "fixtures" / "graph" / "pyshop"
GRAND_TOTAL = '''

def grand_total(order):
    """What the customer pays: the total under the default rules."""
    return total(order)
'''

pytestmark = pytest.mark.skipif(not CHROMIUM.exists() or not CHROMEDRIVER.exists(),
                                reason="needs Debian's chromium and chromium-driver (/usr/bin/chromium)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(lode_home: Path, lode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = (tmp_path_factory.mktemp("web") / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "lode", "serve", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "LODE_HOME": str(lode_home), "LODE_EMBEDDER": "none"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, f"lode serve exited: {Path(log.name).read_text()}"
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "lode serve did not become ready"
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def shop_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("web-shop") / "shop"
    shutil.copytree(FIXTURE, root)
    with (root / "shop" / "pricing.py").open("a") as pricing:
        pricing.write(GRAND_TOTAL)
    return root


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                 "--no-first-run", "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, condition, timeout: float = 30, message: str = ""):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # the page redraws lists as data arrives: an element read mid-redraw is simply read again
    return WebDriverWait(driver, timeout, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException,)).until(condition, message)


def row_texts(driver, selector: str) -> list[str]:
    """Texts of table rows, read in one script call: the status page redraws its tables every 2 seconds."""
    return driver.execute_script(f"return [...document.querySelectorAll('{selector}')].map(r => r.innerText)")


def test_index_search_open_a_symbol_and_walk_its_graph(server: str, shop_root: Path, browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = browser
    repo = f"web-{uuid.uuid4().hex[:8]}"

    # status page: index the fixture through the form, watch the job finish and the repository appear
    driver.get(f"{server}/#/status")
    wait_for(driver, lambda d: d.find_element(By.ID, "page-status").is_displayed())
    driver.find_element(By.ID, "index-path").send_keys(str(shop_root))
    driver.find_element(By.ID, "index-repo").send_keys(repo)
    driver.find_element(By.CSS_SELECTOR, "#index-form button").click()
    job_row = wait_for(driver, lambda d: next((row for row in row_texts(d, "#jobs tr.job")
                                               if repo in row and "succeeded" in row), None),
                       timeout=120, message="the index job did not succeed")
    assert "9/9" in job_row  # files done / total, drawn as a progress bar
    # the page refreshes every 2 s from two documents; wait for a refresh that began after the run ended
    repo_row = wait_for(driver, lambda d: next((row for row in row_texts(d, "#repos tr") if row.startswith(repo)
                                                and "last run done" in row and "\t9\t58\t" in row), None))
    assert str(shop_root) in repo_row and "up to date; last run done" in repo_row
    driver.save_screenshot(str(tmp_path / "status.png"))

    # search page: mode, repository and kind filters; snippets highlight the query terms
    driver.get(f"{server}/#/search")
    wait_for(driver, lambda d: any(o.get_attribute("value") == repo
                                   for o in d.find_elements(By.CSS_SELECTOR, "#repo option")))
    driver.find_element(By.ID, "q").send_keys("total rules")
    Select(driver.find_element(By.ID, "mode")).select_by_value("lexical")
    Select(driver.find_element(By.ID, "repo")).select_by_value(repo)
    Select(driver.find_element(By.ID, "kind")).select_by_value("function")
    driver.find_element(By.CSS_SELECTOR, "#search-form button[type=submit]").click()
    hits = wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#results li.hit"))
    assert "lexical" in driver.find_element(By.ID, "search-info").text
    heads = [hit.find_element(By.CSS_SELECTOR, ".hit-head").text for hit in hits]
    assert heads[0].startswith("shop/pricing.py:29-33 function shop.pricing.total")
    assert all(" function " in head and repo in head for head in heads)
    marks = {m.text.lower() for m in driver.find_elements(By.CSS_SELECTOR, "#results mark")}
    assert {"total", "rules"} <= marks
    assert f"repo={repo}" in driver.current_url and "kind=function" in driver.current_url
    driver.save_screenshot(str(tmp_path / "search.png"))

    # pages of 20: "More results" appends the next page (offset / next_offset)
    driver.get(f"{server}/#/search?q=self&mode=lexical&repo={repo}")
    wait_for(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results li.hit")) == 20)
    driver.find_element(By.ID, "more").click()
    wait_for(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results li.hit")) > 20)
    locations = driver.execute_script(
        "return [...document.querySelectorAll('#results .hit-head .loc')].map(e => e.textContent)")
    assert len(set(locations)) == len(locations)  # no hit repeated across pages
    assert not driver.find_element(By.ID, "more").is_displayed()
    driver.get(f"{server}/#/search?q=total+rules&mode=lexical&repo={repo}&kind=function")  # back to the first search
    hits = wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#results li.hit"))

    # symbol page: signature, callers and callees, and the graph
    hits[0].find_element(By.CSS_SELECTOR, "a.name").click()
    wait_for(driver, lambda d: d.find_element(By.ID, "page-symbol").is_displayed())
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#callers li a"))
    assert driver.find_element(By.CSS_SELECTOR, "#symbol-head h2").text.startswith("shop.pricing.total")
    assert driver.find_element(By.CSS_SELECTOR, "#symbol-head .signature").text == "def total(order, rules=())"
    callers = driver.find_element(By.ID, "callers").text
    assert all(name in callers for name in ("shop.cart.Cart.checkout", "shop.pricing.sample",
                                            "shop.pricing.grand_total"))
    callees = driver.find_element(By.ID, "callees").text
    assert "shop.pricing.subtotal" in callees and "shop.pricing.with_tax" in callees

    nodes = wait_for(driver, lambda d: d.execute_script(
        "return window.lodeGraph && window.lodeGraph.nodes().length ? "
        "window.lodeGraph.nodes().map(n => [n.id(), n.data('role')]) : null"))
    roles = dict(nodes)
    assert roles["shop.pricing.total"] == "center"
    assert roles["shop.cart.Cart.checkout"] == roles["shop.pricing.grand_total"] == "caller"
    assert roles["shop.pricing.with_tax"] == "callee"
    edges = driver.execute_script("return window.lodeGraph.edges().map(e => [e.source().id(), e.target().id()])")
    assert ["shop.cart.Cart.checkout", "shop.pricing.total"] in edges
    assert ["shop.pricing.total", "shop.pricing.subtotal"] in edges
    drawn = wait_for(driver, lambda d: d.execute_script("""
        const canvases = [...document.querySelectorAll('#graph canvas')];
        return canvases.some(c => { const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                                    for (let i = 3; i < px.length; i += 4) if (px[i]) return true; return false; });
    """), message="the graph canvas stayed blank")
    assert drawn
    driver.save_screenshot(str(tmp_path / "symbol.png"))

    # a tap on a graph node opens that symbol, whose docstring shows
    driver.execute_script("window.lodeGraph.$id('shop.pricing.grand_total').emit('tap')")
    docstring = wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#symbol-head .docstring"))
    assert docstring[0].text == "What the customer pays: the total under the default rules."
    wait_for(driver, lambda d: "shop.pricing.total" in d.find_element(By.ID, "callees").text)

    severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []
    print(f"screenshots: {sorted(map(str, tmp_path.glob('*.png')))}")


def test_bad_input_in_the_page_shows_the_servers_message(server: str, browser) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(f"{server}/#/search?q=x&path={'x' * 501}")
    error = wait_for(driver, lambda d: d.find_element(By.ID, "error") if d.find_element(By.ID, "error").text else None)
    assert error.text == "query.path: String should have at most 500 characters"
    driver.get(f"{server}/#/symbol?name=no_such_symbol_anywhere")
    head = wait_for(driver, lambda d: d.find_element(By.ID, "symbol-head").text.startswith("No symbol named") or None)
    assert head
