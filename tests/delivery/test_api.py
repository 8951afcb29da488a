"""POST /api/v1/rank over real HTTP (live server): the SPEC §4 response shape, the
decision logged, bad input as 400 with field detail, unknown placement, auth and scope."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from adplatform.access import scopes
from adplatform.eventlog.models import Event
from ranking.events import AD_DECISION_MADE

from ..conftest import auth

pytestmark = pytest.mark.django_db(transaction=True)

AD_KEYS = {
    "creative_id", "campaign_id", "advertiser_id", "product_id", "headline", "body", "image_url", "landing_url",
    "click_url", "impression_url", "position", "pricing", "scores",
}  # fmt: skip


def body(**kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"user_id": "u-1", "placement": "home_top", "limit": 2, "context": {"page_type": "home"}}
    out.update(kw)
    return out


def test_rank_answers_the_spec_shape_and_logs_the_decision(world: Any, http: httpx.Client, make_key: Any) -> None:
    # given a running campaign and a key with ads:rank
    world.placement("home_top", slots=2, floor_cpm="1.00")
    world.product("sku-1")
    adv = world.advertiser()
    camp = world.campaign(adv)
    cr = world.creative(adv, camp)
    key = make_key(scopes.ADS_RANK)
    # when the storefront calls /rank with explain
    resp = http.post("/api/v1/rank", json=body(explain=True, session_id="s-1"), headers=auth(key))
    # then 200 with exactly the SPEC fields (+ reasons and the breakdown when explain)
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert set(data) == {"request_id", "model_version", "ads"}
    [ad] = data["ads"]
    assert set(ad) == AD_KEYS | {"reasons", "score_breakdown"}
    assert (ad["creative_id"], ad["campaign_id"], ad["advertiser_id"], ad["position"]) == (cr, camp, adv, 1)
    assert ad["pricing"] == {"model": "cpc", "charge": "0.0500"}
    assert ad["scores"] == {"p_click": 0.02, "p_conversion": 0.002, "ecpm": 10.0}
    assert data["model_version"] == "prior-0"
    # and the impression beacon works with the URL it got
    assert http.get(ad["impression_url"]).status_code in (200, 204)
    event = Event.objects.get(type=AD_DECISION_MADE.name)
    assert event.data["request_id"] == data["request_id"] and event.data["winners"][0]["price"] == "0.0500"
    # without explain: no reasons key
    plain = http.post("/api/v1/rank", json=body(), headers=auth(key)).json()["ads"][0]
    assert set(plain) == AD_KEYS


def test_nothing_eligible_is_an_empty_list(world: Any, http: httpx.Client, make_key: Any) -> None:
    world.placement("home_top")
    resp = http.post("/api/v1/rank", json=body(), headers=auth(make_key(scopes.ADS_RANK)))
    assert resp.status_code == 200 and resp.json()["ads"] == []


BAD_INPUTS: list[tuple[Any, set[str]]] = [
    (body(limit=0), {"limit"}),
    (body(limit=11), {"limit"}),
    (body(limit="two"), {"limit"}),
    (body(context={"page_type": "landing"}), {"context.page_type"}),
    (body(context={}), {"context.page_type"}),
    (body(context="home"), {"context"}),
    ({"placement": "home_top", "context": {"page_type": "home"}}, {"user_id"}),
    (body(user_id="x" * 129), {"user_id"}),
    (body(candidates=[]), {"candidates"}),
    (body(candidates=["a"]), {"candidates.0"}),
    (body(candidates=[1] * 501), {"candidates"}),
    (body(policy="best"), {"policy"}),
    (body(explain="maybe"), {"explain"}),
    (body(colour="red"), {"colour"}),
    ([1, 2], {"non_field_errors"}),
]


def test_bad_input_is_400_with_field_detail(world: Any, http: httpx.Client, make_key: Any) -> None:
    world.placement("home_top")
    key = make_key(scopes.ADS_RANK)
    for payload, fields in BAD_INPUTS:
        resp = http.post("/api/v1/rank", json=payload, headers=auth(key))
        assert resp.status_code == 400, (payload, resp.text)
        err = resp.json()["error"]
        assert (err["code"], set(err["fields"])) == ("invalid", fields), payload
    assert not Event.objects.filter(type=AD_DECISION_MADE.name).exists()


def test_unknown_placement_is_a_400_on_the_placement_field(world: Any, http: httpx.Client, make_key: Any) -> None:
    resp = http.post("/api/v1/rank", json=body(placement="nowhere"), headers=auth(make_key(scopes.ADS_RANK)))
    assert resp.status_code == 400
    assert resp.json()["error"]["fields"] == {"placement": ["Unknown placement 'nowhere'."]}


def test_not_json_is_a_400_never_a_500(world: Any, http: httpx.Client, make_key: Any) -> None:
    headers = {**auth(make_key(scopes.ADS_RANK)), "Content-Type": "application/json"}
    assert http.post("/api/v1/rank", content=b"{nope", headers=headers).status_code == 400


def test_auth_and_scope(world: Any, http: httpx.Client, make_key: Any) -> None:
    world.placement("home_top")
    assert http.post("/api/v1/rank", json=body()).status_code == 401
    assert http.post("/api/v1/rank", json=body(), headers=auth("bogus")).status_code == 401
    assert http.post("/api/v1/rank", json=body(), headers=auth(make_key(scopes.EVENTS_WRITE))).status_code == 403


def test_reranking_over_http(world: Any, http: httpx.Client, make_key: Any) -> None:
    world.placement("home_top", slots=1)
    adv = world.advertiser()
    camp = world.campaign(adv, bid=Decimal("0.50"))
    a, b = world.creative(adv, camp), world.creative(adv, camp, headline="B")
    resp = http.post("/api/v1/rank", json=body(limit=1, candidates=[b, a]), headers=auth(make_key(scopes.ADS_RANK)))
    assert [(x["creative_id"], x["position"]) for x in resp.json()["ads"]] == [(a, 1), (b, 2)]
