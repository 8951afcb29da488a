"""Django admin as an advertiser's staff user: scoped to its own advertiser, every save
and action through the services (events with the user as actor), history from the
event log, and the campaign report page with server-side SVG charts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client
from django.utils import timezone

from adplatform.eventlog import selectors as eventlog
from adplatform.eventlog.services import append_events
from campaigns import validation
from campaigns.models import AdvertiserMembership, Campaign, Creative

from .conftest import settle
from .test_reports import DAY1, DAY2, ad_event

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "correct horse battery"


def staff_client(advertiser_id: int | None, username: str, superuser: bool = False) -> tuple[Client, Any]:
    user_model = get_user_model()
    if superuser:
        user = user_model.objects.create_superuser(username=username, password=PASSWORD, email="")
    else:
        user = user_model.objects.create_user(username=username, password=PASSWORD, is_staff=True)
    if advertiser_id is not None:
        AdvertiserMembership.objects.create(user=user, advertiser_id=advertiser_id)
    client = Client()
    r = client.post("/admin/login/?next=/admin/", {"username": username, "password": PASSWORD})
    assert r.status_code == 302 and r.url == "/admin/", r.content[:500]
    return client, user


def campaign_form(advertiser_id: int | None = None, **overrides: Any) -> dict[str, Any]:
    start = timezone.now() - timedelta(hours=1)
    end = timezone.now() + timedelta(days=10)
    data = {
        "name": "Admin campaign",
        "objective": "clicks",
        "launch_status": "active",
        "bid_model": "cpc",
        "bid": "0.30",
        "daily_budget": "15",
        "total_budget": "150",
        "currency": "",
        "start_0": start.strftime("%Y-%m-%d"),
        "start_1": start.strftime("%H:%M:%S"),
        "end_0": end.strftime("%Y-%m-%d"),
        "end_1": end.strftime("%H:%M:%S"),
        "timezone": "",
        "pacing": "even",
        "dayparts": '[{"days": [0, 1, 2, 3, 4], "start": "09:00", "end": "18:00"}]',
        "frequency_caps": "[]",
        "targeting_categories": "shoes, socks",
        "targeting_keywords": "",
        "targeting_segments": "",
        "targeting_placements": "",
        "targeting_page_types": "",
        "targeting_devices": "",
        "targeting_geo": "DE",
        "creatives-TOTAL_FORMS": "0",
        "creatives-INITIAL_FORMS": "0",
        "creatives-MIN_NUM_FORMS": "0",
        "creatives-MAX_NUM_FORMS": "1000",
    }
    if advertiser_id is not None:
        data["advertiser"] = str(advertiser_id)
    data.update(overrides)
    return data


@pytest.fixture
def two(make_advertiser: Callable, make_campaign: Callable, make_creative: Callable) -> dict[str, int]:
    a = make_advertiser(name="Alpha")
    b = make_advertiser(name="Beta")
    ca, cb = make_campaign(a, name="Alpha sale"), make_campaign(b, name="Beta secret sale")
    return {"a": a, "b": b, "ca": ca, "cb": cb, "cra": make_creative(a, ca), "crb": make_creative(b, cb)}


def test_staff_user_creates_campaign_through_services(two: dict[str, int]) -> None:
    client, user = staff_client(two["a"], "alice")
    # the add form offers only the user's own advertiser
    page = client.get("/admin/campaigns/campaign/add/").content.decode()
    assert "Alpha" in page and "Beta" not in page
    r = client.post("/admin/campaigns/campaign/add/", campaign_form(two["a"]))
    assert r.status_code == 302, r.content.decode()[:3000]
    campaign = Campaign.objects.get(name="Admin campaign")
    assert (campaign.advertiser_id, campaign.currency, campaign.timezone) == (two["a"], "EUR", "Europe/Berlin")
    assert campaign.targeting["categories"] == ["shoes", "socks"] and campaign.targeting["geo"] == ["DE"]
    [created] = eventlog.stream_events(stream=f"campaign:{campaign.pk}")
    assert (created.type, created.meta["actor"]) == ("CampaignCreated", f"user:{user.pk}")
    # change the budget and add a creative inline (echoing the stored schedule)
    assert campaign.end is not None
    data = campaign_form(
        daily_budget="25",
        start_0=campaign.start.strftime("%Y-%m-%d"),
        start_1=campaign.start.strftime("%H:%M:%S"),
        end_0=campaign.end.strftime("%Y-%m-%d"),
        end_1=campaign.end.strftime("%H:%M:%S"),
        **{
            "creatives-TOTAL_FORMS": "1",
            "creatives-0-headline": "Fresh {category}",
            "creatives-0-body": "",
            "creatives-0-image_url": "https://cdn.example/x.png",
            "creatives-0-landing_url": "https://shop.example/x",
            "creatives-0-product_id": "",
            "creatives-0-variants": "[]",
            "creatives-0-campaign": str(campaign.pk),
        },
    )
    data.pop("launch_status")
    r = client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/", data)
    assert r.status_code == 302, r.content.decode()[:3000]
    types = [e.type for e in eventlog.stream_events(stream=f"campaign:{campaign.pk}")]
    assert types == ["CampaignCreated", "CampaignBudgetChanged"]
    creative = Creative.objects.get(campaign_id=campaign.pk)
    assert (creative.headline, creative.status, creative.advertiser_id) == (
        "Fresh {category}",
        "pending_review",
        two["a"],
    )
    # history page reads the events
    history = client.get(f"/admin/campaigns/campaign/{campaign.pk}/history/").content.decode()
    assert "CampaignBudgetChanged" in history and "CreativeCreated" in history and f"user:{user.pk}" in history


def test_invalid_campaign_in_admin_shows_field_errors_and_writes_nothing(two: dict[str, int]) -> None:
    client, _ = staff_client(two["a"], "alice")
    before = eventlog.count_events()
    bad = campaign_form(
        two["a"],
        daily_budget="500",
        timezone="Atlantis/Nowhere",
        dayparts='[{"days": [0], "start": "09:00", "end": "12:00"}, {"days": [0], "start": "10:00", "end": "11:00"}]',
        targeting_devices="toaster",
    )
    r = client.post("/admin/campaigns/campaign/add/", bad)
    assert r.status_code == 200
    errors = r.context["adminform"].form.errors
    assert errors["daily_budget"] == [validation.ERROR_DAILY_EXCEEDS_TOTAL]
    assert errors["timezone"] == [validation.ERROR_TIMEZONE.format(value="Atlantis/Nowhere")]
    assert errors["dayparts"] == ["1: " + validation.ERROR_DAYPART_OVERLAP.format(other=0, day="Monday")]
    assert errors["targeting_devices"] == [
        validation.ERROR_TARGETING_VALUE.format(value="toaster", choices="desktop, mobile, tablet")
    ]
    assert eventlog.count_events() == before
    assert not Campaign.objects.filter(name="Admin campaign").exists()


def test_bulk_pause_and_resume_write_events(two: dict[str, int], make_campaign: Callable) -> None:
    client, user = staff_client(two["a"], "alice")
    second = make_campaign(two["a"], name="Second")
    action = {"action": "pause_selected", "_selected_action": [str(two["ca"]), str(second)]}
    r = client.post("/admin/campaigns/campaign/", action)
    assert r.status_code == 302
    assert set(Campaign.objects.filter(advertiser_id=two["a"]).values_list("status", flat=True)) == {"paused"}
    last = eventlog.stream_events(stream=f"campaign:{second}")[-1]
    assert (last.type, last.meta["actor"]) == ("CampaignPaused", f"user:{user.pk}")
    client.post("/admin/campaigns/campaign/", {**action, "action": "resume_selected"})
    assert set(Campaign.objects.filter(advertiser_id=two["a"]).values_list("status", flat=True)) == {"active"}


def test_superuser_reviews_creatives_with_actions(two: dict[str, int], make_creative: Callable) -> None:
    client, user = staff_client(None, "root", superuser=True)
    pending = make_creative(two["a"], two["ca"], approve=False)
    r = client.post("/admin/campaigns/creative/", {"action": "reject_selected", "_selected_action": [str(pending)]})
    assert r.status_code == 200 and b"Reason for rejection" in r.content  # asks for a reason first
    assert Creative.objects.get(pk=pending).status == "pending_review"
    client.post(
        "/admin/campaigns/creative/",
        {"action": "reject_selected", "_selected_action": [str(pending)], "reason": "Image is blurry"},
    )
    c = Creative.objects.get(pk=pending)
    assert (c.status, c.review_reason) == ("rejected", "Image is blurry")
    client.post("/admin/campaigns/creative/", {"action": "approve_selected", "_selected_action": [str(pending)]})
    assert Creative.objects.get(pk=pending).status == "approved"
    assert eventlog.stream_events(stream=f"creative:{pending}")[-1].meta["actor"] == f"user:{user.pk}"
    # a staff member cannot approve its own creatives: the action is not offered
    staff, _ = staff_client(two["a"], "alice")
    other = make_creative(two["a"], two["ca"], approve=False)
    r = staff.post("/admin/campaigns/creative/", {"action": "approve_selected", "_selected_action": [str(other)]})
    assert Creative.objects.get(pk=other).status == "pending_review"


def test_report_page_renders_svg_charts_with_the_right_numbers(two: dict[str, int]) -> None:
    # given a known stream of ad events for Alpha's campaign (and some for Beta's)
    a = {"campaign": two["ca"], "creative": two["cra"], "advertiser": two["a"]}
    b = {"campaign": two["cb"], "creative": two["crb"], "advertiser": two["b"]}
    events = [ad_event("AdImpressed", at=DAY1, **a) for _ in range(40)]
    events += [ad_event("AdClicked", at=DAY1, charge="0.50", **a) for _ in range(4)]
    events += [ad_event("ConversionAttributed", at=DAY1, revenue="30.00", **a)]
    events += [ad_event("AdImpressed", at=DAY2, **a) for _ in range(10)]
    events += [ad_event("AdImpressed", at=DAY1, **b) for _ in range(7)]
    with transaction.atomic():
        append_events(events)
    settle("reports")
    # when Alpha's staff user opens the report page for 2026-03-01..03
    client, _ = staff_client(two["a"], "alice")
    r = client.get(f"/admin/campaigns/campaign/{two['ca']}/report/?from=2026-03-01&to=2026-03-03")
    assert r.status_code == 200
    html = r.content.decode()
    # then six inline SVG charts, no external scripts, and exact totals
    assert html.count('<svg class="adp-chart"') == 6
    for slug in ("impressions", "clicks", "ctr", "conversions", "spend", "roas"):
        assert f'data-chart="{slug}"' in html
    assert '<script src="http' not in html and "cdn" not in html.lower()
    totals = dict(r.context["tiles"])
    assert totals == {
        "Impressions": "50",
        "Clicks": "4",
        "CTR": "8.00%",
        "Conversions": "1",
        "CVR": "25.00%",
        "Spend": "2.00 EUR",
        "Revenue": "30.00 EUR",
        "CPC": "0.50 EUR",
        "CPA": "2.00 EUR",
        "ROAS": "15.00×",
    }
    assert '<div class="v" data-metric="impressions">50</div>' in html
    assert "<title>03-01: 40</title>" in html and "<title>03-02: 10</title>" in html  # impressions points
    assert "<title>03-01: 10.00%</title>" in html  # CTR on day 1: 4 / 40
    assert '<td class="num">10.00%</td>' in html  # the same CTR in the by-day table
    assert "Beta secret sale" not in html and "<title>03-01: 47</title>" not in html  # no Beta traffic
    days = [(d.key, d.impressions) for d in r.context["days"]]
    assert days == [(datetime(2026, 3, d, tzinfo=UTC).date(), n) for d, n in ((1, 40), (2, 10), (3, 0))]


def test_placements_are_read_only_for_staff(two: dict[str, int]) -> None:
    from campaigns import services

    pid, _ = services.placement_upsert(
        spec={"key": "home", "page_types": ["home"], "slots": 1, "floor_cpm": Decimal("1")}, actor="t"
    )
    client, _ = staff_client(two["a"], "alice")
    assert client.get("/admin/campaigns/placement/").status_code == 200
    assert client.get("/admin/campaigns/placement/add/").status_code == 403
    before = eventlog.count_events()
    client.post(f"/admin/campaigns/placement/{pid}/change/", {"page_types": ["cart"], "slots": "5", "floor_cpm": "9"})
    assert eventlog.count_events() == before


def test_editing_an_api_created_campaign_writes_only_what_changed(two: dict[str, int]) -> None:
    # given a campaign created through the services (start/end with sub-second input)
    c = Campaign.objects.get(pk=two["ca"])
    assert c.start.microsecond == 0 and c.end is not None
    client, _ = staff_client(two["a"], "alice")
    page = client.get(f"/admin/campaigns/campaign/{c.pk}/change/")
    assert page.status_code == 200 and b"Alpha sale" in page.content
    # when the user changes only the daily budget, echoing every other value the form shows
    data = campaign_form(
        name=c.name,
        bid="0.50",
        daily_budget="12",
        total_budget="100",
        start_0=c.start.strftime("%Y-%m-%d"),
        start_1=c.start.strftime("%H:%M:%S"),
        end_0=c.end.strftime("%Y-%m-%d"),
        end_1=c.end.strftime("%H:%M:%S"),
        timezone=c.timezone,
        dayparts='[{"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "20:00"}]',
        frequency_caps='[{"scope": "campaign", "max": 3, "window_seconds": 86400}]',
        targeting_categories="shoes",
        targeting_devices="mobile",
        targeting_geo="",
        **{
            "creatives-TOTAL_FORMS": "1",
            "creatives-INITIAL_FORMS": "1",
            "creatives-0-id": str(two["cra"]),
            "creatives-0-campaign": str(c.pk),
            "creatives-0-headline": "Run faster",
            "creatives-0-body": "Light shoes for long runs",
            "creatives-0-image_url": "https://cdn.shop.example/shoe.jpg",
            "creatives-0-landing_url": "https://shop.example/shoes/1",
            "creatives-0-product_id": "sku-1",
            "creatives-0-variants": '[{"headline": "Best {category} deals", "body": null}]',
        },
    )
    data.pop("launch_status")
    r = client.post(f"/admin/campaigns/campaign/{c.pk}/change/", data)
    assert r.status_code == 302, r.content.decode()[:3000]
    # then exactly one budget event; the unchanged creative keeps its approval
    types = [e.type for e in eventlog.stream_events(stream=f"campaign:{c.pk}")]
    assert types == ["CampaignCreated", "CampaignBudgetChanged"]
    assert Creative.objects.get(pk=two["cra"]).status == "approved"


def test_superuser_onboards_advertiser_with_staff_member(two: dict[str, int]) -> None:
    client, root = staff_client(None, "root", superuser=True)
    member = get_user_model().objects.create_user(username="bob", password=PASSWORD, is_staff=True)
    data = {
        "name": "Gamma",
        "currency": "USD",
        "timezone": "America/New_York",
        "memberships-TOTAL_FORMS": "1",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
        "memberships-0-user": str(member.pk),
    }
    r = client.post("/admin/campaigns/advertiser/add/", data)
    assert r.status_code == 302, r.content.decode()[:3000]
    from campaigns.models import Advertiser

    gamma = Advertiser.objects.get(name="Gamma")
    assert (gamma.currency, gamma.timezone) == ("USD", "America/New_York")
    [created] = eventlog.stream_events(stream=f"advertiser:{gamma.pk}")
    assert (created.type, created.meta["actor"]) == ("AdvertiserCreated", f"user:{root.pk}")
    assert list(AdvertiserMembership.objects.filter(user=member).values_list("advertiser_id", flat=True)) == [gamma.pk]
    # bad input → field errors, nothing written
    before = eventlog.count_events()
    r = client.post(
        "/admin/campaigns/advertiser/add/", {**data, "name": "Delta", "currency": "XXX", "timezone": "Nope"}
    )
    assert r.status_code == 200
    errors = r.context["adminform"].form.errors
    assert errors["currency"] == [validation.ERROR_CURRENCY.format(value="XXX")]
    assert errors["timezone"] == [validation.ERROR_TIMEZONE.format(value="Nope")]
    assert eventlog.count_events() == before


def test_every_admin_page_renders(two: dict[str, int]) -> None:
    client, _ = staff_client(None, "root", superuser=True)
    for url in [
        "/admin/",
        "/admin/campaigns/",
        "/admin/campaigns/advertiser/",
        "/admin/campaigns/advertiser/add/",
        f"/admin/campaigns/advertiser/{two['a']}/change/",
        f"/admin/campaigns/advertiser/{two['a']}/history/",
        "/admin/campaigns/campaign/",
        "/admin/campaigns/campaign/add/",
        f"/admin/campaigns/campaign/{two['ca']}/change/",
        f"/admin/campaigns/campaign/{two['ca']}/history/",
        f"/admin/campaigns/campaign/{two['ca']}/report/",
        "/admin/campaigns/creative/",
        "/admin/campaigns/creative/add/",
        f"/admin/campaigns/creative/{two['cra']}/change/",
        f"/admin/campaigns/creative/{two['cra']}/history/",
        "/admin/campaigns/placement/",
        "/admin/campaigns/placement/add/",
        "/admin/campaigns/advertisermembership/",
    ]:
        assert client.get(url).status_code == 200, url
    staff, _ = staff_client(two["a"], "alice")
    index = staff.get("/admin/").content.decode()
    assert "Campaigns" in index and "Creatives" in index and "Advertiser memberships" not in index


def test_pause_and_resume_buttons_on_the_change_page(two: dict[str, int]) -> None:
    client, user = staff_client(two["a"], "alice")
    page = client.get(f"/admin/campaigns/campaign/{two['ca']}/change/").content.decode()
    assert f"/admin/campaigns/campaign/{two['ca']}/pause/" in page and "0.00 EUR today" in page
    assert client.get(f"/admin/campaigns/campaign/{two['ca']}/pause/").status_code == 404  # POST only
    r = client.post(f"/admin/campaigns/campaign/{two['ca']}/pause/")
    assert r.status_code == 302 and Campaign.objects.get(pk=two["ca"]).status == "paused"
    assert client.post(f"/admin/campaigns/campaign/{two['cb']}/pause/").status_code == 404  # not Alpha's
    assert Campaign.objects.get(pk=two["cb"]).status == "active"
    client.post(f"/admin/campaigns/campaign/{two['ca']}/resume/")
    assert Campaign.objects.get(pk=two["ca"]).status == "active"
    assert [e.meta["actor"] for e in eventlog.stream_events(stream=f"campaign:{two['ca']}")][1:] == [
        f"user:{user.pk}"
    ] * 2
