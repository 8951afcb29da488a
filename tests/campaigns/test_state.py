"""Campaign state: services write events and read models together; the delivery
contract; rebuild from zero equals live state; the as-of selector."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from adplatform.eventlog import projections
from adplatform.eventlog import selectors as eventlog
from adplatform.eventlog.services import StreamVersionConflictError
from campaigns import selectors, services
from campaigns.models import Advertiser, Campaign, Creative, Placement
from campaigns.selectors import CreativeVariant, Daypart, FrequencyCap, PlacementInfo, Targeting

from .conftest import ACTOR, campaign_spec, settle

pytestmark = pytest.mark.django_db(transaction=True)


def _snapshot() -> list[list[dict[str, Any]]]:
    return [list(m.objects.order_by("id").values()) for m in (Advertiser, Campaign, Creative, Placement)]


def test_delivery_campaigns_returns_active_running_campaigns_with_approved_creatives(
    make_advertiser: Callable, make_campaign: Callable, make_creative: Callable
) -> None:
    # given an active campaign with one approved and one pending creative, a draft, a paused
    # and a future campaign
    adv = make_advertiser()
    services.placement_upsert(
        spec={"key": "home-top", "page_types": ["home"], "slots": 2, "floor_cpm": Decimal("1.5")}, actor=ACTOR
    )
    cid = make_campaign(adv, targeting={"categories": ["shoes"], "placements": ["home-top"]})
    approved = make_creative(adv, cid)
    make_creative(adv, cid, approve=False, headline="Pending")
    make_campaign(adv, status="draft", name="draft")
    paused = make_campaign(adv, name="paused")
    services.campaign_pause(campaign_id=paused, actor=ACTOR)
    make_campaign(adv, name="future", start=timezone.now() + timedelta(days=2))
    # when delivery asks for campaigns now
    [dc] = selectors.delivery_campaigns(at=timezone.now())
    # then only the running one is returned, fully typed
    spec = campaign_spec()
    assert (dc.campaign_id, dc.advertiser_id, dc.objective, dc.bid_model, dc.bid, dc.currency) == (
        cid,
        adv,
        "clicks",
        "cpc",
        Decimal("0.50"),
        "EUR",
    )
    assert (dc.daily_budget, dc.total_budget, dc.spent_today, dc.spent_total) == (
        Decimal("10.00"),
        Decimal("100.00"),
        Decimal(0),
        Decimal(0),
    )
    assert dc.timezone == "Europe/Berlin" and dc.pacing == "even"
    assert abs(dc.start - spec["start"]) < timedelta(minutes=5)
    assert dc.dayparts == (
        Daypart(days=(0, 1, 2, 3, 4), start=datetime(1, 1, 1, 8).time(), end=datetime(1, 1, 1, 20).time()),
    )
    assert dc.frequency_caps == (FrequencyCap(scope="campaign", max=3, window_seconds=86400),)
    assert dc.targeting == Targeting(
        categories=("shoes",), keywords=(), segments=(), placements=("home-top",), page_types=(), devices=(), geo=()
    )
    [cr] = dc.creatives
    assert (cr.creative_id, cr.campaign_id, cr.headline, cr.product_id) == (approved, cid, "Run faster", "sku-1")
    assert cr.variants == (CreativeVariant(headline="Best {category} deals", body=None),)
    assert selectors.placement_get(key="home-top") == PlacementInfo(
        key="home-top", page_types=("home",), slots=2, floor_cpm=Decimal("1.5")
    )
    assert selectors.placement_get(key="nope") is None


def test_every_change_is_an_event_with_actor_and_version(make_advertiser: Callable, make_campaign: Callable) -> None:
    adv = make_advertiser()
    cid = make_campaign(adv)
    n = services.campaign_update(
        campaign_id=cid,
        changes={"daily_budget": Decimal("20"), "total_budget": Decimal("200"), "targeting": {"geo": ["DE"]}},
        actor="user:7",
    )
    services.campaign_pause(campaign_id=cid, actor="user:8")
    assert n == 2
    events = eventlog.stream_events(stream=f"campaign:{cid}")
    assert [(e.type, e.stream_version, e.meta["actor"]) for e in events] == [
        ("CampaignCreated", 1, ACTOR),
        ("CampaignBudgetChanged", 2, "user:7"),
        ("CampaignTargetingChanged", 3, "user:7"),
        ("CampaignPaused", 4, "user:8"),
    ]
    assert events[1].data == {"campaign_id": cid, "daily_budget": "20.00", "total_budget": "200.00"}
    c = Campaign.objects.get(pk=cid)
    assert (c.daily_budget, c.total_budget, c.status, c.version) == (Decimal(20), Decimal(200), "paused", 4)
    assert c.targeting["geo"] == ["DE"] and c.targeting["categories"] == []
    # no-op changes write nothing
    assert services.campaign_update(campaign_id=cid, changes={"daily_budget": Decimal("20.0000")}, actor="x") == 0
    assert services.campaign_pause(campaign_id=cid, actor="x") is False
    assert len(eventlog.stream_events(stream=f"campaign:{cid}")) == 4


def test_stream_version_conflict_is_detected(make_advertiser: Callable, make_campaign: Callable) -> None:
    from django.db import transaction

    from adplatform.eventlog.services import NewEvent, append_events

    adv = make_advertiser()
    cid = make_campaign(adv)
    with pytest.raises(StreamVersionConflictError), transaction.atomic():
        append_events(
            [
                NewEvent(
                    type="CampaignPaused",
                    stream=f"campaign:{cid}",
                    stream_version=1,
                    data={},
                    occurred_at=timezone.now(),
                )
            ]
        )


def test_rebuild_from_zero_equals_live_state(
    make_advertiser: Callable, make_campaign: Callable, make_creative: Callable
) -> None:
    # given a history of many changes, with the projection run part-way
    a = make_advertiser()
    b = make_advertiser(name="Beta", currency="USD", timezone_name="America/New_York")
    services.placement_upsert(spec={"key": "pdp", "page_types": ["product"], "slots": 1, "floor_cpm": "0"}, actor=ACTOR)
    c1 = make_campaign(a)
    cr1 = make_creative(a, c1)
    projection = projections.get_projection("campaigns")
    projections.catch_up(projection)
    c2 = make_campaign(b, currency="USD", status="draft")
    services.campaign_update(campaign_id=c1, changes={"bid": Decimal("0.70"), "name": "Renamed"}, actor=ACTOR)
    services.campaign_resume(campaign_id=c2, actor=ACTOR)
    services.creative_update(creative_id=cr1, changes={"headline": "New"}, actor=ACTOR)
    services.creative_review(creative_id=cr1, decision="reject", reason="blurry", actor=ACTOR)
    services.advertiser_update(advertiser_id=a, changes={"name": "Acme GmbH"}, actor=ACTOR)
    services.placement_upsert(spec={"key": "pdp", "page_types": ["product"], "slots": 3, "floor_cpm": "2"}, actor=ACTOR)
    settle("campaigns")  # re-applying what services applied inline is harmless
    live = _snapshot()
    # when rebuilt from zero
    settle("campaigns", rebuild=True)
    # then identical
    assert _snapshot() == live
    assert Campaign.objects.get(pk=c1).name == "Renamed"
    assert Creative.objects.get(pk=cr1).status == "rejected"


def test_campaign_as_of_between_two_changes(make_advertiser: Callable, make_campaign: Callable) -> None:
    adv = make_advertiser()
    cid = make_campaign(adv, daily_budget=Decimal("10"), targeting={"categories": ["shoes"]})
    time.sleep(0.01)
    services.campaign_update(
        campaign_id=cid, changes={"daily_budget": Decimal("25"), "targeting": {"categories": ["bags"]}}, actor=ACTOR
    )
    time.sleep(0.01)
    between = timezone.now()
    time.sleep(0.01)
    services.campaign_update(
        campaign_id=cid, changes={"daily_budget": Decimal("40"), "bid": Decimal("0.90")}, actor=ACTOR
    )
    services.campaign_pause(campaign_id=cid, actor=ACTOR)
    s = selectors.campaign_as_of(campaign_id=cid, at=between)
    assert s is not None
    assert (s.daily_budget, s.bid, s.status, s.version) == (Decimal("25.00"), Decimal("0.50"), "active", 3)
    assert s.targeting.categories == ("bags",)
    now = selectors.campaign_as_of(campaign_id=cid, at=timezone.now())
    assert now is not None
    assert (now.daily_budget, now.bid, now.status) == (Decimal("40.00"), Decimal("0.90"), "paused")
    created = eventlog.stream_events(stream=f"campaign:{cid}")[0].occurred_at
    assert selectors.campaign_as_of(campaign_id=cid, at=created - timedelta(seconds=1)) is None


def test_new_creatives_wait_for_review_unless_auto_approve(
    make_advertiser: Callable, make_campaign: Callable, make_creative: Callable
) -> None:
    adv = make_advertiser()
    cid = make_campaign(adv)
    pending = make_creative(adv, cid, approve=False)
    assert Creative.objects.get(pk=pending).status == "pending_review"
    with override_settings(AUTO_APPROVE_CREATIVES=True):
        auto = make_creative(adv, cid, approve=False)
        assert Creative.objects.get(pk=auto).status == "approved"
        assert [e.meta["actor"] for e in eventlog.stream_events(stream=f"creative:{auto}")] == [
            ACTOR,
            services.AUTO_APPROVE_ACTOR,
        ]
    # an edit puts an approved creative back into review
    services.creative_update(creative_id=auto, changes={"body": "new body"}, actor=ACTOR)
    assert Creative.objects.get(pk=auto).status == "pending_review"


def test_rules_are_checked_before_any_event(make_advertiser: Callable) -> None:
    adv = make_advertiser()
    before = eventlog.count_events()
    with pytest.raises(services.RuleViolationError) as err:
        services.campaign_create(
            advertiser_id=adv,
            spec=campaign_spec(end=datetime(2020, 1, 1, tzinfo=UTC), daily_budget=Decimal("200")),
            actor=ACTOR,
        )
    from campaigns import validation

    assert err.value.errors["end"] == [validation.ERROR_END_BEFORE_START]
    assert err.value.errors["daily_budget"] == [validation.ERROR_DAILY_EXCEEDS_TOTAL]
    assert eventlog.count_events() == before
