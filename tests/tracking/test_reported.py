"""ad_impression / ad_click reported through POST /api/v1/events count exactly like the
beacons: once per token whichever arrives first, billed the same; tokens that are
tampered, expired or another shopper's are ignored and counted; replay changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.test import override_settings

from adplatform.eventlog import selectors as eventlog
from campaigns.models import CampaignSpend
from tracking import services
from tracking.models import RecentImpression, ReportRejection

from ..conftest import auth, behaviour_event
from .conftest import settle, token_of

pytestmark = pytest.mark.django_db(transaction=True)


def report(http: httpx.Client, key: str, *events: dict[str, Any]) -> None:
    r = http.post("/api/v1/events", json={"events": list(events)}, headers=auth(key))
    assert r.status_code == 202 and r.json()["accepted"] == len(events), r.text


def ad_events() -> list[tuple[str, str, str]]:
    return [(e.type, e.data["charge"], e.meta["source"]) for e in eventlog.iter_all(types=["AdImpressed", "AdClicked"])]


def rejections() -> dict[str, int]:
    return dict(ReportRejection.objects.values_list("reason", "count"))


def test_reported_impression_and_click_count_once_whichever_arrives_first(
    http: httpx.Client, make_key: Callable, campaign: Callable
) -> None:
    # given a CPM ad (1.00 per thousand) and a CPC ad (0.25) shown to shopper-1
    key = make_key("events:write")
    cpm = campaign(bid_model="cpm", bid=Decimal("1.00"), user_id="shopper-1")
    cpc = campaign(bid=Decimal("0.25"), user_id="shopper-1")
    cpm_imp, _ = services.tracking_urls(ad=cpm)
    cpc_imp, cpc_click = services.tracking_urls(ad=cpc)
    # when the storefront reports the CPM impression before its beacon fires, and the CPC
    # click after its redirect happened
    report(http, key, behaviour_event("ad_impression", user_id="shopper-1", properties={"token": token_of(cpm_imp)}))
    settle("ad_reports")
    assert http.get(cpm_imp).status_code == 204
    assert http.get(cpc_click).status_code == 302
    report(
        http,
        key,
        behaviour_event("ad_click", user_id="shopper-1", properties={"token": token_of(cpc_click)}),
        behaviour_event("ad_impression", user_id="shopper-1", properties={"token": token_of(cpc_imp)}),
    )
    settle("ad_reports")
    # then each ad event exists once, billed once, with the source that came first
    assert ad_events() == [
        ("AdImpressed", "0.001", "reported"),
        ("AdImpressed", "0", "redirect"),
        ("AdClicked", "0.25", "redirect"),
    ]
    assert CampaignSpend.objects.get(campaign_id=cpm.campaign_id).spent == Decimal("0.001")
    assert CampaignSpend.objects.get(campaign_id=cpc.campaign_id).spent == Decimal("0.25")
    # and the reported impression counts for frequency like a beacon
    assert RecentImpression.objects.filter(user_key="shopper-1").count() == 2
    assert rejections() == {}


def test_reported_click_without_anything_before_records_impression_and_click(
    http: httpx.Client, make_key: Callable, campaign: Callable
) -> None:
    key = make_key("events:write")
    ad = campaign(bid=Decimal("0.40"), user_id="shopper-2")
    _, click_url = services.tracking_urls(ad=ad)
    report(http, key, behaviour_event("ad_click", user_id="shopper-2", properties={"token": token_of(click_url)}))
    settle("ad_reports")
    assert ad_events() == [("AdImpressed", "0", "reported"), ("AdClicked", "0.40", "reported")]
    # a later redirect of the same token is a no-op (still redirects)
    assert http.get(click_url).status_code == 302
    assert len(ad_events()) == 2


def test_invalid_reported_tokens_are_ignored_and_counted_and_replay_changes_nothing(
    http: httpx.Client, make_key: Callable, campaign: Callable
) -> None:
    # given a CPC ad of shopper-3, and tokens that must not count
    key = make_key("events:write")
    ad = campaign(bid=Decimal("0.40"), user_id="shopper-3")
    imp, click = (token_of(u) for u in services.tracking_urls(ad=ad))
    with override_settings(TRACKING_TOKEN_TTL_SECONDS=-1):
        expired_click = token_of(services.tracking_urls(ad=ad)[1])
    tampered = click[:5] + ("A" if click[5] != "A" else "B") + click[6:]
    # when the storefront reports them (and one valid impression)
    report(
        http,
        key,
        behaviour_event("ad_click", user_id="shopper-3", properties={"token": tampered}),
        behaviour_event("ad_click", user_id="shopper-3", properties={"token": imp}),  # wrong kind
        behaviour_event("ad_click", user_id="shopper-3", properties={"token": expired_click}),
        behaviour_event("ad_click", user_id="someone-else", properties={"token": click}),
        behaviour_event("ad_impression", user_id="shopper-3", properties={"token": imp}),
    )
    settle("ad_reports")
    # then only the valid impression counted, the others are counted by reason
    assert ad_events() == [("AdImpressed", "0", "reported")]
    assert rejections() == {"invalid": 2, "expired": 1, "wrong_user": 1}
    assert CampaignSpend.objects.filter(campaign_id=ad.campaign_id).count() == 0
    # and a replay from zero appends nothing, charges nothing and counts the same
    events_before = eventlog.count_events()
    settle("ad_reports", rebuild=True)
    assert eventlog.count_events() == events_before
    assert rejections() == {"invalid": 2, "expired": 1, "wrong_user": 1}
