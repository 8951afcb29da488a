"""No input produces a 500: malformed bodies and queries get 4xx with the one error
shape, and nothing is written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from adplatform.access import scopes
from adplatform.eventlog import selectors as eventlog

from ..conftest import auth

pytestmark = pytest.mark.django_db(transaction=True)

JUNK: list[Any] = [
    None,
    [],
    [1, 2],
    "text",
    123,
    {"name": None},
    {"name": ["x"], "bid": {"a": 1}, "start": 5, "dayparts": "x", "targeting": [], "frequency_caps": {}},
    {"bid": "1e400", "daily_budget": "NaN", "total_budget": "Infinity", "start": "2026-13-45T99:00:00Z"},
    {"dayparts": [{"days": "0", "start": 9, "end": None}], "frequency_caps": [None], "targeting": {"geo": [None]}},
    {"dayparts": [[]], "frequency_caps": [[1]], "targeting": {"geo": "DE"}},
    {"campaign_id": "x", "variants": "x", "headline": {"a": 1}},
    {"campaign_id": 99999999999999999999999, "variants": [{"headline": None}], "image_url": 5},
    {"key": None, "page_types": "home", "slots": "many", "floor_cpm": "-1"},
    {"decision": None, "reason": ["x"]},
    {"status": "deleted", "currency": 12},
    {"name": "x" * 10_000, "timezone": "\x00", "currency": "\u00ff"},
    {"name": "Acme\x00", "headline": "a\x00b", "key": "k\x00", "reason": "r\x00"},
]


@pytest.fixture
def keys(http: httpx.Client, make_key: Callable[..., str]) -> dict[str, str]:
    op = make_key(scopes.ADVERTISERS_WRITE, scopes.PLACEMENTS_WRITE, scopes.CREATIVES_REVIEW)
    token = http.post("/api/v1/advertisers", json={"name": "Acme"}, headers=auth(op)).json()["token"]
    return {"op": op, "adv": token}


def test_malformed_bodies_are_4xx_and_write_nothing(http: httpx.Client, keys: dict[str, str]) -> None:
    before = eventlog.count_events()
    targets = [
        ("POST", "/api/v1/advertisers", "op"),
        ("POST", "/api/v1/placements", "op"),
        ("POST", "/api/v1/creatives/1/review", "op"),
        ("POST", "/api/v1/campaigns", "adv"),
        ("PATCH", "/api/v1/campaigns/1", "adv"),
        ("POST", "/api/v1/creatives", "adv"),
        ("PATCH", "/api/v1/creatives/1", "adv"),
    ]
    for method, url, who in targets:
        for body in JUNK:
            r = http.request(method, url, json=body, headers=auth(keys[who]))
            assert 400 <= r.status_code < 500, (method, url, body, r.status_code, r.text)
            assert set(r.json()["error"]) >= {"status", "code", "message"}
        r = http.request(
            method, url, content=b"{not json", headers={**auth(keys[who]), "Content-Type": "application/json"}
        )
        assert r.status_code == (404 if method == "PATCH" else 400), (url, r.text)  # PATCH: no such object
    assert eventlog.count_events() == before


def test_malformed_queries_are_400(http: httpx.Client, keys: dict[str, str]) -> None:
    h = auth(keys["adv"])
    for query in [
        "from=yesterday",
        "to=2026-02-30",
        "group_by=",
        "campaign_id=abc",
        "campaign_id=-1",
        "bogus=1",
        "from=2020-01-01&to=2026-01-01",
    ]:
        r = http.get(f"/api/v1/reports?{query}", headers=h)
        assert r.status_code == 400, (query, r.text)
    assert http.get("/api/v1/creatives?campaign_id=x", headers=h).status_code == 400
    assert http.get("/api/v1/campaigns/99999999999999999999999", headers=h).status_code == 404
