"""The web page in a real browser: Debian's headless Chromium, driven by Selenium through
Debian's chromedriver, against a server on a free loopback port.  Upload a query image, see K
results, open one to search from it, filter by label, compare modes, open the communities view.

Screenshots (query and results, communities) go to the test's folder, and also to
$GRAPHRET_SCREENSHOTS when it is set (benchmarks/results/serve/ keeps copies)."""

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

import graphret
from graphret.data.sources import open_source
from tests.serving import live_server, png_bytes

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
K = 10

try:
    import selenium  # noqa: F401

    HAVE_SELENIUM = True
except ImportError:  # pragma: no cover - selenium is in the test extra
    HAVE_SELENIUM = False

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists() and HAVE_SELENIUM),
    reason="needs headless Chromium and chromedriver (apt-get install -y chromium chromium-driver; .ci/run installs them) "
           "and selenium (the test extra)",
)

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1400,1000"]


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("browser") / "demo-store"
    graphret.build("demo:n=240,size=48", str(path), encoder="pixels", k=8)
    return path


@pytest.fixture(scope="module")
def server(store_path):
    with live_server(store_path) as running:
        yield running


@pytest.fixture()
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="graphret-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait(driver, condition, seconds: float = 90):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds, poll_frequency=0.1).until(condition)


def searches(driver) -> int:
    return int(driver.execute_script("return Number(document.body.dataset.searches || 0)"))


def results(driver):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, "#results .result")


def screenshot(driver, tmp_path: Path, name: str, *, whole_page: bool = False) -> None:
    path = tmp_path / name
    if whole_page:
        height = int(driver.execute_script("return document.documentElement.scrollHeight"))
        driver.set_window_size(1400, min(max(height + 120, 1000), 4000))
    driver.save_screenshot(str(path))
    if whole_page:
        driver.set_window_size(1400, 1000)
    target = os.environ.get("GRAPHRET_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / name)


def test_search_by_upload_open_a_result_filter_and_see_communities(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    query = tmp_path / "query-phantom.png"
    query.write_bytes(png_bytes(open_source("demo:n=20,size=48", seed=5).image(3)))
    driver = browser
    driver.get(server.url + "/")
    wait(driver, lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
    assert "240 items" in driver.find_element(By.ID, "store-info").text
    assert len(driver.find_elements(By.CSS_SELECTOR, "#browse .card")) == 24  # stored images to click

    # upload a query image: K results with rank, score, label and community
    before = searches(driver)
    driver.find_element(By.ID, "file-input").send_keys(str(query))
    wait(driver, lambda d: searches(d) > before)
    cards = results(driver)
    assert len(cards) == K
    assert cards[0].text.startswith("#1 · ") and "community" in cards[0].text
    summary = driver.find_element(By.ID, "result-summary").text
    assert summary.startswith("region · top 10") and "scanned" in summary
    assert driver.find_element(By.ID, "error").get_attribute("hidden") is not None
    screenshot(driver, tmp_path, "query-results.png")

    # open a result: it becomes the query, and never appears in its own results
    chosen = cards[2].get_attribute("data-id")
    before = searches(driver)
    cards[2].click()
    wait(driver, lambda d: searches(d) > before)
    assert driver.find_element(By.CSS_SELECTOR, "#query-caption .query-id").text == chosen
    ids = [card.get_attribute("data-id") for card in results(driver)]
    assert len(ids) == K and chosen not in ids
    wait(driver, lambda d: d.find_element(By.ID, "query-details").text != "")  # its label, split, metadata

    # each mode's time and scanned fraction (before a filter: class mode's predicted class may hold
    # fewer than K items that pass one)
    driver.find_element(By.ID, "compare").click()
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#mode-table tbody tr")) == 5)
    rows = {row.get_attribute("data-mode"): row.text for row in driver.find_elements(By.CSS_SELECTOR, "#mode-table tbody tr")}
    assert set(rows) == {"region", "graph", "flat", "class", "probe"}
    for mode in rows:  # server milliseconds, the fraction scanned, the share with the query's label (class: a kNN vote)
        assert re.fullmatch(rf"{mode} \d+\.\d [\d.]+% \d+%", rows[mode]), rows[mode]
    screenshot(driver, tmp_path, "modes.png", whole_page=True)

    # filter by label: every result carries it
    before = searches(driver)
    Select(driver.find_element(By.ID, "label-filter")).select_by_value("nodule")
    wait(driver, lambda d: searches(d) > before)
    labels = [card.find_element(By.CLASS_NAME, "label").get_attribute("title") for card in results(driver)]
    assert len(labels) == K and all("nodule" in label.split("|") for label in labels)

    # the communities view: sizes, label composition, exemplars, the map
    driver.find_element(By.ID, "tab-communities").click()
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#community-table tbody tr")) > 1)
    first = driver.find_elements(By.CSS_SELECTOR, "#community-table tbody tr")[0]
    size = int(first.find_elements(By.TAG_NAME, "td")[1].text)
    first.click()
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#exemplars .card")) > 0)
    assert driver.find_element(By.ID, "community-title").text.endswith(f"{size} images")
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#members .card")) == min(size, 48))
    wait(driver, lambda d: d.execute_script("const m = document.getElementById('community-map'); return m.complete && m.naturalWidth > 0"))
    assert driver.find_elements(By.CSS_SELECTOR, "#partition-summary tbody tr")
    screenshot(driver, tmp_path, "communities.png", whole_page=True)

    # an exemplar searches from it, back in the search view
    exemplar = driver.find_elements(By.CSS_SELECTOR, "#exemplars .card")[0]
    exemplar_id = exemplar.get_attribute("data-id")
    before = searches(driver)
    exemplar.click()
    wait(driver, lambda d: searches(d) > before)
    assert driver.find_element(By.ID, "search-view").is_displayed()
    assert driver.find_element(By.CSS_SELECTOR, "#query-caption .query-id").text == exemplar_id
    assert len(results(driver)) == K


def test_a_search_has_an_address_and_back_steps_through_searches(server, browser, store_path):
    """/?id=...&k=...&mode=... opens that search; each search pushes one history entry, so
    back and forward step through them (issue 25.7)."""
    from urllib.parse import quote

    from selenium.webdriver.common.by import By

    first = str(graphret.open(store_path).ids[5])
    driver = browser
    driver.get(f"{server.url}/?id={quote(first, safe='')}&k=5&mode=flat")
    wait(driver, lambda d: d.execute_script("return document.body.dataset.ready === 'true'") and searches(d) >= 1)

    def shown(d):
        return d.find_element(By.CSS_SELECTOR, "#query-caption .query-id").text

    def address(d):
        return d.execute_script("const p = new URLSearchParams(location.search); return [p.get('id'), p.get('k'), p.get('mode')]")

    assert shown(driver) == first and len(results(driver)) == 5
    assert driver.find_element(By.ID, "result-summary").text.startswith("flat · top 5")
    assert address(driver) == [first, "5", "flat"]

    second = results(driver)[0].get_attribute("data-id")
    before = searches(driver)
    results(driver)[0].click()
    wait(driver, lambda d: searches(d) > before and shown(d) == second)
    assert address(driver) == [second, "5", "flat"]

    driver.back()
    wait(driver, lambda d: shown(d) == first and address(d)[0] == first)
    wait(driver, lambda d: len(results(d)) == 5 and second in [c.get_attribute("data-id") for c in results(d)])
    driver.forward()
    wait(driver, lambda d: shown(d) == second and address(d) == [second, "5", "flat"])
    wait(driver, lambda d: first in [c.get_attribute("data-id") for c in results(d)] or len(results(d)) == 5)
