"""The web UI end to end: the real `lode serve` process on a free port, headless Chromium driven by Selenium.

Indexes a fixture through the status page's form (POST /v1/index), searches in the page, opens a symbol, and
checks that the cytoscape graph holds the callers and callees and has drawn them on its canvas. Then, one test
each: /docs offline, the URL as the state of the search form, no stale graph or erased error, the server's
highlights, the source view and its editor link, a large call graph, and a job with nothing to do.
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

from tests.support.cli import run_cli

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FIXTURE = Path(__file__).parent.parent / "fixtures" / "graph" / "pyshop"
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


def index_tree(base: str, root: Path, repo: str) -> dict:
    """Index a tree through the API (POST /v1/index, then its job until it ends)."""
    job = httpx.post(f"{base}/v1/index", json={"path": str(root), "repo": repo}, timeout=30).json()["job"]
    deadline = time.monotonic() + 120
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"the index job of {repo} did not end: {job}"
        time.sleep(0.2)
        job = httpx.get(f"{base}/v1/index/{job['id']}", timeout=30).json()["job"]
    assert job["state"] == "succeeded", job
    return job


@pytest.fixture(scope="module")
def shop_repo(server: str, shop_root: Path) -> str:
    """The shop fixture indexed through the API, under a name of its own."""
    repo = f"webshop-{uuid.uuid4().hex[:8]}"
    index_tree(server, shop_root, repo)
    return repo


@pytest.fixture(scope="module")
def hub_repo(server: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A function with 35 callers in 7 files, and 2 callees: the call graph the old layout drew on one row."""
    root = tmp_path_factory.mktemp("web-hub") / "hub"
    (root / "hubpkg").mkdir(parents=True)
    (root / "hubpkg" / "__init__.py").write_text("")
    (root / "hubpkg" / "core.py").write_text(
        "def hub(value):\n    return helper(value) + other(value)\n\n\n"
        "def helper(value):\n    return value * 2\n\n\ndef other(value):\n    return value - 1\n")
    for module in range(7):
        callers = "".join(f"\n\ndef caller_{module}_{i}(x):\n    return hub(x + {i})\n" for i in range(5))
        (root / "hubpkg" / f"mod{module}.py").write_text(f"from hubpkg.core import hub\n{callers}")
    repo = f"webhub-{uuid.uuid4().hex[:8]}"
    index_tree(server, root, repo)
    return repo


def no_console_errors(driver) -> None:
    """No SEVERE entry (a script error, a failed load, a CSP violation) and no warning in the page's console."""
    entries = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert entries == []


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


