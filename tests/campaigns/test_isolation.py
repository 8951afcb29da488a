"""Isolation matrix: advertiser A's token and A's admin user can neither read nor change
advertiser B's advertiser, campaigns, creatives or reports, through every API endpoint
and admin view; the answer never reveals whether B's object exists, and nothing is
written."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.db import transaction
from django.utils import timezone

from adplatform.access.services import api_key_create
from adplatform.eventlog import selectors as eventlog
from adplatform.eventlog.services import append_events
from campaigns import services
from campaigns.models import Advertiser, Campaign, Creative

from ..conftest import auth
from .conftest import settle
from .test_admin import campaign_form, staff_client
from .test_reports import DAY1, ad_event

pytestmark = pytest.mark.django_db(transaction=True)

MISSING = 987_654


def _state() -> tuple[Any, ...]:
    return (
        eventlog.count_events(),
        list(Advertiser.objects.order_by("id").values()),
        list(Campaign.objects.order_by("id").values()),
        list(Creative.objects.order_by("id").values()),
    )


@pytest.fixture
def world(make_advertiser: Callable, make_campaign: Callable, make_creative: Callable) -> dict[str, Any]:
    a = make_advertiser(name="Alpha")
    b = make_advertiser(name="Beta")
    ca, cb = make_campaign(a, name="Alpha sale"), make_campaign(b, name="Beta secret sale")
    cra, crb = make_creative(a, ca), make_creative(b, cb, headline="Beta secret headline")
    with transaction.atomic():
        append_events([ad_event("AdImpressed", at=DAY1, campaign=cb, creative=crb, advertiser=b) for _ in range(3)])
    settle("reports")
    return {
        "a": a,
        "b": b,
        "ca": ca,
        "cb": cb,
        "cra": cra,
        "crb": crb,
        "token_a": api_key_create(scopes=["advertiser"], advertiser_id=a).key,
    }


def _api_matrix(w: dict[str, Any], target_campaign: int, target_creative: int) -> list[tuple[str, str, Any]]:
    return [
        ("GET", f"/api/v1/campaigns/{target_campaign}", None),
        ("PATCH", f"/api/v1/campaigns/{target_campaign}", {"daily_budget": "1.00", "name": "hijacked"}),
        ("PATCH", f"/api/v1/campaigns/{target_campaign}", {"daily_budget": "-5"}),  # 404 before validation
        ("POST", f"/api/v1/campaigns/{target_campaign}/pause", None),
        ("POST", f"/api/v1/campaigns/{target_campaign}/resume", None),
        ("GET", f"/api/v1/creatives/{target_creative}", None),
        ("PATCH", f"/api/v1/creatives/{target_creative}", {"headline": "hijacked"}),
        ("PATCH", f"/api/v1/creatives/{target_creative}", {"status": "paused"}),
        ("GET", f"/api/v1/reports?campaign_id={target_campaign}&from=2026-03-01&to=2026-03-02", None),
    ]


def test_api_404_for_other_advertisers_objects_same_as_missing(http: httpx.Client, world: dict[str, Any]) -> None:
    h = auth(world["token_a"])
    foreign = _api_matrix(world, world["cb"], world["crb"])
    missing = _api_matrix(world, MISSING, MISSING)
    before = _state()
    for (method, url, body), (_, missing_url, _) in zip(foreign, missing, strict=True):
        r = http.request(method, url, json=body, headers=h)
        assert r.status_code == 404, (method, url, r.text)
        m = http.request(method, missing_url, json=body, headers=h)
        assert r.json() == m.json(), (method, url)  # indistinguishable from a missing object
        assert "Beta" not in r.text
    assert _state() == before


def test_api_lists_and_reports_show_only_own_data(http: httpx.Client, world: dict[str, Any]) -> None:
    h = auth(world["token_a"])
    assert [c["id"] for c in http.get("/api/v1/campaigns", headers=h).json()["campaigns"]] == [world["ca"]]
    assert [c["id"] for c in http.get("/api/v1/creatives", headers=h).json()["creatives"]] == [world["cra"]]
    assert http.get(f"/api/v1/creatives?campaign_id={world['cb']}", headers=h).json()["creatives"] == []
    assert http.get("/api/v1/advertisers/me", headers=h).json()["id"] == world["a"]
    report = http.get("/api/v1/reports?from=2026-03-01&to=2026-03-02&group_by=campaign", headers=h).json()
    assert report["rows"] == [] and report["totals"]["impressions"] == 0


def test_api_cannot_create_in_or_operate_on_other_advertiser(http: httpx.Client, world: dict[str, Any]) -> None:
    h = auth(world["token_a"])
    before = _state()
    creative = {
        "campaign_id": world["cb"],
        "headline": "x",
        "image_url": "https://a.example/i.png",
        "landing_url": "https://a.example/",
    }
    r = http.post("/api/v1/creatives", json=creative, headers=h)
    assert r.status_code == 400 and r.json()["error"]["fields"]["campaign_id"] == [services.ERROR_UNKNOWN_CAMPAIGN]
    missing = http.post("/api/v1/creatives", json={**creative, "campaign_id": MISSING}, headers=h)
    assert missing.json() == r.json()
    # operator endpoints refuse advertiser tokens
    assert (
        http.post(
            f"/api/v1/creatives/{world['crb']}/review", json={"decision": "reject", "reason": "x"}, headers=h
        ).status_code
        == 403
    )
    assert http.post("/api/v1/advertisers", json={"name": "Evil"}, headers=h).status_code == 403
    assert (
        http.post(
            "/api/v1/placements", json={"key": "k", "page_types": ["home"], "slots": 1, "floor_cpm": "1"}, headers=h
        ).status_code
        == 403
    )
    # a campaign body cannot smuggle another advertiser in
    now = timezone.now()
    body = {
        "name": "x",
        "objective": "clicks",
        "bid_model": "cpc",
        "bid": "0.1",
        "daily_budget": "5",
        "start": now.isoformat(),
        "advertiser_id": world["b"],
    }
    r = http.post("/api/v1/campaigns", json=body, headers=h)
    assert r.status_code == 400 and "advertiser_id" in r.json()["error"]["fields"]
    assert _state() == before


def test_platform_keys_cannot_use_the_advertiser_api(
    http: httpx.Client, world: dict[str, Any], make_key: Callable
) -> None:
    h = auth(make_key("advertisers:write", "creatives:review"))
    for method, url in [
        ("GET", "/api/v1/advertisers/me"),
        ("GET", "/api/v1/campaigns"),
        ("GET", f"/api/v1/campaigns/{world['cb']}"),
        ("GET", "/api/v1/creatives"),
        ("GET", "/api/v1/reports"),
    ]:
        assert http.request(method, url, headers=h).status_code == 403, url
    assert http.get("/api/v1/campaigns").status_code == 401


def test_admin_user_cannot_see_or_change_other_advertiser(world: dict[str, Any]) -> None:
    client, _ = staff_client(world["a"], "alice")
    cb, crb, b = world["cb"], world["crb"], world["b"]
    before = _state()
    # changelists show only Alpha's objects
    for url in ("/admin/campaigns/campaign/", "/admin/campaigns/creative/", "/admin/campaigns/advertiser/"):
        r = client.get(url)
        assert r.status_code == 200 and b"Beta" not in r.content, url
    # object views of Beta's objects: not found (redirect to the index with "doesn't exist", or 404)
    for url in (
        f"/admin/campaigns/campaign/{cb}/change/",
        f"/admin/campaigns/creative/{crb}/change/",
        f"/admin/campaigns/advertiser/{b}/change/",
    ):
        r = client.get(url)
        assert r.status_code == 302 and r.url == "/admin/", url
    for url in (
        f"/admin/campaigns/campaign/{cb}/history/",
        f"/admin/campaigns/creative/{crb}/history/",
        f"/admin/campaigns/advertiser/{b}/history/",
        f"/admin/campaigns/campaign/{cb}/report/",
        f"/admin/campaigns/campaign/{cb}/delete/",
    ):
        r = client.get(url)
        assert r.status_code in (302, 403, 404), url  # delete is refused to everyone (403)
        assert b"Beta" not in r.content
    # writes to Beta's objects change nothing
    data = campaign_form(daily_budget="1", name="hijacked")
    data.pop("launch_status")
    client.post(f"/admin/campaigns/campaign/{cb}/change/", data)
    client.post(
        f"/admin/campaigns/creative/{crb}/change/",
        {
            "headline": "hijacked",
            "image_url": "https://x.example/",
            "landing_url": "https://x.example/",
            "variants": "[]",
        },
    )
    client.post(f"/admin/campaigns/advertiser/{b}/change/", {"name": "hijacked", "timezone": "UTC"})
    client.post("/admin/campaigns/campaign/", {"action": "pause_selected", "_selected_action": [str(cb)]})
    client.post("/admin/campaigns/creative/", {"action": "pause_selected", "_selected_action": [str(crb)]})
    client.post(f"/admin/campaigns/campaign/{cb}/delete/", {"post": "yes"})
    # creating under Beta is refused with a form error
    r = client.post("/admin/campaigns/campaign/add/", campaign_form(b))
    assert r.status_code == 200 and "advertiser" in r.context["adminform"].form.errors
    r = client.post(
        "/admin/campaigns/creative/add/",
        {
            "campaign": str(cb),
            "headline": "x",
            "variants": "[]",
            "image_url": "https://x.example/i.png",
            "landing_url": "https://x.example/",
        },
    )
    assert r.status_code == 200 and "campaign" in r.context["adminform"].form.errors
    assert _state() == before


def test_staff_user_without_membership_sees_nothing(world: dict[str, Any]) -> None:
    client, _ = staff_client(None, "nobody")
    assert b"Campaigns" not in client.get("/admin/").content
    for url in (
        "/admin/campaigns/campaign/",
        "/admin/campaigns/creative/",
        "/admin/campaigns/advertiser/",
        f"/admin/campaigns/campaign/{world['ca']}/report/",
    ):
        assert client.get(url).status_code in (403, 404), url


def test_superuser_sees_everything(world: dict[str, Any]) -> None:
    client, _ = staff_client(None, "root", superuser=True)
    page = client.get("/admin/campaigns/campaign/").content
    assert b"Alpha sale" in page and b"Beta secret sale" in page
    assert client.get(f"/admin/campaigns/campaign/{world['cb']}/report/").status_code == 200


def test_memberships_follow_the_advertiser_after_rebuild(world: dict[str, Any]) -> None:
    # memberships and spend are not projection state: a rebuild keeps them and the scope
    client, _ = staff_client(world["a"], "alice")
    settle("campaigns", rebuild=True)
    r = client.get("/admin/campaigns/campaign/")
    assert b"Alpha sale" in r.content and b"Beta" not in r.content
    assert timezone.now() - timedelta(minutes=5) < Campaign.objects.get(pk=world["ca"]).created_at
