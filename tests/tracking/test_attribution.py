"""Attribution projection: OrderPlaced → ConversionAttributed for the shopper's last click
within the window (exact fields, deterministic ids), CPA billing, duplicates and late
events, replay from zero == live (no new events, no new charges), erasure."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import override_settings

from adplatform.eventlog import selectors as eventlog
from adplatform.eventlog.services import user_erase
from behaviour.services import events_ingest
from campaigns.models import CampaignSpend
from ranking.services import AdExposure, ad_exposures_import
from tracking import services
from tracking.models import AttributionClick, AttributionOrder

from ..conftest import behaviour_event
from .conftest import settle, token_of

pytestmark = pytest.mark.django_db(transaction=True)

T = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)


def click(ad: services.ServedAd, at: datetime) -> uuid.UUID:
    services.click_record(token=token_of(services.tracking_urls(ad=ad)[1]), at=at)
    return services.ad_event_id("AdClicked", ad)


def order(user: str, order_id: str, at: datetime, revenue: str = "40.00", event_id: str | None = None) -> None:
    props = {
        "order_id": order_id,
        "items": [{"product_id": "sku-1", "quantity": 2, "price": "20.00"}],
        "revenue": revenue,
        "currency": "EUR",
    }
    raw = behaviour_event("purchase", user_id=user, properties=props, timestamp=at, event_id=event_id)
    result = events_ingest(raw_events=[raw])
    assert result.accepted + result.duplicates == 1


def conversions() -> list[dict[str, Any]]:
    return [e.data for e in eventlog.iter_all(types=["ConversionAttributed"])]


def test_order_is_attributed_to_the_last_click_within_the_window(campaign: Callable) -> None:
    # given shopper-1 clicked an ad of campaign A, then one of campaign B, then ordered;
    # a click after the order does not count
    a = campaign(bid=Decimal("0.40"), user_id="shopper-1", served_at=T - timedelta(minutes=1))
    b = campaign(bid=Decimal("0.60"), user_id="shopper-1", served_at=T)
    after = campaign(bid=Decimal("0.60"), user_id="shopper-1", served_at=T)
    click(a, T)
    b_click = click(b, T + timedelta(minutes=10))
    order("shopper-1", "o-1", T + timedelta(hours=1))
    click(after, T + timedelta(hours=2))
    # when the projection runs
    settle("attribution")
    # then one conversion, for B, with the order's revenue, not billed (CPC)
    event = next(eventlog.iter_all(types=["ConversionAttributed"]))
    assert event.event_id == services.conversion_event_id(user_key="shopper-1", order_id="o-1")
    assert event.stream == f"decision:{b.request_id}" and event.user_key == "shopper-1"
    assert event.occurred_at == T + timedelta(hours=1)
    assert conversions() == [
        {
            "request_id": b.request_id,
            "creative_id": b.creative_id,
            "campaign_id": b.campaign_id,
            "advertiser_id": b.advertiser_id,
            "placement": b.placement,
            "order_id": "o-1",
            "revenue": "40.00",
            "charge": "0",
            "currency": "EUR",
            "segment": b.segment,
            "click_event_id": str(b_click),
            "pricing_model": "cpc",
        }
    ]


def test_no_attribution_outside_the_window_or_for_other_shoppers(campaign: Callable) -> None:
    ad = campaign(user_id="shopper-1", served_at=T)
    click(ad, T)
    with override_settings(ATTRIBUTION_WINDOW_SECONDS=3600):
        order("shopper-1", "in-window", T + timedelta(seconds=3600))
        order("shopper-1", "too-late", T + timedelta(seconds=3601))
        order("shopper-2", "someone-else", T + timedelta(seconds=10))
        settle("attribution")
    assert [c["order_id"] for c in conversions()] == ["in-window"]


def test_cpa_campaign_is_charged_its_price_per_conversion_once_per_order(campaign: Callable) -> None:
    # given a CPA ad at 5.00 per conversion, clicked
    ad = campaign(bid_model="cpa", bid=Decimal("5.00"), objective="conversions", user_id="s", served_at=T)
    click(ad, T)
    # when two orders follow, one of them sent twice under different event ids
    order("s", "o-1", T + timedelta(hours=1), revenue="30.00")
    order("s", "o-1", T + timedelta(hours=1), revenue="30.00")
    order("s", "o-2", T + timedelta(hours=2), revenue="12.50")
    settle("attribution")
    # then two conversions, each charged 5.00, and the ledger holds 10.00
    assert [(c["order_id"], c["revenue"], c["charge"]) for c in conversions()] == [
        ("o-1", "30.00", "5.00"),
        ("o-2", "12.50", "5.00"),
    ]
    assert CampaignSpend.objects.get(campaign_id=ad.campaign_id).spent == Decimal("10.00")


def test_late_order_and_late_click(campaign: Callable) -> None:
    # late order: the click was processed long before the order event arrives, with the
    # order's own (earlier) timestamp still inside the window
    ad = campaign(user_id="late", served_at=T)
    click(ad, T)
    settle("attribution")
    order("late", "o-late", T + timedelta(minutes=30))
    settle("attribution")
    assert [c["order_id"] for c in conversions()] == ["o-late"]
    # late click: an order that found no click is attributed when a click from before it
    # arrives afterwards (e.g. reported by the storefront)
    other = campaign(user_id="late-click", served_at=T)
    order("late-click", "o-waiting", T + timedelta(hours=1))
    settle("attribution")
    assert len(conversions()) == 1
    other_click = click(other, T + timedelta(minutes=5))
    settle("attribution")
    assert [(c["order_id"], c["click_event_id"]) for c in conversions()][1] == ("o-waiting", str(other_click))
    # but an order attributed once stays with its click: a later-timed click before it
    # arriving late changes nothing
    newer = campaign(user_id="late-click", served_at=T)
    click(newer, T + timedelta(minutes=50))
    settle("attribution")
    assert len(conversions()) == 2
    assert AttributionOrder.objects.get(order_id="o-waiting").click_event_id == other_click


def _state() -> tuple[list[Any], list[Any]]:
    clicks = list(AttributionClick.objects.order_by("event_id").values())
    fields = ("user_key", "order_id", "ordered_at", "revenue", "currency", "click_event_id", "conversion_event_id")
    orders = list(AttributionOrder.objects.order_by("user_key", "order_id").values(*fields))
    return clicks, orders


def test_attribution_replay_from_zero_equals_live(campaign: Callable) -> None:
    # given a random interleaving of clicks (CPC and CPA) and orders for 4 shoppers, with
    # the projection running at random points (orders and clicks arrive late and early)
    rng = random.Random(11)
    cpc = campaign(bid=Decimal("0.30"), served_at=T)
    cpa = campaign(bid_model="cpa", bid=Decimal("2.00"), objective="conversions", served_at=T)
    with override_settings(ATTRIBUTION_WINDOW_SECONDS=6 * 3600):
        for i in range(40):
            user = f"u-{rng.randrange(4)}"
            at = T + timedelta(minutes=rng.randrange(24 * 60))
            if rng.random() < 0.5:
                base = cpc if rng.random() < 0.5 else cpa
                click(replace(base, request_id=str(uuid.uuid4()), user_id=user), at)
            else:
                order(user, f"o-{i % 30}", at, revenue=f"{rng.randrange(1, 90)}.00")
            if rng.random() < 0.3:
                settle("attribution")
        settle("attribution")
        live = _state()
        live_conversions = conversions()
        spend = CampaignSpend.objects.get(campaign_id=cpa.campaign_id).spent
        # when the projection is rebuilt from zero, in one batch and one event at a time
        settle("attribution", rebuild=True)
        one_batch = _state()
        with override_settings(PROJECTION_BATCH_SIZE=1):
            settle("attribution", rebuild=True)
    # then its state is identical, no conversion was added and nothing charged again
    assert one_batch == live
    assert _state() == live
    assert conversions() == live_conversions
    assert len(live_conversions) >= 5
    assert spend == Decimal("2.00") * sum(1 for c in live_conversions if c["pricing_model"] == "cpa")
    assert CampaignSpend.objects.get(campaign_id=cpa.campaign_id).spent == spend


def test_erasure_forgets_the_shopper_in_attribution(campaign: Callable) -> None:
    ad = campaign(user_id="erase-me-tracking", served_at=T)
    keep = campaign(user_id="keeper", served_at=T)
    click(ad, T)
    click(keep, T)
    order("erase-me-tracking", "o-secret-1", T + timedelta(minutes=1))
    order("keeper", "o-keep", T + timedelta(minutes=1))
    settle("attribution")
    user_erase(user_key="erase-me-tracking", actor="test")
    assert set(AttributionClick.objects.values_list("user_key", flat=True)) == {"keeper"}
    assert set(AttributionOrder.objects.values_list("user_key", flat=True)) == {"keeper"}
    # the conversion keeps its business facts but loses the order id and the shopper
    erased = [e for e in eventlog.iter_all(types=["ConversionAttributed"]) if e.data.get("order_id") != "o-keep"]
    assert len(erased) == 1 and erased[0].user_key is None and "order_id" not in erased[0].data
    assert erased[0].data["revenue"] == "40.00"
    # and a rebuild after erasure adds nothing
    n = eventlog.count_events(types=["ConversionAttributed"])
    settle("attribution", rebuild=True)
    assert eventlog.count_events(types=["ConversionAttributed"]) == n == 2


def test_imported_history_clicks_are_not_attributed_again(campaign: Callable) -> None:
    # given imported history: an exposure clicked and converted (its own ConversionAttributed),
    # and the matching purchase among the shopper's behaviour events
    ad = campaign(user_id="hist", served_at=T)
    exposure = AdExposure(
        exposure_key="test:1",
        user_id="hist",
        at=T,
        creative_id=ad.creative_id,
        campaign_id=ad.campaign_id,
        advertiser_id=ad.advertiser_id,
        placement="home-top",
        clicked_at=T + timedelta(seconds=5),
        order_id="o-hist",
        converted_at=T + timedelta(minutes=3),
        revenue=Decimal("19.00"),
        currency="EUR",
    )
    ad_exposures_import(exposures=[exposure])
    order("hist", "o-hist", T + timedelta(minutes=3), revenue="19.00")
    order("hist", "o-organic", T + timedelta(hours=1))
    settle("attribution")
    # then the only conversion is the imported one: no second attribution of its order, and
    # the organic order is not credited to a history click
    assert [(c["order_id"], c["revenue"]) for c in conversions()] == [("o-hist", "19.00")]
    assert AttributionClick.objects.count() == 0