def test_docs_render_offline_from_the_package(server: str, browser) -> None:
    """FastAPI's /docs loads Swagger UI from a CDN: offline, the page stayed blank."""
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(f"{server}/docs")
    title = wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#swagger-ui .info .title"), timeout=60)
    assert title[0].text.startswith("Lode")
    wait_for(driver, lambda d: any("/v1/search" in e.text
                                   for e in d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")))
    loaded = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert f"{server}/static/vendor/swagger-ui-bundle.js" in loaded and f"{server}/openapi.json" in loaded
    assert [url for url in loaded if not url.startswith(f"{server}/")] == []  # nothing from elsewhere
    no_console_errors(driver)


def test_the_url_is_the_state_of_the_search_form(server: str, shop_repo: str, browser) -> None:
    """The form kept the mode, language and kind of an earlier search while the results were another's."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = browser

    def form() -> dict[str, str]:
        return driver.execute_script(
            "return Object.fromEntries(['q', 'mode', 'repo', 'lang', 'path', 'kind'].map(k => [k, $(k).value]))")

    def searched(mode: str) -> list[str]:
        """The kinds of the hits, once the results of a search in `mode` are drawn (the info line is cleared
        first, so the last search's cannot pass for them)."""
        wait_for(driver, lambda d: f"({mode})" in d.find_element(By.ID, "search-info").text)
        return [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#results .hit-head .kind")]

    def forget() -> None:
        driver.execute_script("$('search-info').textContent = ''")

    narrow = {"q": "total", "mode": "lexical", "repo": shop_repo, "lang": "python", "path": "shop/*.py",
              "kind": "function"}
    driver.get(f"{server}/#/search?{httpx.QueryParams(narrow)}")
    assert set(searched("lexical")) == {"function"}
    wait_for(driver, lambda d: form() == narrow)
    forget()
    driver.get(f"{server}/#/search?{httpx.QueryParams(q='total', repo=shop_repo)}")  # the defaults for the rest
    kinds = searched("hybrid")
    assert form() == {"q": "total", "mode": "hybrid", "repo": shop_repo, "lang": "", "path": "", "kind": ""}
    assert set(kinds) > {"function"}
    forget()
    driver.back()
    assert set(searched("lexical")) == {"function"} and form() == narrow
    forget()
    driver.forward()
    searched("hybrid")
    assert form()["mode"] == "hybrid" and form()["kind"] == ""
    driver.refresh()
    searched("hybrid")
    assert form() == {"q": "total", "mode": "hybrid", "repo": shop_repo, "lang": "", "path": "", "kind": ""}
    # the form's submit writes the URL, which fills the form
    Select(driver.find_element(By.ID, "kind")).select_by_value("method")
    forget()
    driver.find_element(By.CSS_SELECTOR, "#search-form button[type=submit]").click()
    assert set(searched("hybrid")) == {"method"} and "kind=method" in driver.current_url
    driver.get(f"{server}/#/search")  # no query: no results left from the last one
    wait_for(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, "#results li") and form()["q"] == "")
    no_console_errors(driver)


def test_no_stale_graph_after_an_unknown_symbol(server: str, shop_repo: str, browser) -> None:
    """The previous graph stayed and "null" was printed under the message."""
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(f"{server}/#/symbol?name=shop.pricing.total&repo={shop_repo}")
    wait_for(driver, lambda d: d.execute_script("return window.lodeGraph && window.lodeGraph.nodes().length"))
    assert driver.find_element(By.CSS_SELECTOR, ".symbol-body").is_displayed()
    driver.get(f"{server}/#/symbol?name=no_such_symbol_anywhere&repo={shop_repo}")
    head = wait_for(driver, lambda d: d.find_element(By.ID, "symbol-head").text.startswith("No symbol") and
                    d.find_element(By.ID, "symbol-head").text)
    assert head == "No symbol named no_such_symbol_anywhere."
    assert driver.execute_script("return window.lodeGraph") is None
    assert driver.find_elements(By.CSS_SELECTOR, "#graph canvas") == []
    assert driver.find_element(By.ID, "callers").text == ""
    assert not driver.find_elements(By.CSS_SELECTOR, ".source-view")
    assert not driver.find_element(By.CSS_SELECTOR, ".symbol-body").is_displayed()
    no_console_errors(driver)


def test_an_index_error_stays_through_the_status_refresh(server: str, browser) -> None:
    """The page's 2-second refresh erased the error of an index request."""
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(f"{server}/#/status")
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#jobs tr"))
    driver.find_element(By.ID, "index-path").send_keys("relative/path")
    driver.find_element(By.CSS_SELECTOR, "#index-form button").click()
    error = wait_for(driver, lambda d: d.find_element(By.ID, "error").text)
    assert error == "the path must be absolute: 'relative/path'"
    for _ in range(2):  # two refreshes: each redraws the jobs table (a marked row is replaced)
        driver.execute_script("document.querySelector('#jobs tr').dataset.old = '1'")
        wait_for(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, "#jobs tr[data-old]"), timeout=15)
    assert driver.find_element(By.ID, "error").text == error and driver.find_element(By.ID, "error").is_displayed()
    driver.get(f"{server}/#/search")  # another page starts without it
    wait_for(driver, lambda d: not d.find_element(By.ID, "error").is_displayed())


def test_a_job_with_nothing_to_do_shows_done(server: str, shop_root: Path, shop_repo: str, lode_home: Path,
                                              browser) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(f"{server}/#/status")
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#jobs tr.job"))
    driver.find_element(By.ID, "index-path").send_keys(str(shop_root))
    driver.find_element(By.ID, "index-repo").send_keys(shop_repo)
    driver.find_element(By.CSS_SELECTOR, "#index-form button").click()  # unchanged since the fixture indexed it
    row = wait_for(driver, lambda d: next((row for row in row_texts(d, "#jobs tr.job")
                                           if shop_repo in row and "nothing changed" in row), None), timeout=60)
    assert "succeeded" in row and "done: nothing changed" in row
    assert not any("0/?" in row for row in row_texts(driver, "#jobs tr.job"))
    fill = driver.execute_script("return [...document.querySelectorAll('#jobs tr.job')].find("
                                 "r => r.innerText.includes('nothing changed')).querySelector('.fill').style.width")
    assert fill == "100%"
    # and `lode jobs` says so too, instead of "0/0 files"
    code, listed, _ = run_cli("jobs", "--repo", shop_repo, env={"LODE_HOME": str(lode_home)})
    assert code == 0 and any("succeeded" in line and "  nothing changed, " in line
                             for line in listed.splitlines()), listed
    assert "0/0 files" not in listed


def test_snippets_mark_what_the_tokenizer_matched(server: str, shop_repo: str, browser) -> None:
    """The page marked every query word as a substring: `or` (a stopword) in `order`, `total` in `subtotal`."""
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(f"{server}/#/search?q=or+total&mode=lexical&repo={shop_repo}")
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#results li.hit"))
    snippets = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#results .snippet")]
    assert any("subtotal" in text and "order" in text for text in snippets)
    marks = driver.execute_script("""return [...document.querySelectorAll('#results mark')].map(m => {
        const before = m.previousSibling ? m.previousSibling.textContent : '';
        const after = m.nextSibling ? m.nextSibling.textContent : '';
        return [before.slice(-1), m.textContent, after.slice(0, 1)]; })""")
    assert marks and {text.lower() for _, text, _ in marks} == {"total"}
    for before, text, after in marks:  # a whole word, or a snake_case / camelCase part: not a fragment
        assert not (before.isalnum() and before.islower() and text[0].islower()), (before, text, after)
        assert not (after.isalnum() and after.islower()), (before, text, after)
    no_console_errors(driver)


def test_source_view_with_line_numbers_and_an_editor_link(server: str, shop_root: Path, shop_repo: str,
                                                          browser) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    pricing = (shop_root / "shop" / "pricing.py").read_text().split("\n")
    driver.get(f"{server}/#/search?q=total+rules&mode=lexical&repo={shop_repo}&kind=function")
    hit = wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#results li.hit"))[0]
    assert hit.find_element(By.CSS_SELECTOR, ".loc").text == "shop/pricing.py:29-33"
    hit.find_element(By.CSS_SELECTOR, "button.source-toggle").click()
    view = wait_for(driver, lambda d: hit.find_elements(By.CSS_SELECTOR, ".source-view"))[0]
    lines = driver.execute_script("return [...arguments[0].querySelectorAll('.source .line')].map("
                                  "l => [l.dataset.n, l.textContent])", view)
    assert lines == [[str(n), pricing[n - 1] + "\n"] for n in range(29, 34)]
    link = view.find_element(By.CSS_SELECTOR, "a.editor")
    assert link.get_attribute("href") == f"vscode://file{shop_root.resolve()}/shop/pricing.py:29:1"
    hit.find_element(By.CSS_SELECTOR, "button.source-toggle").click()  # and closes again
    wait_for(driver, lambda d: not hit.find_elements(By.CSS_SELECTOR, ".source-view"))

    # a symbol page shows its source: a class's whole lines, its methods' bodies included (not elided)
    cart = (shop_root / "shop" / "cart.py").read_text().split("\n")
    driver.get(f"{server}/#/symbol?name=shop.cart.Cart&repo={shop_repo}")
    numbered = wait_for(driver, lambda d: d.execute_script(
        "return [...document.querySelectorAll('#symbol-source .line')].map(l => [+l.dataset.n, l.textContent])"))
    assert numbered[0] == [6, "class Cart:\n"] and [n for n, _ in numbered] == list(range(6, 23))
    assert [text[:-1] for _, text in numbered] == cart[5:22]
    assert driver.find_element(By.CSS_SELECTOR, "#symbol-source a.editor").get_attribute("href").endswith(
        "/shop/cart.py:6:1")
    no_console_errors(driver)


def test_a_large_call_graph_is_layered_grouped_by_file_and_collapsed(server: str, hub_repo: str, browser,
                                                                      tmp_path: Path) -> None:
    """35 callers were drawn on one row, their labels over each other."""
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(f"{server}/#/symbol?name=hubpkg.core.hub&repo={hub_repo}")
    wait_for(driver, lambda d: d.execute_script("return window.lodeGraph && window.lodeGraph.nodes().length"))
    assert len(driver.find_elements(By.CSS_SELECTOR, "#callers li")) == 35

    def drawn() -> dict:
        return driver.execute_script("""const cy = window.lodeGraph;
            return cy.nodes().filter(n => !n.isParent()).map(n => ({
                id: n.id(), role: n.data('role'), label: n.data('label'), x: n.position('x'),
                parent: n.isChild() ? n.parent().data('label') : null,
                box: n.boundingBox({includeLabels: true}) }));""")

    def callers_shown(nodes: list[dict]) -> list[dict]:
        return [n for n in nodes if n["role"] == "caller"]

    def no_overlap(nodes: list[dict]) -> None:
        for i, a in enumerate(nodes):
            for b in nodes[i + 1:]:
                apart = (a["box"]["x2"] <= b["box"]["x1"] or b["box"]["x2"] <= a["box"]["x1"]
                         or a["box"]["y2"] <= b["box"]["y1"] or b["box"]["y2"] <= a["box"]["y1"])
                assert apart, (a["label"], b["label"])

    nodes = drawn()
    center = next(n for n in nodes if n["role"] == "center")
    callers = callers_shown(nodes)
    callees = [n for n in nodes if n["role"] == "callee"]
    # layered: callers left of the symbol, callees right of it
    assert callers and all(n["x"] < center["x"] for n in callers)
    assert {n["label"] for n in callees} == {"core.helper", "core.other"} and all(n["x"] > center["x"] for n in callees)
    # grouped: each caller in the box of its file
    assert all(n["parent"] == f"hubpkg/mod{n['label'][len('mod')]}.py" for n in callers)
    # collapsed: at most 4 a box and 10 a side; the rest in "+N more" nodes, 35 in all
    assert len(callers) <= 10 and all(count <= 4 for count in
                                      [sum(n["parent"] == p for n in callers) for p in {n["parent"] for n in callers}])
    more = [n for n in nodes if n["role"] == "more"]
    assert len(callers) + sum(int(n["label"].split()[0][1:]) for n in more) == 35
    fold = next(n for n in more if " in " in n["label"])
    assert fold["parent"] is None and fold["x"] < center["x"]
    no_overlap(nodes)
    assert driver.execute_script("return window.lodeGraph.zoom()") >= 0.7  # labels stay readable
    assert driver.execute_script("""const cy = window.lodeGraph, box = cy.elements().renderedBoundingBox();
        return box.x1 >= 0 && box.y1 >= 0 && box.x2 <= cy.width() && box.y2 <= cy.height();""")  # all in view
    driver.find_element(By.ID, "graph").screenshot(str(tmp_path / "graph-collapsed.png"))

    # a tap on the fold draws the files it held, each still capped; a tap on a box's "+N more" opens the box
    driver.execute_script("window.lodeGraph.$id(arguments[0]).emit('tap')", fold["id"])
    nodes = drawn()
    assert len(callers_shown(nodes)) > len(callers) and not any(" in " in n["label"] for n in nodes)
    in_box = next(n for n in nodes if n["role"] == "more" and n["parent"])
    driver.execute_script("window.lodeGraph.$id(arguments[0]).emit('tap')", in_box["id"])
    nodes = drawn()
    assert sum(n["parent"] == in_box["parent"] for n in callers_shown(nodes)) == 5
    no_overlap(nodes)
    driver.find_element(By.ID, "graph").screenshot(str(tmp_path / "graph-expanded.png"))
    no_console_errors(driver)


def test_the_url_holds_the_symbol_pages_depth(server: str, shop_repo: str, browser) -> None:
    """The depth select kept its value from page to page and a reload reset it: the callers shown were for a
    depth the URL did not say."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = browser

    def callers() -> str:
        return driver.find_element(By.ID, "callers").text

    driver.get(f"{server}/#/symbol?name=shop.pricing.subtotal&repo={shop_repo}&depth=2")
    wait_for(driver, lambda d: "shop.pricing.grand_total" in callers(), message="no depth-2 callers")
    assert "shop.pricing.total" in callers() and driver.find_element(By.ID, "depth").get_attribute("value") == "2"

    Select(driver.find_element(By.ID, "depth")).select_by_value("1")  # writes the URL, which draws the lists
    wait_for(driver, lambda d: "depth=" not in d.current_url and "shop.pricing.total" in callers()
             and "shop.pricing.grand_total" not in callers())
    driver.back()
    wait_for(driver, lambda d: "shop.pricing.grand_total" in callers())
    assert driver.find_element(By.ID, "depth").get_attribute("value") == "2" and "depth=2" in driver.current_url

    # a link from the page keeps its depth
    next(a for a in driver.find_elements(By.CSS_SELECTOR, "#callers li a")
         if a.text == "shop.pricing.total").click()
    wait_for(driver, lambda d: "name=shop.pricing.total" in d.current_url and "depth=2" in d.current_url)
    wait_for(driver, lambda d: "shop.pricing.grand_total" in callers())

    # a depth the select does not offer is the default
    driver.get(f"{server}/#/symbol?name=shop.pricing.subtotal&repo={shop_repo}&depth=9")
    wait_for(driver, lambda d: "shop.pricing.total" in callers() and "shop.pricing.grand_total" not in callers())
    assert driver.find_element(By.ID, "depth").get_attribute("value") == "1"
    no_console_errors(driver)
