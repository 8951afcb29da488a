"""GET /track/impression/<token> and GET /track/click/<token> over real HTTP: recorded once
per token, billed in the same transaction (CPM on the impression, CPC on the click), the
click implying the impression, and bad tokens answered in the one error shape with
nothing written."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.test import Client, override_settings

from adplatform.eventlog import selectors as eventlog
from campaigns.models import CampaignDaySpend, CampaignSpend
from tracking import services

from .conftest import token_of

pytestmark = pytest.mark.django_db(transaction=True)


def ad_events() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [(e.type, e.data, e.meta) for e in eventlog.iter_all(types=["AdImpressed", "AdClicked"])]


def spent(campaign_id: int) -> Decimal | None:
    row = CampaignSpend.objects.filter(campaign_id=campaign_id).first()
    return row.spent if row else None


def expected_data(ad: services.ServedAd, charge: str) -> dict[str, Any]:
    return {
        "request_id": ad.request_id,
        "creative_id": ad.creative_id,
        "campaign_id": ad.campaign_id,
        "advertiser_id": ad.advertiser_id,
        "placement": ad.placement,
        "position": ad.position,
        "pricing_model": ad.pricing_model,
        "price": str(ad.price),
        "charge": charge,
        "currency": ad.currency,
        "segment": ad.segment,
        "variant": ad.variant,
        "served_at": ad.served_at.isoformat(),
        # the click model's raw p_click and version the token carried (ADR 0062)
        "p_click": ad.p_click,
        "model_version": ad.model_version,
    }


def test_impression_beacon_records_once_and_bills_cpm(http: httpx.Client, campaign: Callable) -> None:
    # given a CPM ad at 2.50 per thousand
    ad = campaign(bid_model="cpm", bid=Decimal("2.50"))
    impression_url, _ = services.tracking_urls(ad=ad)
    # when the beacon fires twice
    first = http.get(impression_url)
    second = http.get(impression_url)
    # then both answer 204, and one AdImpressed exists, charged 2.50 / 1000 once
    assert (first.status_code, second.status_code) == (204, 204)
    assert first.headers["cache-control"] == "no-store"
    assert ad_events() == [("AdImpressed", expected_data(ad, "0.0025"), {"source": "beacon"})]
    assert spent(ad.campaign_id) == Decimal("0.0025")
    stored = next(eventlog.iter_all(types=["AdImpressed"]))
    assert stored.event_id == services.ad_event_id("AdImpressed", ad)
    assert stored.stream == f"decision:{ad.request_id}" and stored.user_key == ad.user_id


def test_click_redirects_records_once_bills_cpc_and_implies_the_impression(
    http: httpx.Client, campaign: Callable
) -> None:
    # given a CPC ad at 0.50 whose impression beacon never fired
    ad = campaign(bid_model="cpc", bid=Decimal("0.50"))
    impression_url, click_url = services.tracking_urls(ad=ad)
    # when the shopper clicks twice, and the late beacon arrives after
    clicks = [http.get(click_url), http.get(click_url)]
    late_beacon = http.get(impression_url)
    # then each click redirects to the landing URL
    for r in clicks:
        assert r.status_code == 302
        assert r.headers["location"] == ad.landing_url
    assert late_beacon.status_code == 204
    # and exactly one impression (implied by the click, not billed) and one click (billed) exist
    assert ad_events() == [
        ("AdImpressed", expected_data(ad, "0"), {"source": "redirect", "implied_by_click": True}),
        ("AdClicked", expected_data(ad, "0.50"), {"source": "redirect"}),
    ]
    assert spent(ad.campaign_id) == Decimal("0.50")


def test_click_after_beacon_adds_only_the_click(http: httpx.Client, campaign: Callable) -> None:
    # given a CPM ad whose beacon fired
    ad = campaign(bid_model="cpm", bid=Decimal("4.00"))
    impression_url, click_url = services.tracking_urls(ad=ad)
    assert http.get(impression_url).status_code == 204
    # when it is clicked
    assert http.get(click_url).status_code == 302
    # then the click is recorded without charge (CPM bills impressions only)
    assert [(t, d["charge"]) for t, d, _ in ad_events()] == [("AdImpressed", "0.004"), ("AdClicked", "0")]
    assert spent(ad.campaign_id) == Decimal("0.004")


def test_cpa_ads_are_not_billed_on_impression_or_click(http: httpx.Client, campaign: Callable) -> None:
    ad = campaign(bid_model="cpa", bid=Decimal("5.00"), objective="conversions")
    impression_url, click_url = services.tracking_urls(ad=ad)
    assert http.get(impression_url).status_code == 204
    assert http.get(click_url).status_code == 302
    assert [(t, d["charge"]) for t, d, _ in ad_events()] == [("AdImpressed", "0"), ("AdClicked", "0")]
    assert spent(ad.campaign_id) is None


def test_click_over_budget_is_recorded_unbilled(http: httpx.Client, campaign: Callable) -> None:
    # given a CPC campaign whose 0.50 daily budget one click at 0.50 uses up
    ads = [campaign(bid=Decimal("0.50"), daily_budget=Decimal("0.50"))]
    ads.append(services.ServedAd(**{**ads[0].__dict__, "position": 2}))
    # when both ads are clicked
    for ad in ads:
        assert http.get(services.tracking_urls(ad=ad)[1]).status_code == 302
    # then both clicks count, only the first is charged
    assert [d["charge"] for t, d, _ in ad_events() if t == "AdClicked"] == ["0.50", "0"]
    assert spent(ads[0].campaign_id) == Decimal("0.50")


def _flip(token: str, i: int) -> str:
    ch = "A" if token[i] != "A" else "B"
    return token[:i] + ch + token[i + 1 :]


def test_bad_tokens_are_4xx_in_the_error_shape_and_record_nothing(http: httpx.Client, campaign: Callable) -> None:
    # given a CPC ad's URLs, tampered, foreign, of the other kind, and expired variants
    ad = campaign(bid=Decimal("0.50"))
    impression_url, click_url = services.tracking_urls(ad=ad)
    imp, clk = token_of(impression_url), token_of(click_url)
    with override_settings(TRACKING_SECRET="someone-else"):
        foreign_imp, foreign_clk = (token_of(u) for u in services.tracking_urls(ad=ad))
    with override_settings(TRACKING_TOKEN_TTL_SECONDS=-1):
        expired_imp, expired_clk = (token_of(u) for u in services.tracking_urls(ad=ad))
    invalid = {
        "error": {
            "status": 400,
            "code": "invalid",
            "message": "Invalid input.",
            "fields": {"token": [services.ERROR_TOKEN_INVALID]},
        }
    }
    expired = {"error": {"status": 410, "code": "token_expired", "message": services.ERROR_TOKEN_EXPIRED}}
    cases = [
        (f"/track/impression/{_flip(imp, 10)}", 400, invalid),
        (f"/track/click/{_flip(clk, 10)}", 400, invalid),
        (f"/track/click/{_flip(clk, len(clk) - 2)}", 400, invalid),
        (f"/track/impression/{foreign_imp}", 400, invalid),
        (f"/track/click/{foreign_clk}", 400, invalid),
        (f"/track/click/{imp}", 400, invalid),
        (f"/track/impression/{clk}", 400, invalid),
        ("/track/click/not-a-token", 400, invalid),
        (f"/track/impression/{expired_imp}", 410, expired),
        (f"/track/click/{expired_clk}", 410, expired),
    ]
    # when each is requested
    for url, status, body in cases:
        r = http.get(url)
        # then it is the stated 4xx in the one error shape
        assert (r.status_code, r.json()) == (status, body), url
    # an overlong token, through Django's test client (the live server's media-files
    # wrapper fails on path segments longer than the file system allows, before any view)
    r = Client().get("/track/impression/" + "x" * 9000)
    assert (r.status_code, r.json()) == (400, invalid)
    # HEAD (link checkers) and POST are not recording methods
    assert http.head(click_url).status_code == 405
    assert http.post(impression_url).json()["error"]["status"] == 405
    # and nothing was recorded or charged anywhere
    assert eventlog.count_events() == eventlog.count_events(types=_campaign_event_types())
    assert ad_events() == []
    assert CampaignSpend.objects.count() == 0 and CampaignDaySpend.objects.count() == 0


def _campaign_event_types() -> list[str]:
    from campaigns import events as campaign_events

    return sorted(campaign_events.STATE_EVENT_TYPES)


GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
CUBOT_PHONE = "Mozilla/5.0 (Linux; Android 12; CUBOT X30) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36"


@pytest.mark.parametrize(
    "headers",
    [
        {"User-Agent": GOOGLEBOT},
        {"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"},
        {"User-Agent": CHROME, "Sec-Purpose": "prefetch;prerender"},
        {"User-Agent": CHROME, "Purpose": "prefetch"},
    ],
    ids=["googlebot", "slack-preview", "sec-purpose-prefetch", "purpose-prefetch"],
)
def test_invalid_traffic_is_answered_but_neither_counted_nor_billed(
    http: httpx.Client, campaign: Callable, headers: dict[str, str]
) -> None:
    # given a CPM ad and a CPC ad
    cpm, cpc = campaign(bid_model="cpm", bid=Decimal("2.50")), campaign(bid_model="cpc", bid=Decimal("0.50"))
    impression_url, _ = services.tracking_urls(ad=cpm)
    _, click_url = services.tracking_urls(ad=cpc)
    # when a crawler, a link preview or a prefetch fetches the beacon and the click URL
    beacon = http.get(impression_url, headers=headers)
    click = http.get(click_url, headers=headers)
    # then the beacon answers 204 and the click still redirects (uncacheable, so the real
    # navigation comes back), but no ad event exists and nothing is billed
    assert beacon.status_code == 204
    assert click.status_code == 302 and click.headers["location"] == cpc.landing_url
    assert click.headers["cache-control"] == "no-store"
    assert ad_events() == []
    assert spent(cpm.campaign_id) is None and spent(cpc.campaign_id) is None


@pytest.mark.parametrize("user_agent", [CHROME, CUBOT_PHONE, ""], ids=["chrome", "cubot-phone", "no-agent"])
def test_shopper_traffic_is_not_mistaken_for_a_bot(http: httpx.Client, campaign: Callable, user_agent: str) -> None:
    # given a CPC ad, and a browser (one whose device name contains "bot"), or no agent at all
    ad = campaign(bid_model="cpc", bid=Decimal("0.50"))
    _, click_url = services.tracking_urls(ad=ad)
    # when it clicks
    r = http.get(click_url, headers={"User-Agent": user_agent})
    # then the click is recorded and billed
    assert r.status_code == 302
    assert [t for t, _, _ in ad_events()] == ["AdImpressed", "AdClicked"]
    assert spent(ad.campaign_id) == Decimal("0.50")


def test_invalid_traffic_filter_can_be_switched_off(campaign: Callable) -> None:
    # given the bot pattern emptied
    ad = campaign(bid_model="cpc", bid=Decimal("0.50"))
    _, click_url = services.tracking_urls(ad=ad)
    with override_settings(TRACKING_BOT_USER_AGENT_PATTERN=""):
        # when Googlebot clicks
        outcome = services.click_record(token=token_of(click_url), client=services.ClientRequest(user_agent=GOOGLEBOT))
    # then it counts like any click
    assert outcome.recorded and outcome.filtered is None and outcome.charge == Decimal("0.50")
