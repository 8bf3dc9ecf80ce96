"""The page ``ragcli serve`` shows at ``/``, in a real headless Chromium driven by Selenium,
against a real server process with the fake models: the collection picker, a streamed answer
with its numbered sources and their passages, search only, a withheld answer, the error area,
and a server with a token.

Needs Debian's ``chromium`` and ``chromium-driver`` (/usr/bin/chromium, /usr/bin/chromedriver)
and selenium (the ``dev`` extra); without them the browser tests are skipped. Selenium is given
both paths, so Selenium Manager never runs and nothing is downloaded.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

try:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:
    webdriver = None  # type: ignore[assignment]


def _missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.is_file() or not CHROMEDRIVER.is_file():
        return (
            f"the browser test needs {CHROMIUM} and {CHROMEDRIVER} "
            "(apt-get install chromium chromium-driver)"
        )
    if webdriver is None:
        return "the browser test needs selenium (pip install -e '.[dev]')"
    return None


FAKECLI = [sys.executable, "-m", "tests.fakecli"]
QUESTION = "Who founded the kettle works?"
WAIT_S = 15


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``ragcli serve`` on a free port, in a process of its own; its stderr in a file."""

    def __init__(self, log: Path, *args: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("w") as stderr:
            self.process = subprocess.Popen(
                [*FAKECLI, "serve", "--port", str(self.port), *args],
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        self._wait_until_up()

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited: {self.log.read_text()}")
            try:
                urllib.request.urlopen(f"{self.url}/health", timeout=2).close()
                return
            except urllib.error.HTTPError:  # 401 without the token: it answers
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError(f"the server did not answer in 30 s: {self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def start_server(corpus: Path, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Ingest the corpus as collection ``docs`` and start servers over it on demand."""
    ingest = subprocess.run(
        [*FAKECLI, "ingest", str(corpus), "-c", "docs"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ingest.returncode == 0, ingest.stderr
    started: list[Server] = []

    def start(*args: str) -> Server:
        server = Server(tmp_path / f"serve-{len(started)}.log", "-c", "docs", *args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """One headless Chromium for the file; skips its tests where it cannot run."""
    missing = _missing()
    if missing:
        pytest.skip(missing)
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1100,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _until(driver: WebDriver, condition: Callable[[WebDriver], Any], what: str) -> Any:
    # an element the page replaced while it was read is read again at the next poll
    wait = WebDriverWait(
        driver, WAIT_S, poll_frequency=0.05, ignored_exceptions=[StaleElementReferenceException]
    )
    return wait.until(condition, message=f"waited {WAIT_S} s for {what}")


def _by_id(driver: WebDriver, id_: str) -> WebElement:
    return driver.find_element(By.ID, id_)


def _open(driver: WebDriver, url: str) -> None:
    """Load the page afresh (a URL that differs only in its fragment would not reload)."""
    driver.get("about:blank")
    driver.get(url)


def _collections(driver: WebDriver) -> list[str]:
    """The picker's values, read in one go (the page may be filling it meanwhile)."""
    script = "return Array.from(document.getElementById('collection').options, o => o.value)"
    return [str(value) for value in driver.execute_script(script)]


def _wait_for_collections(driver: WebDriver) -> None:
    _until(driver, lambda d: "docs" in _collections(d), "the collection picker to list docs")


def _ask(driver: WebDriver, question: str) -> None:
    box = _by_id(driver, "question")
    box.clear()
    if question:
        box.send_keys(question)
    _by_id(driver, "ask").click()


def _finished(driver: WebDriver) -> bool:
    """No request in flight: the button no longer offers to stop one."""
    return _by_id(driver, "ask").text != "Stop"


def _writing(driver: WebDriver) -> bool:
    """Part of the answer shown while the rest is still being written."""
    answer = _by_id(driver, "answer")
    return bool(answer.text) and answer.get_attribute("aria-busy") == "true"


def _error(driver: WebDriver) -> str:
    error = _by_id(driver, "error")
    return error.text if error.is_displayed() else ""


def test_asks_streams_the_answer_and_shows_its_sources(
    browser: WebDriver, start_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGCLI_TEST_TOKEN_DELAY", "0.05")  # an answer written over 0.7 s
    server = start_server()
    _open(browser, server.url + "/")
    _wait_for_collections(browser)
    assert Select(_by_id(browser, "collection")).first_selected_option.get_attribute("value") == (
        "docs"
    )
    assert browser.find_element(By.CSS_SELECTOR, "label[for=question]").text == "Question"

    _ask(browser, QUESTION)
    _until(browser, _writing, "the first words of the answer, while it is being written")
    _until(browser, lambda d: "Ada Pell" in _by_id(d, "answer").text, "the answer")
    _until(browser, _finished, "the answer to finish")
    assert _error(browser) == ""
    answer = _by_id(browser, "answer")
    assert answer.get_attribute("aria-live") == "polite"
    assert answer.get_attribute("aria-busy") == "false"
    assert [a.text for a in answer.find_elements(By.CSS_SELECTOR, "a.cite")] == ["[1]"]
    assert _by_id(browser, "sources-title").text.lower() == "sources"

    first = browser.find_element(By.CSS_SELECTOR, "#sources > li")
    summary = first.find_element(By.TAG_NAME, "summary")
    assert summary.text.startswith("[1]") and "beta.md" in summary.text
    assert "lines 1" in summary.text and "Kettle Works > History" in summary.text
    passage = first.find_element(By.CLASS_NAME, "passage")
    assert not passage.is_displayed()
    summary.click()
    _until(browser, lambda d: passage.is_displayed(), "the passage to open")
    assert "The kettle works were founded by Ada Pell in 1870." in passage.text

    # Search only: the hits, no answer.
    _by_id(browser, "search-only").click()
    assert _by_id(browser, "ask").text == "Search"
    _ask(browser, QUESTION)
    _until(browser, lambda d: _by_id(d, "sources-title").text.lower() == "passages", "the hits")
    hits = browser.find_elements(By.CSS_SELECTOR, "#sources > li summary")
    assert hits and hits[0].text.startswith("[1]") and "beta.md" in hits[0].text
    assert not _by_id(browser, "answer-section").is_displayed()
    browser.find_element(By.CSS_SELECTOR, "details.more > summary").click()
    _by_id(browser, "k").send_keys("1")
    _ask(browser, "Who kept the lighthouse?")
    _until(browser, lambda d: "1 passage found" in _by_id(d, "status").text, "one hit")
    hits = browser.find_elements(By.CSS_SELECTOR, "#sources > li summary")
    assert len(hits) == 1 and "gamma.rst" in hits[0].text
    _by_id(browser, "k").clear()

    # Filters go to the server as typed: a type keeps one document, a bad date is its error.
    _by_id(browser, "type").send_keys("rst")
    browser.execute_script("document.getElementById('status').textContent = ''")
    _ask(browser, QUESTION)
    _until(browser, lambda d: "passage" in _by_id(d, "status").text, "the filtered hits")
    sources = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#sources > li summary")]
    assert sources and all("gamma.rst" in text for text in sources)
    _by_id(browser, "type").clear()
    _by_id(browser, "after").send_keys("someday")
    _ask(browser, QUESTION)
    _until(browser, _error, "the date's error")
    assert "someday" in _by_id(browser, "error-message").text
    _by_id(browser, "after").clear()

    # A question the corpus cannot answer: withheld, with the reason and the nearest passages.
    _by_id(browser, "search-only").click()
    _ask(browser, "Zyxwvut qponm lkjih?")  # no word in common with any passage
    _until(browser, lambda d: _by_id(d, "withheld").is_displayed(), "the withheld notice")
    assert "weak retrieval" in _by_id(browser, "withheld").text
    assert _by_id(browser, "sources-title").text.lower() == "nearest passages"
    assert browser.find_elements(By.CSS_SELECTOR, "#sources > li")


def test_errors_show_in_the_error_area(browser: WebDriver, start_server) -> None:
    server = start_server()
    _open(browser, server.url + "/")
    _wait_for_collections(browser)

    _ask(browser, "")
    _until(browser, _error, "the error area")
    assert "Type a question first" in _error(browser)

    # A collection gone since the page was loaded: the server's message and hint.
    browser.execute_script(
        "const option = document.createElement('option');"
        "option.value = 'nope'; option.textContent = 'nope';"
        "const picker = document.getElementById('collection');"
        "picker.append(option); picker.value = 'nope';"
    )
    _ask(browser, QUESTION)
    _until(browser, lambda d: "nope" in _error(d), "the server's error")
    assert "no collection named 'nope'" in _by_id(browser, "error-message").text
    assert "ragcli ingest" in _by_id(browser, "error-hint").text
    assert _by_id(browser, "error").get_attribute("role") == "alert"
    assert not _by_id(browser, "answer-section").is_displayed()  # no empty answer box

    # The next question clears it.
    Select(_by_id(browser, "collection")).select_by_value("docs")
    _ask(browser, QUESTION)
    _until(browser, lambda d: "Ada Pell" in _by_id(d, "answer").text, "the answer")
    assert _error(browser) == ""


def test_a_token_from_the_fragment_is_sent_and_kept(browser: WebDriver, start_server) -> None:
    server = start_server("--token", "secret")

    _open(browser, server.url + "/")
    _until(browser, _error, "the 401 message")
    assert "needs a token" in _by_id(browser, "error-message").text
    assert "#token=" in _by_id(browser, "error-hint").text

    _open(browser, server.url + "/#token=wrong")
    _until(browser, _error, "the refused token's message")
    assert "refused the token" in _by_id(browser, "error-message").text

    _open(browser, server.url + "/#token=secret")
    _wait_for_collections(browser)
    assert _error(browser) == ""
    assert "secret" not in browser.current_url  # taken out of the address bar
    _ask(browser, QUESTION)
    _until(browser, lambda d: "Ada Pell" in _by_id(d, "answer").text, "the answer")

    # Kept for the tab: a reload without the fragment still works.
    browser.refresh()
    _wait_for_collections(browser)
    assert _error(browser) == ""


def test_the_page_loads_nothing_from_elsewhere() -> None:
    page = REPO / "ragcli" / "server" / "page"
    for name in ("index.html", "app.js", "style.css"):
        text = (page / name).read_text()
        assert "http://" not in text and "https://" not in text, name
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text, name
        assert not re.search(r"\son[a-z]+\s*=", text), name  # no inline event handlers
    assert os.path.getsize(page / "app.js") < 64 * 1024
