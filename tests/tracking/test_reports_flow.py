"""End to end through HTTP: beacons, clicks and an attributed order make the advertiser's
/api/v1/reports show exactly the impressions, clicks, conversions, spend and revenue."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from adplatform.access.services import api_key_create
from tracking import services

from ..conftest import auth, behaviour_event
from .conftest import settle

pytestmark = pytest.mark.django_db(transaction=True)


def test_reports_show_tracked_events_exactly(http: httpx.Client, make_key: Callable, campaign: Callable) -> None:
    # given a CPC campaign at 0.50 per click and three decisions that served it to shopper-r
    base = campaign(bid=Decimal("0.50"), user_id="shopper-r", segment="runners")
    ads = [replace(base, request_id=str(uuid.uuid4())) for _ in range(3)]
    urls = [services.tracking_urls(ad=ad) for ad in ads]
    # when all three are seen, two are clicked (one twice), and the shopper orders 42.50
    for impression_url, _ in urls:
        assert http.get(impression_url).status_code == 204
    for _, click_url in (urls[0], urls[1], urls[1]):
        assert http.get(click_url).status_code == 302
    purchase = behaviour_event(
        "purchase",
        user_id="shopper-r",
        timestamp=datetime.now(UTC) + timedelta(seconds=1),
        properties={
            "order_id": "o-r-1",
            "items": [{"product_id": "sku-1", "quantity": 1, "price": "42.50"}],
            "revenue": "42.50",
            "currency": "EUR",
        },
    )
    r = http.post("/api/v1/events", json={"events": [purchase]}, headers=auth(make_key("events:write")))
    assert r.json()["accepted"] == 1
    settle("attribution")
    settle("reports")
    # then the advertiser's report has exactly these figures
    token = api_key_create(scopes=["advertiser"], advertiser_id=base.advertiser_id).key
    today = datetime.now(UTC).date().isoformat()
    r = http.get(f"/api/v1/reports?from={today}&to={today}&group_by=campaign", headers=auth(token))
    assert r.status_code == 200, r.text
    row = r.json()["rows"]
    assert [{k: v for k, v in line.items() if k != "name"} for line in row] == [
        {
            "campaign_id": base.campaign_id,
            "impressions": 3,
            "clicks": 2,
            "conversions": 1,
            "spend": "1.00",
            "revenue": "42.50",
            "ctr": round(2 / 3, 6),
            "cvr": 0.5,
            "cpc": "0.50",
            "cpa": "1.00",
            "roas": 42.5,
        }
    ]
    r = http.get(f"/api/v1/reports?from={today}&to={today}&group_by=segment", headers=auth(token))
    assert [(line["segment"], line["impressions"]) for line in r.json()["rows"]] == [("runners", 3)]
