"""`vistag serve` end to end in headless Chromium (Debian's chromium + chromium-driver, driven by Selenium)."""

from __future__ import annotations

import shutil
import time

import pytest

from tests.integration.conftest import start_node, wipe
from vistag.cli.main import main
from vistag.config import ConnectionSettings
from vistag.engine.connect import connect
from vistag.images import ImageStore
from vistag.search import Searcher

pytestmark = [pytest.mark.browser, pytest.mark.opensearch, pytest.mark.torch]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("Debian packages chromium and chromium-driver are not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_storefront_search_chips_upload_and_similar(browser, small_catalog, tmp_path, capsys):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from vistag.analyzers.relations import TagRelations
    from vistag.models import create_embedder
    from vistag.service.storefront import Storefront, serve_in_thread

    node = start_node("opensearch")
    wipe(node)
    catalog, images, rows = small_catalog
    assert (
        main(
            [
                "-q",
                "index",
                "--url",
                node.url,
                "--catalog",
                str(catalog),
                "--images",
                str(images),
                "--json",
                "--dead-letter",
                str(tmp_path / "dead.jsonl"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    client = connect(ConnectionSettings(urls=(node.url,)))
    tag_sets = [h["_source"]["tags"] for h in client.search("products", {"size": 100})["hits"]["hits"]]
    embedder = create_embedder("efficientnet-lite0", device="cpu")
    app = Storefront(
        Searcher(client, "products"),
        ImageStore(images),
        lambda im: embedder.embed_images([im])[0].tolist(),
        TagRelations.fit(tag_sets),
    )
    server, url = serve_in_thread(app)
    try:
        browser.get(url + "/")
        chips = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#chips .chip"), what="tag chips")
        assert len(chips) >= 5

        # Keyword search: result cards with real thumbnails.
        box = browser.find_element(By.ID, "q")
        box.send_keys("shirt", Keys.ENTER)
        cards = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#results .card"), what="results")
        assert "keyword" in browser.find_element(By.ID, "status").text
        assert "shirt" in cards[0].text.lower(), cards[0].text  # the best keyword hit is a shirt
        wait_for(
            lambda: browser.execute_script(
                "return [...document.querySelectorAll('#results img')].every(i => i.complete && i.naturalWidth > 0)"
            ),
            what="thumbnails",
        )

        # A tag chip turns the query hybrid and shows the expanded tags.
        chip = next(c for c in chips if c.get_attribute("data-tag") == "apparel")
        chip.click()
        wait_for(lambda: "hybrid" in browser.find_element(By.ID, "status").text, what="hybrid results")
        assert "on" in chip.get_attribute("class")
        expanded = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#expanded .chip"), what="expanded tags")
        assert expanded[0].text.startswith("+ ")

        # Upload a product photo: that product comes back first.
        target = rows[7]
        browser.find_element(By.ID, "upload").send_keys(str(images / target["file"]))
        wait_for(lambda: "image:" in browser.find_element(By.ID, "status").text, timeout=120, what="image results")
        first = browser.find_elements(By.CSS_SELECTOR, "#results .card")[0]
        assert first.get_attribute("data-id") == target["id"]

        # "similar" on that card: similar products, never the product itself.
        first.find_element(By.CSS_SELECTOR, "button.similar").click()
        wait_for(lambda: f"similar to {target['id']}" in browser.find_element(By.ID, "status").text, what="similar")
        ids = [c.get_attribute("data-id") for c in browser.find_elements(By.CSS_SELECTOR, "#results .card")]
        assert ids and target["id"] not in ids
    finally:
        server.shutdown()
