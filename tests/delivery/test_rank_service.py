"""rank_decide end to end on real Postgres: eligibility outcomes (status, review, budget,
floor, caps, consent), advertiser dedup, variants, explain, re-ranking, policies and the
decision log."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction

from adplatform.eventlog.models import Event
from adplatform.eventlog.projections import catch_up, get_projection
from behaviour.services import events_ingest
from campaigns import services as campaigns
from delivery import eligibility as rules
from delivery import explain
from ranking.events import AD_DECISION_MADE, decision_candidates
from tracking import services as tracking

from ..conftest import behaviour_event
from .conftest import ACTOR, NOW, rank


def decisions() -> list[Event]:
    return list(Event.objects.filter(type=AD_DECISION_MADE.name).order_by("position"))


def one_campaign(world: Any, **campaign: Any) -> tuple[int, int, int]:
    world.placement("home_top", slots=2)
    world.product("sku-1")
    adv = world.advertiser()
    camp = world.campaign(adv, **campaign)
    return adv, camp, world.creative(adv, camp)


def test_serves_an_eligible_creative_with_tracking_urls(world: Any) -> None:
    # given one running campaign with one approved creative and a placement
    _, camp, cr = one_campaign(world)
    # when the storefront asks for ads
    result = rank(limit=2)
    # then the creative is served with its tracking URLs, priced at the floor-equivalent (floor 0)
    assert [(a.creative_id, a.campaign_id, a.position) for a in result.ads] == [(cr, camp, 1)]
    ad = result.ads[0]
    assert (ad.pricing_model, ad.charge, ad.headline, ad.product_id) == (
        "cpc",
        Decimal("0.0000"),
        "Run faster",
        "sku-1",
    )
    assert ad.impression_url.startswith("/track/impression/") and ad.click_url.startswith("/track/click/")
    assert (ad.p_click, ad.p_conversion, ad.ecpm) == (pytest.approx(0.02), pytest.approx(0.002), pytest.approx(10.0))
    assert result.model_version == "prior-0"
    # and the token carries the decision
    served = tracking.served_ad_from_token(token=ad.click_url.rsplit("/", 1)[1], kind="c", now=NOW)
    assert (served.request_id, served.creative_id, served.user_id, served.price) == (
        result.request_id, cr, "u-1", Decimal("0.0000"),
    )  # fmt: skip


def test_the_decision_is_logged_with_candidates_winners_and_model_version(world: Any) -> None:
    adv, camp, cr = one_campaign(world)
    paused = world.campaign(adv, name="paused")
    world.creative(adv, paused)
    campaigns.campaign_pause(campaign_id=paused, actor=ACTOR)
    result = rank(session_id="s-9")
    [event] = decisions()
    d = event.data
    assert event.stream == f"decision:{result.request_id}" and event.user_key == "u-1"
    assert event.meta["session_id"] == "s-9"
    assert (d["request_id"], d["placement"], d["page_type"], d["model_version"], d["policy"], d["limit"]) == (
        result.request_id, "home_top", "home", "prior-0", "auto", 2,
    )  # fmt: skip
    assert (d["consent"], d["segment"], d["mode"]) == (True, None, "select")
    assert [(c["creative_id"], c["eligible"], c["scores"]["ecpm"]) for c in decision_candidates(d)] == [
        (cr, True, 10.0)
    ]
    assert "sources" in decision_candidates(d)[0]["features"]
    # the scores are stored as packed float32 columns (ADR 0063)
    assert all(set(col) == {"f4"} for col in d["candidates"]["scores"].values())
    assert d["winners"] == [
        {"creative_id": cr, "campaign_id": camp, "advertiser_id": adv, "product_id": "sku-1", "position": 1,
         "variant": None, "pricing_model": "cpc", "price": "0.0000", "exploratory": False,
         "scores": {"p_click": 0.02, "p_conversion": 0.002, "ecpm": 10.0, "value": pytest.approx(159.8)},
         "rank_score": pytest.approx(10.0 + 0.05 * 159.8), "clearing_ecpm": 0.0},
    ]  # fmt: skip
    # value = p_conversion × the product's price 79.90 × 1000, ranked with DELIVERY_VALUE_WEIGHT
    assert decision_candidates(d)[0]["scores"]["value"] == pytest.approx(159.8)
    assert d["value_weight"] == 0.05
    # the paused campaign is not in the running set at all
    assert d["eligibility"] == {}


def test_nothing_servable_answers_no_ads_and_still_logs(world: Any) -> None:
    world.placement("home_top")
    adv = world.advertiser()
    camp = world.campaign(adv)
    world.creative(adv, camp, approve=False)  # pending review
    result = rank()
    assert result.ads == []
    assert [e.data["winners"] for e in decisions()] == [[]]


def test_unknown_placement_is_an_error_and_logs_nothing(world: Any) -> None:
    from delivery.services import UnknownPlacementError

    one_campaign(world)
    with pytest.raises(UnknownPlacementError):
        rank(placement="nope")
    assert decisions() == []


def test_budget_exhausted_campaigns_are_not_served(world: Any) -> None:
    adv, camp, cr = one_campaign(world, daily_budget=Decimal("1.00"))
    other = world.campaign(adv, name="other", daily_budget=Decimal("5.00"))
    cr2 = world.creative(adv, other)
    with transaction.atomic():
        campaigns.budget_charge(campaign_id=camp, amount=Decimal("1.00"), at=NOW)
    result = rank(limit=2)
    assert [a.creative_id for a in result.ads] == [cr2]
    assert decisions()[0].data["eligibility"] == {rules.REASON_DAILY_BUDGET: 1}
    assert cr not in {c["creative_id"] for c in decision_candidates(decisions()[0].data)}


def test_a_cpm_bid_below_the_floor_is_not_served(world: Any) -> None:
    world.placement("home_top", slots=2, floor_cpm="2.00")
    adv = world.advertiser()
    low = world.creative(adv, world.campaign(adv, bid_model="cpm", bid=Decimal("1.99")))
    high = world.creative(adv, world.campaign(adv, name="b", bid_model="cpm", bid=Decimal("3.00")))
    result = rank()
    assert [(a.creative_id, a.charge) for a in result.ads] == [(high, Decimal("2.0000"))]
    logged = {c["creative_id"]: c.get("reason") for c in decision_candidates(decisions()[0].data)}
    assert logged == {low: "below_floor", high: None}


def test_one_ad_per_advertiser_unless_configured(world: Any, settings: Any) -> None:
    world.placement("home_top", slots=3)
    a1, a2 = world.advertiser("A"), world.advertiser("B")
    c1 = world.campaign(a1, bid=Decimal("0.60"))
    x1, x2 = world.creative(a1, c1), world.creative(a1, c1, headline="Second")
    y = world.creative(a2, world.campaign(a2, bid=Decimal("0.40")))
    assert [a.creative_id for a in rank(limit=3).ads] == [x1, y]
    settings.DELIVERY_ONE_AD_PER_ADVERTISER = False
    assert [a.creative_id for a in rank(limit=3).ads] == [x1, x2, y]


def test_limit_and_slots_bound_the_answer_and_gsp_prices_follow(world: Any) -> None:
    world.placement("home_top", slots=2, floor_cpm="1.00")
    ids = []
    for i, bid in enumerate(["0.30", "0.50", "0.40"]):
        adv = world.advertiser(f"A{i}")
        ids.append(world.creative(adv, world.campaign(adv, bid=Decimal(bid))))
    # eCPMs 6, 10, 8 (p_click 2 %): two slots even when 5 are asked for
    result = rank(limit=5)
    assert [(a.creative_id, a.charge) for a in result.ads] == [(ids[1], Decimal("0.4000")), (ids[2], Decimal("0.3000"))]
    assert [a.creative_id for a in rank(limit=1).ads] == [ids[1]]


def test_frequency_caps_use_recorded_impressions(world: Any) -> None:
    # given a campaign capped at 1 impression per hour and a creative-scope cap on another
    world.placement("home_top", slots=2)
    adv = world.advertiser()
    capped = world.campaign(adv, frequency_caps=[{"scope": "campaign", "max": 1, "window_seconds": 3600}])
    c1 = world.creative(adv, capped)
    adv2 = world.advertiser("B")
    per_creative = world.campaign(adv2, bid=Decimal("0.40"),
                                  frequency_caps=[{"scope": "creative", "max": 1, "window_seconds": 3600}])  # fmt: skip
    c2, c3 = world.creative(adv2, per_creative), world.creative(adv2, per_creative, headline="Other")
    first = rank(limit=2)
    assert [a.creative_id for a in first.ads] == [c1, c2]
    # when both impressions are recorded through the beacon
    for ad in first.ads:
        tracking.impression_record(token=ad.impression_url.rsplit("/", 1)[1], at=NOW + timedelta(seconds=1))
    # then the capped campaign is out, and the other campaign shows its other creative
    second = rank(limit=2, at=NOW + timedelta(seconds=2))
    assert [a.creative_id for a in second.ads] == [c3]
    assert decisions()[1].data["eligibility"] == {rules.REASON_CAP_CAMPAIGN: 1, rules.REASON_CAP_CREATIVE: 1}
    # and after the window everything is back
    later = rank(limit=2, at=NOW + timedelta(seconds=3602))
    assert {a.creative_id for a in later.ads} in ({c1, c2}, {c1, c3})


def _opted_out(user: str) -> None:
    event = behaviour_event("product_view", user_id=user, consent=False, timestamp=NOW - timedelta(minutes=1))
    result = events_ingest(raw_events=[event], now=None)
    assert result.rejected == []
    catch_up(get_projection("product_docs"))
    catch_up(get_projection("profiles"))


@pytest.mark.django_db(transaction=True)  # the profiles projection reads committed events
def test_shoppers_without_consent_get_non_personalised_ads(world: Any) -> None:
    # given a segment-targeted campaign, a capped one and a plain one
    world.placement("home_top", slots=3)
    a, b, c = world.advertiser("A"), world.advertiser("B"), world.advertiser("C")
    seg = world.creative(a, world.campaign(a, bid=Decimal("0.90"), targeting={"segments": ["s-1"]}))
    capped = world.creative(
        b, world.campaign(b, frequency_caps=[{"scope": "campaign", "max": 1, "window_seconds": 3600}])
    )
    plain = world.creative(c, world.campaign(c, bid=Decimal("0.40")))
    _opted_out("u-x")
    first = rank(user_id="u-x", limit=3)
    for ad in first.ads:
        tracking.impression_record(token=ad.impression_url.rsplit("/", 1)[1], at=NOW + timedelta(seconds=1))
    second = rank(user_id="u-x", limit=3, at=NOW + timedelta(seconds=2))
    # then segment targeting never matches, and no frequency profile is used (the capped ad stays)
    assert [x.creative_id for x in first.ads] == [capped, plain]
    assert [x.creative_id for x in second.ads] == [capped, plain], decisions()[1].data
    d = decisions()[0].data
    assert (d["consent"], d["segment"], d["eligibility"]) == (False, None, {rules.REASON_SEGMENT: 1})
    assert seg not in {x["creative_id"] for x in decision_candidates(d)}


def test_dynamic_creative_fills_slots_and_skips_unfillable_variants(world: Any) -> None:
    world.placement("home_top", slots=1)
    world.product("sku-7", path=("shoes", "trail"), brand="Fleet\x07", price="59.00", title="Fleet Ridge")
    adv = world.advertiser()
    camp = world.campaign(adv)
    cr = world.creative(adv, camp, product_id="sku-7", variants=[
        {"headline": "{brand} {category} from {price}", "body": "Try the {product} {query}"},
    ])  # fmt: skip
    seen = {rank(limit=1, seed=s, query="trail {x}").ads[0].headline for s in range(12)}
    assert seen == {"Run faster", "Fleet trail from 59.00 EUR"}
    bodies = {a.body for s in range(12) for a in rank(limit=1, seed=s, query="trail {x}").ads if a.variant == 0}
    assert bodies == {"Try the Fleet Ridge trail {x}"}
    # without a query the {query} variant cannot be filled
    assert {rank(limit=1, seed=s).ads[0].variant for s in range(6)} == {None}
    # a creative without a product cannot fill {brand}: only the base creative is shown
    cr2 = world.creative(adv, camp, product_id=None, headline="Base", variants=[{"headline": "{brand}!"}])
    assert {rank(limit=1, candidates=(cr2,), seed=s).ads[0].headline for s in range(6)} == {"Base"}
    assert cr


def test_explain_gives_reasons_and_the_score_breakdown(world: Any) -> None:
    world.placement("search_top", slots=1, floor_cpm="1.00")
    world.product("sku-1", path=("shoes", "running"))
    adv = world.advertiser()
    cr = world.creative(adv, world.campaign(adv))
    [ad] = rank(placement="search_top", page_type="product", product_id="sku-1", explain=True, limit=1).ads
    assert ad.reasons is not None and ad.score_breakdown is not None
    assert {r["code"] for r in ad.reasons} == {explain.REASON_CONTEXT}
    assert ad.score_breakdown == {
        "bid_model": "cpc", "bid": "0.5000", "p_click": 0.02, "calibration": 1.0, "p_conversion": 0.002,
        "formula": "ecpm = bid × p_click × 1000", "ecpm": 10.0, "value": 159.8, "rank_score": 17.99,
        "clearing_ecpm": 1.0, "floor_cpm": "1.0000",
        "price": "0.0500", "pacing_throttle": 1.0, "exploratory": False,
    }  # fmt: skip
    assert ad.creative_id == cr
    # without explain: no reasons
    [plain] = rank(placement="search_top", page_type="product", product_id="sku-1", limit=1).ads
    assert plain.reasons is None and plain.score_breakdown is None


def test_reranking_returns_all_eligible_requested_creatives_scored(world: Any) -> None:
    world.placement("home_top", slots=1)
    adv = world.advertiser()
    camp = world.campaign(adv)
    a, b = world.creative(adv, camp), world.creative(adv, camp, headline="B")
    pending = world.creative(adv, camp, approve=False)
    result = rank(limit=1, candidates=(b, a, pending, 999999))
    # all eligible ones, same advertiser included, in auction order (ties: lower id first)
    assert [(x.creative_id, x.position) for x in result.ads] == [(a, 1), (b, 2)]
    d = decisions()[0].data
    assert d["mode"] == "rerank"
    logged = {c["creative_id"]: (c["eligible"], c.get("reason")) for c in decision_candidates(d)}
    assert logged == {a: (True, None), b: (True, None), pending: (False, "not_servable"),
                      999999: (False, "not_servable")}  # fmt: skip
    # the ineligible ones come first with null scores, the scored ones behind them
    scores = [(c["creative_id"], c.get("scores")) for c in decision_candidates(d)]
    assert scores[:2] == [(pending, None), (999999, None)]
    assert {cid: (sc["p_click"], sc["ecpm"], sc["calibration"]) for cid, sc in scores[2:]} == {
        b: (0.02, 10.0, 1.0),
        a: (0.02, 10.0, 1.0),
    }


@pytest.mark.parametrize("policy", ["auto", "random", "popular"])
def test_policies_serve_eligible_ads_and_are_logged(world: Any, policy: str) -> None:
    world.placement("home_top", slots=2)
    ids = set()
    for i in range(4):
        adv = world.advertiser(f"A{i}")
        ids.add(world.creative(adv, world.campaign(adv, bid=Decimal(f"0.{i + 1}0"))))
    result = rank(limit=2, policy=policy)
    assert len(result.ads) == 2 and {a.creative_id for a in result.ads} <= ids
    assert decisions()[0].data["policy"] == policy


def test_random_policy_is_random_and_auto_is_by_value(world: Any) -> None:
    world.placement("home_top", slots=1)
    ids = []
    for i in range(5):
        adv = world.advertiser(f"A{i}")
        ids.append(world.creative(adv, world.campaign(adv, bid=Decimal(f"0.{i + 1}0"))))
    assert {rank(limit=1, policy="auto", seed=s).ads[0].creative_id for s in range(8)} == {ids[4]}
    assert len({rank(limit=1, policy="random", seed=s).ads[0].creative_id for s in range(8)}) >= 3


def value_vs_bid(world: Any) -> tuple[int, int]:
    """A: cpc 0.50 on sku-1 (79.90): eCPM 10, value 0.2 % × 79.90 × 1000 = 159.8; B: cpc 0.60,
    no product: eCPM 12, value 0 (prior scorer: p_click 2 %, p_conversion 0.2 %)."""
    world.placement("home_top", slots=1)
    world.product("sku-1")
    a_adv, b_adv = world.advertiser("A"), world.advertiser("B")
    a = world.creative(a_adv, world.campaign(a_adv, bid=Decimal("0.50")))
    b = world.creative(b_adv, world.campaign(b_adv, bid=Decimal("0.60")), product_id=None)
    return a, b


def test_auto_ranks_by_ecpm_plus_weighted_value_and_prices_to_keep_the_slot(world: Any, settings: Any) -> None:
    a, b = value_vs_bid(world)
    # given λ = 0.05: A scores 10 + 7.99 = 17.99 > B's 12
    settings.DELIVERY_VALUE_WEIGHT = 0.05
    [ad] = rank(limit=1).ads
    # then A wins and pays the eCPM that keeps it at B's score: 12 − 7.99 = 4.01 → 4.01 / 20 = 0.2005 per click
    assert (ad.creative_id, ad.charge) == (a, Decimal("0.2005"))
    # given λ = 0 (eCPM only): B wins and pays A's eCPM 10: 10 / 20 = 0.50 per click
    settings.DELIVERY_VALUE_WEIGHT = 0.0
    [ad] = rank(limit=1).ads
    assert (ad.creative_id, ad.charge) == (b, Decimal("0.5000"))
    assert [e.data["value_weight"] for e in decisions()] == [0.05, 0.0]


def test_baselines_ignore_the_value_weight_and_the_click_value(world: Any, settings: Any) -> None:
    a, b = value_vs_bid(world)
    settings.DELIVERY_VALUE_WEIGHT = 0.05
    settings.DELIVERY_CLICK_VALUE = 5.0
    # popular with no stats ties on the prior: lower id A first, priced as before: min(own 10, next 12) = 10
    [ad] = rank(limit=1, policy="popular").ads
    assert (ad.creative_id, ad.charge) == (a, Decimal("0.5000"))
    assert (decisions()[0].data["value_weight"], decisions()[0].data["click_value"]) == (0.0, 0.0)


def test_auto_adds_the_click_value_to_the_score_and_discounts_it_from_the_price(world: Any, settings: Any) -> None:
    a, b = value_vs_bid(world)
    # given λ = 0 and μ = 0.1 per click, both at the prior p_click 2 %: A 10 + 2 = 12, B 12 + 2 = 14
    settings.DELIVERY_VALUE_WEIGHT = 0.0
    settings.DELIVERY_CLICK_VALUE = 0.1
    [ad] = rank(limit=1).ads
    # then B wins and pays the eCPM that keeps it at A's score: 12 − 2 = 10 → 10 / 20 = 0.50 per click
    assert (ad.creative_id, ad.charge) == (b, Decimal("0.5000"))
    assert decisions()[0].data["click_value"] == 0.1


def test_exploration_is_bounded_by_the_rate(world: Any, settings: Any) -> None:
    world.placement("home_top", slots=1)
    adv, adv2 = world.advertiser("A"), world.advertiser("B")
    world.creative(adv, world.campaign(adv, bid=Decimal("0.50")))
    world.creative(adv2, world.campaign(adv2, bid=Decimal("0.45")))
    settings.DELIVERY_EXPLORATION_RATE = 0.0
    runs = [rank(limit=1, seed=s) for s in range(10)]
    assert not any(w["exploratory"] for e in decisions() for w in e.data["winners"])
    settings.DELIVERY_EXPLORATION_RATE = 1.0
    runs = [rank(limit=1, seed=s, explain=True) for s in range(10)]
    explored = [
        r.ads[0] for r in runs if r.ads and r.ads[0].score_breakdown and r.ads[0].score_breakdown["exploratory"]
    ]
    # with both creatives new, an exploratory draw sometimes lets the lower bid win
    assert explored and all(explain.REASON_EXPLORATION in {x["code"] for x in a.reasons or []} for a in explored)
    assert all(len([w for w in e.data["winners"] if w["exploratory"]]) <= 1 for e in decisions())


@pytest.mark.django_db(transaction=True)  # the profiles projection reads committed events
def test_a_learned_shopper_vector_retrieves_creatives_in_the_same_learned_space(world: Any) -> None:
    from profiles import services as profiles_services
    from profiles import vectors

    # given three creatives and a shopper with a profile
    world.placement("home_top", slots=1)
    world.product("sku-1")
    ids = []
    for name in ("A", "B", "C"):
        adv = world.advertiser(name)
        ids.append(world.creative(adv, world.campaign(adv)))
    event = behaviour_event("product_view", user_id="u-l", timestamp=NOW - timedelta(minutes=1))
    assert events_ingest(raw_events=[event], now=None).rejected == []
    catch_up(get_projection("product_docs"))
    catch_up(get_projection("profiles"))
    # and an active two-tower version whose shopper vector points at creative B only
    basis = {ids[0]: [1.0, 0.0, 0.0, 0.0], ids[1]: [0.0, 1.0, 0.0, 0.0], ids[2]: [0.0, 0.0, 1.0, 0.0]}
    try:
        profiles_services.learned_embeddings_write(
            kind="item_learned", version="tt-test", vectors={"sku-1": [0.0, 0.0, 0.0, 1.0]}, activate=True
        )
        profiles_services.learned_embeddings_write(
            kind="creative_learned", version="tt-test", vectors={str(k): v for k, v in basis.items()}, activate=True
        )
        profiles_services.learned_embeddings_write(
            kind="user_learned", version="tt-test", vectors={"u-l": [0.1, 0.99, 0.0, 0.0]}, activate=True
        )
        vectors.clear_cache()
        # when the shopper asks for ads
        rank(user_id="u-l", limit=1)
        # then vector retrieval ran in the learned space and found exactly the nearest creative first
        cands = decision_candidates(decisions()[-1].data)
        by_vector = [c["creative_id"] for c in cands if "interest_vector" in c["features"].get("sources", [])]
        assert by_vector[:1] == [ids[1]]
    finally:
        vectors.clear_cache()
        # the flush between transactional tests keeps indexes: drop this version's HNSW indexes
        from django.db import connection

        with connection.cursor() as cur:
            for kind in ("item_learned", "creative_learned", "user_learned"):
                cur.execute(f'DROP INDEX IF EXISTS "{vectors.index_name(kind, "tt-test")}"')
