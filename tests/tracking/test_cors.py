"""CORS for the storefront snippet running on the shop's own origin: only the storefront
endpoints (/api/v1/rank, /api/v1/events, /track/*), only for configured origins, never
with credentials."""

from __future__ import annotations

import httpx
import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db(transaction=True)

SHOP = "https://shop.example"
PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}


@override_settings(CORS_ALLOWED_ORIGINS=[SHOP])
@pytest.mark.parametrize("path", ["/api/v1/rank", "/api/v1/events"])
def test_a_configured_shop_origin_may_call_the_storefront_endpoints(http: httpx.Client, path: str) -> None:
    # when the shop's page preflights a POST with the key header
    r = http.options(path, headers={"Origin": SHOP, **PREFLIGHT})
    # then the browser is allowed to send it, with no credentials
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == SHOP
    assert "authorization" in r.headers["access-control-allow-headers"]
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in r.headers


@override_settings(CORS_ALLOWED_ORIGINS=[SHOP])
def test_another_origin_and_other_endpoints_get_no_cors_grant(http: httpx.Client) -> None:
    # when another site preflights /rank, and the shop preflights an advertiser endpoint
    stranger = http.options("/api/v1/rank", headers={"Origin": "https://evil.example", **PREFLIGHT})
    advertiser_api = http.options("/api/v1/campaigns", headers={"Origin": SHOP, **PREFLIGHT})
    # then neither response lets the browser through
    assert "access-control-allow-origin" not in stranger.headers
    assert "access-control-allow-origin" not in advertiser_api.headers


def test_no_origin_is_allowed_by_default(http: httpx.Client) -> None:
    r = http.options("/api/v1/rank", headers={"Origin": SHOP, **PREFLIGHT})
    assert "access-control-allow-origin" not in r.headers
