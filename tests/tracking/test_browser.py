"""The storefront snippet in headless Chromium (Debian's chromium + chromedriver, driven by
Selenium) against the live server: ads render from /rank on the demo page, the impression
beacon fires only once the ad has been in view for a second (exactly one AdImpressed), a
click goes through the tracking redirect to the landing page (exactly one AdClicked), and
the page's behaviour events arrive. Saves a screenshot (ADP_SCREENSHOT_PATH to keep it)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adplatform.eventlog import selectors as eventlog
from campaigns import services as campaigns_services
from catalog.services import ProductInput, products_upsert

pytestmark = pytest.mark.django_db(transaction=True)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
# A developer box without the browser may skip; CI (.ci/run installs both) never does.
needs_browser = pytest.mark.skipif(
    (CHROMIUM is None or CHROMEDRIVER is None) and not os.environ.get("CI"),
    reason="needs Debian chromium + chromium-driver (.ci/run installs them)",
)
SHOPPER = "browser-shopper"


def wait_for(check: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def seed_shop(base_url: str, landing_url: str, settings: Any) -> None:
    settings.AUTO_APPROVE_CREATIVES = False
    for name in ("DELIVERY_CAMPAIGNS_TTL_SECONDS", "DELIVERY_SPEND_TTL_SECONDS", "DELIVERY_EXPLORATION_RATE"):
        setattr(settings, name, 0)
    leaves = ["Tents", "Tents", "Tents", "Hiking boots", "Hiking boots", "Coffee makers"]
    products_upsert(
        products=[
            ProductInput(
                f"sku-{i}",
                f"{leaf} model {i}",
                ("Outdoor" if i < 5 else "Kitchen", leaf),
                "Alpen",
                Decimal(49 + 10 * i),
                "EUR",
                f"https://shop.example/p/sku-{i}",
                "",
                True,
            )  # fmt: skip
            for i, leaf in enumerate(leaves)
        ]
    )
    campaigns_services.placement_upsert(
        spec={"key": "product_below", "page_types": ["product"], "slots": 2, "floor_cpm": Decimal("0.10")}, actor="t"
    )
    adv = campaigns_services.advertiser_create(name="Alpen", currency="EUR", timezone_name="UTC", actor="t")
    now = datetime.now(UTC).replace(microsecond=0)
    campaign = campaigns_services.campaign_create(
        advertiser_id=adv,
        spec={
            "name": "Tents week",
            "objective": "clicks",
            "bid_model": "cpc",
            "bid": Decimal("0.80"),
            "daily_budget": Decimal("50.00"),
            "total_budget": Decimal("500.00"),
            "start": now - timedelta(days=1),
            "end": now + timedelta(days=30),
            "timezone": "UTC",
            "dayparts": [],
            "pacing": "asap",
            "frequency_caps": [],
            "targeting": {},
        },
        actor="t",
        status="active",
    )
    creative = campaigns_services.creative_create(
        advertiser_id=adv,
        campaign_id=campaign,
        spec={
            "headline": "Ultralight tents, 20 % off",
            "body": "Two-person tent, 1.2 kg. Free shipping this week.",
            "image_url": f"{base_url}/static/tracking/demo-ad.svg",
            "landing_url": landing_url,
            "product_id": "sku-1",
            "variants": [],
        },
        actor="t",
    )
    campaigns_services.creative_review(creative_id=creative, decision="approve", actor="t")


def count(type_: str) -> int:
    return eventlog.count_events(types=[type_])


@needs_browser
def test_storefront_renders_ads_beacons_when_viewed_and_clicks_through(
    live_server: Any, browser: Any, make_key: Callable, settings: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    # given a shop with one CPC campaign whose landing page is on this server, and a
    # publishable key with ads:rank + events:write
    landing = f"{live_server.url}/storefront/?category=Tents&landed=1"
    seed_shop(live_server.url, landing, settings)
    key = make_key("ads:rank", "events:write")
    # when a shopper opens a product page in a short window (the ad slot is below the fold)
    browser.set_window_size(1280, 420)
    browser.get(f"{live_server.url}/storefront/?product=sku-0&user={SHOPPER}&key={key}")
    slot = browser.find_element(By.ID, "ad-slot")
    # then the snippet fills the slot from /rank
    wait_for(lambda: slot.get_attribute("data-adp-state") in ("filled", "empty", "error"), what="the ad slot")
    assert slot.get_attribute("data-adp-state") == "filled"
    ad = slot.find_element(By.CSS_SELECTOR, "a.adp-ad")
    assert ad.find_element(By.CSS_SELECTOR, ".adp-headline").text == "Ultralight tents, 20 % off"
    assert ad.get_attribute("href").startswith(f"{live_server.url}/track/click/")
    # and no impression is recorded while the ad is out of view
    time.sleep(1.5)
    assert count("AdImpressed") == 0
    # when it is scrolled into view (and stays there)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", ad)
    wait_for(lambda: ad.get_attribute("data-adp-viewed") == "true", what="viewability")
    # then exactly one impression is recorded, also after more scrolling back and forth
    wait_for(lambda: count("AdImpressed") == 1, what="the impression beacon")
    browser.execute_script("window.scrollTo(0, 0)")
    time.sleep(0.3)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", ad)
    time.sleep(1.5)
    assert count("AdImpressed") == 1
    # and the page reported its page_view and product_view for the shopper
    wait_for(lambda: count("ProductViewed") == 1 and count("PageViewed") == 1, what="behaviour events")
    assert {e.user_key for e in eventlog.iter_all(types=["PageViewed", "ProductViewed"])} == {SHOPPER}
    # a screenshot of the page with its ads
    browser.set_window_size(1280, 900)
    browser.execute_script("window.scrollTo(0, 0)")
    time.sleep(0.3)
    shot = Path(os.environ.get("ADP_SCREENSHOT_PATH") or tmp_path / "storefront.png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # when the shopper clicks the ad
    slot.find_element(By.CSS_SELECTOR, "a.adp-ad").click()
    # then the browser lands on the landing page through the redirect, and one click is recorded
    wait_for(lambda: browser.current_url == landing, what="the landing page")
    assert count("AdClicked") == 1
    assert count("AdImpressed") == 1  # the click found the beacon's impression
