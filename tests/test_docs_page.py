"""`GET /docs`: Swagger UI for `/openapi.json`, public, its assets served by fidesmail itself; checked
in a real headless Chromium against `python app.py`."""

from __future__ import annotations

import json
import os
import re
import tempfile
from urllib.parse import urlsplit

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from fidesmail.web import auth
from tests.support import CONFIG, bearer, token_for
from tests.system_parts import skip_missing

pytestmark = pytest.mark.slow  # Chromium against `python app.py`

CHROMIUM = "/usr/bin/chromium"  # Debian's chromium package
CHROMEDRIVER = "/usr/bin/chromedriver"  # Debian's chromium-driver: given explicitly, nothing is downloaded
METHODS = {"get", "head", "post", "put", "patch", "delete"}  # head: Mandrill checks its webhook URL so
WAIT = 30  # seconds; generous, a shared machine can be slow


def test_docs_page_and_document_need_no_token(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.content_type.startswith("text/html")
    assert '"/openapi.json"' in page.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(url.startswith("/docs/assets/") for url in assets), assets
    for url in assets:
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert len(answer.data) > 1000, url
    assert client.get("/openapi.json").status_code == 200


def test_only_swagger_ui_files_are_served_under_docs_assets(client):
    for name in ("index.css", "secret_key", "..%2F__init__.py", "oauth2-redirect.html"):
        answer = client.get(f"/docs/assets/{name}")
        assert answer.status_code == 404, name
        assert answer.json == {"detail": "Not Found"}


@pytest.fixture
def browser():
    """Headless Chromium driven through chromedriver, with its network log on; skips without them."""
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        skip_missing("Chromium not found: install Debian's chromium and chromium-driver packages")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.TemporaryDirectory(prefix="fidesmail-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,2000", f"--user-data-dir={profile.name}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        profile.cleanup()


def _operations(driver) -> dict[tuple[str, str], object]:
    listed = {}
    for block in driver.find_elements(By.CSS_SELECTOR, ".opblock"):
        method = block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text
        path = block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").text
        listed[(method, path.replace("\u200b", ""))] = block
    return listed


def _execute(driver, block) -> str:
    """Press Execute on an expanded, tried-out operation; the status of the answer shown."""
    for old in block.find_elements(By.CSS_SELECTOR, "button.btn-clear"):
        old.click()
    block.find_element(By.CSS_SELECTOR, "button.execute").click()
    cell = ".live-responses-table .response .response-col_status"
    WebDriverWait(driver, WAIT).until(lambda d: block.find_elements(By.CSS_SELECTOR, cell))
    return block.find_element(By.CSS_SELECTOR, cell).text.strip()


def _authorize(driver, token: str) -> None:
    driver.find_element(By.CSS_SELECTOR, ".auth-wrapper button.authorize").click()
    dialog = WebDriverWait(driver, WAIT).until(lambda d: d.find_element(By.CSS_SELECTOR, ".dialog-ux"))
    dialog.find_element(By.CSS_SELECTOR, ".auth-container input").send_keys(token)
    dialog.find_element(By.CSS_SELECTOR, ".auth-btn-wrapper button.authorize").click()
    WebDriverWait(driver, WAIT).until(lambda d: dialog.find_elements(By.CSS_SELECTOR, "button.btn-done"))
    dialog.find_element(By.CSS_SELECTOR, "button.btn-done").click()


def _requested_urls(driver) -> list[str]:
    """Every URL the browser asked for, from Chromium's network log."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
        elif message["method"] == "Network.webSocketCreated":
            urls.append(message["params"]["url"])
    return urls


def test_docs_in_chromium_lists_every_operation_and_authorize_works(server, browser):
    srv = server()
    created = requests.post(srv.url + "/api/v1/email/config", json=CONFIG, headers=bearer(), timeout=10)
    assert created.status_code == 200, created.text
    document = requests.get(srv.url + "/openapi.json", timeout=10).json()
    expected = {(method.upper(), path) for path, operations in document["paths"].items()
                for method in operations if method in METHODS}
    assert len(expected) >= 12

    browser.get(srv.url + "/docs")
    WebDriverWait(browser, WAIT).until(lambda d: len(_operations(d)) >= len(expected))
    operations = _operations(browser)
    assert set(operations) == expected

    listing = operations[("GET", "/api/v1/email/config")]
    listing.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    WebDriverWait(browser, WAIT).until(lambda d: listing.find_elements(By.CSS_SELECTOR, "button.try-out__btn"))
    listing.find_element(By.CSS_SELECTOR, "button.try-out__btn").click()
    assert _execute(browser, listing) == "401"  # the page itself is public, the API is not

    _authorize(browser, token_for(auth.READ))
    assert _execute(browser, listing) == "200"
    answer = listing.find_element(By.CSS_SELECTOR, ".live-responses-table .response .response-col_description").text
    assert '"key": "my_mailgun"' in answer

    urls = _requested_urls(browser)
    assert srv.url + "/docs/assets/swagger-ui-bundle.js" in urls
    assert srv.url + "/openapi.json" in urls
    network = [url for url in urls if urlsplit(url).scheme in {"http", "https", "ws", "wss"}]
    assert [url for url in network if not url.startswith(srv.url + "/")] == []
