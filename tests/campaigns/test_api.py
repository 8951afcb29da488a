"""Advertiser and operator API over real HTTP: shapes per SPEC §4, field-level errors
that write nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from adplatform.access import scopes
from adplatform.api.errors import ERROR_VALIDATION
from adplatform.eventlog import selectors as eventlog
from campaigns import validation
from campaigns.api.serializers import ERROR_UNKNOWN_FIELD

from ..conftest import auth

pytestmark = pytest.mark.django_db(transaction=True)


def _campaign_body(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "name": "Spring sale",
        "objective": "clicks",
        "bid_model": "cpc",
        "bid": "0.45",
        "daily_budget": "20.00",
        "total_budget": "500",
        "start": (now - timedelta(hours=1)).isoformat(),
        "end": (now + timedelta(days=14)).isoformat(),
        "timezone": "Europe/Berlin",
        "dayparts": [{"days": [5, 6], "start": "10:00", "end": "22:00"}],
        "pacing": "asap",
        "frequency_caps": [{"scope": "creative", "max": 2, "window_seconds": 3600}],
        "targeting": {"categories": ["shoes"], "geo": ["DE"]},
    }
    body.update(overrides)
    return body


@pytest.fixture
def advertiser(http: httpx.Client, make_key: Callable[..., str]) -> dict[str, Any]:
    op = make_key(scopes.ADVERTISERS_WRITE)
    r = http.post(
        "/api/v1/advertisers", json={"name": "Acme", "currency": "EUR", "timezone": "Europe/Berlin"}, headers=auth(op)
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_operator_creates_advertiser_and_token_works(http: httpx.Client, advertiser: dict[str, Any]) -> None:
    assert set(advertiser) == {"id", "name", "token"} and advertiser["name"] == "Acme"
    r = http.get("/api/v1/advertisers/me", headers=auth(advertiser["token"]))
    assert r.status_code == 200
    assert r.json() == {"id": advertiser["id"], "name": "Acme", "currency": "EUR", "timezone": "Europe/Berlin"}


def test_advertiser_create_needs_scope_and_valid_input(http: httpx.Client, make_key: Callable[..., str]) -> None:
    before = eventlog.count_events()
    assert http.post("/api/v1/advertisers", json={"name": "X"}).status_code == 401
    r = http.post("/api/v1/advertisers", json={"name": "X"}, headers=auth(make_key(scopes.EVENTS_WRITE)))
    assert r.status_code == 403
    r = http.post(
        "/api/v1/advertisers",
        json={"name": " ", "currency": "EURO", "timezone": "Mars/Olympus"},
        headers=auth(make_key(scopes.ADVERTISERS_WRITE)),
    )
    assert r.status_code == 400
    fields = r.json()["error"]["fields"]
    assert fields["timezone"] == [validation.ERROR_TIMEZONE.format(value="Mars/Olympus")]
    assert "currency" in fields and "name" in fields
    assert eventlog.count_events() == before


def test_campaign_lifecycle(http: httpx.Client, advertiser: dict[str, Any]) -> None:
    h = auth(advertiser["token"])
    # create
    r = http.post("/api/v1/campaigns", json=_campaign_body(), headers=h)
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["bid"] == "0.45" and c["daily_budget"] == "20.00" and c["total_budget"] == "500.00"
    assert c["currency"] == "EUR" and c["status"] == "active" and c["pacing"] == "asap"
    assert c["targeting"] == {
        "categories": ["shoes"],
        "keywords": [],
        "segments": [],
        "placements": [],
        "page_types": [],
        "devices": [],
        "geo": ["DE"],
    }
    assert c["dayparts"] == [{"days": [5, 6], "start": "10:00", "end": "22:00"}]
    assert c["spent_today"] == "0.00"
    # list and get
    assert [x["id"] for x in http.get("/api/v1/campaigns", headers=h).json()["campaigns"]] == [c["id"]]
    assert http.get(f"/api/v1/campaigns/{c['id']}", headers=h).json() == c
    # patch budget and targeting
    r = http.patch(f"/api/v1/campaigns/{c['id']}", json={"daily_budget": "30", "targeting": {}}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["daily_budget"] == "30.00" and r.json()["targeting"]["geo"] == []
    # pause / resume
    assert http.post(f"/api/v1/campaigns/{c['id']}/pause", headers=h).json()["status"] == "paused"
    assert http.post(f"/api/v1/campaigns/{c['id']}/resume", headers=h).json()["status"] == "active"
    types = [e.type for e in eventlog.stream_events(stream=f"campaign:{c['id']}")]
    assert types == [
        "CampaignCreated",
        "CampaignBudgetChanged",
        "CampaignTargetingChanged",
        "CampaignPaused",
        "CampaignResumed",
    ]


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"end": "2020-01-01T00:00:00Z"}, "end", validation.ERROR_END_BEFORE_START),
        ({"daily_budget": "600"}, "daily_budget", validation.ERROR_DAILY_EXCEEDS_TOTAL),
        ({"timezone": "Berlin"}, "timezone", validation.ERROR_TIMEZONE.format(value="Berlin")),
        ({"currency": "USD"}, "currency", validation.ERROR_CURRENCY_MISMATCH.format(currency="EUR")),
        ({"daily_budget": None, "total_budget": None}, "daily_budget", validation.ERROR_BUDGET_REQUIRED),
        (
            {"objective": "reach"},
            "bid_model",
            validation.ERROR_BID_MODEL_OBJECTIVE.format(bid_model="cpc", objective="reach", allowed="cpm"),
        ),
        (
            {
                "dayparts": [
                    {"days": [0], "start": "09:00", "end": "12:00"},
                    {"days": [0, 1], "start": "11:00", "end": "13:00"},
                ]
            },
            "dayparts.1",
            validation.ERROR_DAYPART_OVERLAP.format(other=0, day="Monday"),
        ),
        (
            {"dayparts": [{"days": [0], "start": "18:00", "end": "09:00"}]},
            "dayparts.0.end",
            validation.ERROR_DAYPART_ORDER,
        ),
        ({"frequency_caps": [{"scope": "campaign", "max": 0, "window_seconds": 3600}]}, "frequency_caps.0.max", None),
        (
            {"targeting": {"devices": ["fridge"]}},
            "targeting.devices",
            validation.ERROR_TARGETING_VALUE.format(value="fridge", choices="desktop, mobile, tablet"),
        ),
        (
            {"targeting": {"placements": ["nowhere"]}},
            "targeting.placements",
            validation.ERROR_UNKNOWN_PLACEMENT.format(value="nowhere"),
        ),
        ({"start": "2026-01-01T10:00:00"}, "start", validation.ERROR_TZ_AWARE),
        ({"daily_budjet": "5"}, "daily_budjet", ERROR_UNKNOWN_FIELD),
        ({"bid": "abc"}, "bid", None),
        (
            {"bid": "30"},
            "bid",
            validation.ERROR_BID_EXCEEDS_BUDGET.format(unit="click", cost="30", which="daily", budget="20"),
        ),
    ],
)
def test_invalid_campaign_gives_field_errors_and_writes_nothing(
    http: httpx.Client, advertiser: dict[str, Any], overrides: dict[str, Any], field: str, message: str | None
) -> None:
    before = eventlog.count_events()
    r = http.post("/api/v1/campaigns", json=_campaign_body(**overrides), headers=auth(advertiser["token"]))
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["message"] == ERROR_VALIDATION
    assert field in err["fields"], err
    if message is not None:
        assert message in err["fields"][field]
    assert eventlog.count_events() == before


def test_invalid_patch_writes_nothing(http: httpx.Client, advertiser: dict[str, Any]) -> None:
    h = auth(advertiser["token"])
    c = http.post("/api/v1/campaigns", json=_campaign_body(), headers=h).json()
    before = eventlog.count_events()
    r = http.patch(f"/api/v1/campaigns/{c['id']}", json={"name": "ok", "total_budget": "5"}, headers=h)
    assert r.status_code == 400
    assert r.json()["error"]["fields"]["daily_budget"] == [validation.ERROR_DAILY_EXCEEDS_TOTAL]
    assert eventlog.count_events() == before
    assert http.get(f"/api/v1/campaigns/{c['id']}", headers=h).json()["name"] == "Spring sale"


def test_creative_flow_review_and_edit(http: httpx.Client, advertiser: dict[str, Any], make_key: Callable) -> None:
    h = auth(advertiser["token"])
    c = http.post("/api/v1/campaigns", json=_campaign_body(), headers=h).json()
    body = {
        "campaign_id": c["id"],
        "headline": "Run faster",
        "body": "Light shoes",
        "image_url": "https://cdn.example/a.jpg",
        "landing_url": "https://shop.example/a",
        "variants": [{"headline": "{brand} {category} for you"}],
    }
    r = http.post("/api/v1/creatives", json=body, headers=h)
    assert r.status_code == 201, r.text
    cr = r.json()
    assert cr["status"] == "pending_review" and cr["review_reason"] is None and cr["product_id"] is None
    assert cr["variants"] == [{"headline": "{brand} {category} for you", "body": None}]
    # the advertiser cannot review its own creative
    assert http.post(f"/api/v1/creatives/{cr['id']}/review", json={"decision": "approve"}, headers=h).status_code == 403
    reviewer = auth(make_key(scopes.CREATIVES_REVIEW))
    r = http.post(f"/api/v1/creatives/{cr['id']}/review", json={"decision": "reject"}, headers=reviewer)
    assert r.status_code == 400 and "reason" in r.json()["error"]["fields"]
    r = http.post(f"/api/v1/creatives/{cr['id']}/review", json={"decision": "approve"}, headers=reviewer)
    assert r.status_code == 200 and r.json()["status"] == "approved"
    # pause / resume an approved creative, then an edit sends it back to review
    assert (
        http.patch(f"/api/v1/creatives/{cr['id']}", json={"status": "paused"}, headers=h).json()["status"] == "paused"
    )
    r = http.patch(f"/api/v1/creatives/{cr['id']}", json={"headline": "Run further"}, headers=h)
    assert r.json()["status"] == "pending_review" and r.json()["headline"] == "Run further"
    assert [x["id"] for x in http.get(f"/api/v1/creatives?campaign_id={c['id']}", headers=h).json()["creatives"]] == [
        cr["id"]
    ]
    # invalid creative: bad URL and unknown slot → field errors, no event
    before = eventlog.count_events()
    bad = {**body, "landing_url": "javascript:alert(1)", "variants": [{"headline": "Hi {name}"}]}
    r = http.post("/api/v1/creatives", json=bad, headers=h)
    assert r.status_code == 400
    fields = r.json()["error"]["fields"]
    assert fields["landing_url"] == [validation.ERROR_URL]
    assert fields["variants.0.headline"] == [
        validation.ERROR_VARIANT_SLOT.format(slot="name", allowed="{brand}, {category}, {price}, {product}, {query}")
    ]
    assert eventlog.count_events() == before


def test_placements(http: httpx.Client, make_key: Callable[..., str]) -> None:
    op = auth(make_key(scopes.PLACEMENTS_WRITE))
    body = {"key": "home-top", "page_types": ["home"], "slots": 2, "floor_cpm": "1.20"}
    r = http.post("/api/v1/placements", json=body, headers=op)
    assert r.status_code == 201
    assert r.json() == {
        "id": r.json()["id"],
        "key": "home-top",
        "page_types": ["home"],
        "slots": 2,
        "floor_cpm": "1.20",
    }
    assert http.post("/api/v1/placements", json={**body, "slots": 3}, headers=op).status_code == 200
    any_key = auth(make_key(scopes.EVENTS_WRITE))
    assert http.get("/api/v1/placements", headers=any_key).json()["placements"][0]["slots"] == 3
    assert http.post("/api/v1/placements", json=body, headers=any_key).status_code == 403
    r = http.post("/api/v1/placements", json={**body, "key": "Home Top", "slots": 0}, headers=op)
    assert r.status_code == 400 and set(r.json()["error"]["fields"]) == {"key", "slots"}
    assert http.delete("/api/v1/placements", headers=op).status_code == 405
