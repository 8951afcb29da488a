"""GET /api/v1/users/<id>/profile over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from profiles.api.views import ERROR_AS_OF, ERROR_UNKNOWN_USER

from ..conftest import auth
from .conftest import apply_profiles, ev, ingest, product, seed_catalog

pytestmark = pytest.mark.django_db(transaction=True)


def test_profile_api_returns_interests_recent_activity_and_freshness(http: Any, make_key: Any) -> None:
    # given a shopper who viewed and bought a tent on mobile
    seed_catalog(product("tent-1", ["Sports", "Outdoor"], "Trek", "200"))
    at = datetime.now(UTC) - timedelta(hours=1)
    ingest(
        ev("product_view", at, product_id="tent-1", device="Mobile"),
        ev("search", at + timedelta(minutes=1), query="tent"),
        ev(
            "purchase",
            at + timedelta(minutes=2),
            order_id="o-1",
            items=[{"product_id": "tent-1", "quantity": 1, "price": "200"}],
            revenue="200",
            currency="EUR",
        ),
    )
    apply_profiles()
    # when the shop reads the profile
    r = http.get("/api/v1/users/u-1/profile", headers=auth(make_key("profiles:read")))
    # then
    assert r.status_code == 200
    body = r.json()
    assert body["user_id"] == "u-1" and body["consent"] is True
    assert [c["name"] for c in body["interests"]["categories"]] == ["Outdoor", "Sports"]
    assert body["interests"]["brands"][0]["name"] == "Trek"
    assert body["rfm"]["frequency"] == 3 and body["rfm"]["orders"] == 1 and body["rfm"]["monetary"] == "200.00"
    assert body["recent"] == {"products": ["tent-1"], "queries": ["tent"], "cart": []}
    assert body["devices"] == {"mobile": 1}
    assert body["price_band"] == "high"
    assert body["freshness"]["last_event_at"] == (at + timedelta(minutes=2)).isoformat()
    assert body["freshness"]["projection_lag_seconds"] == 0.0
    assert body["segments"] == []


def test_profile_api_errors(http: Any, make_key: Any) -> None:
    reader = auth(make_key("profiles:read"))
    unknown = http.get("/api/v1/users/nobody/profile", headers=reader)
    assert unknown.status_code == 404 and unknown.json()["error"]["message"] == ERROR_UNKNOWN_USER
    bad = http.get("/api/v1/users/nobody/profile", params={"as_of": "yesterday"}, headers=reader)
    assert bad.status_code == 400 and bad.json()["error"]["fields"] == {"as_of": [ERROR_AS_OF]}
    naive = http.get("/api/v1/users/nobody/profile", params={"as_of": "2026-01-01T00:00:00"}, headers=reader)
    assert naive.status_code == 400
    assert http.get("/api/v1/users/u-1/profile", headers=auth(make_key("events:write"))).status_code == 403
    assert http.get("/api/v1/users/u-1/profile").status_code == 401
