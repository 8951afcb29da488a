"""Serving statistics (the delivery_stats projection: replay from zero == live), Thompson
sampling for new creatives, the per-segment variant bandit and safe slot filling."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest

from adplatform.eventlog import projections
from campaigns.selectors import CreativeVariant
from delivery import exploration, variants
from delivery.exploration import Counts
from delivery.selectors import serving_stats
from tracking import services as tracking

from .conftest import NOW, rank


@pytest.mark.django_db(transaction=True)
def test_stats_projection_counts_impressions_and_clicks_and_replays_to_the_same_state(world: Any) -> None:
    # given served ads with a variant, impressions for all and a click on one
    world.placement("home_top", slots=2)
    world.product("sku-1")
    a1, a2 = world.advertiser("A"), world.advertiser("B")
    c1 = world.creative(a1, world.campaign(a1), variants=[{"headline": "{brand} shoes"}])
    c2 = world.creative(a2, world.campaign(a2, bid="0.40"))
    for i in range(3):
        for ad in rank(limit=2, seed=i, user_id=f"u-{i}").ads:
            token = ad.impression_url.rsplit("/", 1)[1]
            tracking.impression_record(token=token, at=NOW + timedelta(seconds=1))
            if i == 0 and ad.creative_id == c1:
                tracking.click_record(token=ad.click_url.rsplit("/", 1)[1], at=NOW + timedelta(seconds=2))
    projection = projections.get_projection("delivery_stats")
    projections.catch_up(projection)
    live = serving_stats(model_version="prior-0")
    # then the totals per creative are exact
    assert live.by_creative == {c1: Counts(3, 1), c2: Counts(3, 0)}
    assert sum(c.impressions for c in live.by_variant[c1].values()) == 3
    # and a rebuild from zero gives the same state
    projections.rebuild(projection)
    assert serving_stats(model_version="prior-0") == live


def test_thompson_draws_follow_the_data() -> None:
    rng = random.Random(3)
    # a creative with 1000 impressions at 10 % CTR: draws close to 10 % whatever the prior
    draws = [exploration.thompson_ctr(rng, Counts(1000, 100), prior_p=0.02) for _ in range(200)]
    assert 0.085 < sum(draws) / len(draws) < 0.105
    # no data: the draws are spread around the model's p_click
    fresh = [exploration.thompson_ctr(rng, Counts(), prior_p=0.02) for _ in range(400)]
    assert 0.014 < sum(fresh) / len(fresh) < 0.026 and max(fresh) > 0.04
    # explore_now respects the rate exactly at the extremes
    assert not any(exploration.explore_now(rng, 0.0) for _ in range(100))
    assert all(exploration.explore_now(rng, 1.0) for _ in range(100))
    share = sum(exploration.explore_now(rng, 0.1) for _ in range(5000)) / 5000
    assert 0.085 < share < 0.115


def test_variant_bandit_prefers_the_better_variant_of_the_shoppers_segment() -> None:
    rng = random.Random(5)
    counts = {
        (None, "runners"): Counts(2000, 20),
        (0, "runners"): Counts(2000, 100),
        (None, "hikers"): Counts(2000, 100),
        (0, "hikers"): Counts(2000, 20),
    }
    runners = [exploration.pick_variant(rng, [None, 0], counts, "runners") for _ in range(200)]
    hikers = [exploration.pick_variant(rng, [None, 0], counts, "hikers") for _ in range(200)]
    assert runners.count(0) >= 195 and hikers.count(None) >= 195
    # an unseen segment explores both
    unseen = [exploration.pick_variant(rng, [None, 0], counts, "new") for _ in range(200)]
    assert 40 < unseen.count(0) < 160


def test_slot_filling_is_literal_and_safe() -> None:
    values = {"brand": variants.clean_value("Acme\x00\n Co"), "category": "shoes", "price": "9.99 EUR"}
    assert values["brand"] == "Acme Co"
    assert variants.fill("{brand} {category} {price}", values) == "Acme Co shoes 9.99 EUR"
    # format-string tricks stay text; unknown braces stay; a missing slot makes the variant unusable
    assert variants.fill("{brand.__class__} {0} {brand}", values) == "{brand.__class__} {0} Acme Co"
    assert variants.fill("{product} now", values) is None
    vs = (CreativeVariant("{product}!", None), CreativeVariant("{brand}", "{category} deals"))
    assert variants.renderable(vs, values) == [1]
    r = variants.render("Base", "Body", vs, 1, values)
    assert (r.headline, r.body, r.variant) == ("Acme Co", "shoes deals", 1)
    assert variants.render("Base", "Body", vs, 0, values).variant is None
    long = {"brand": variants.clean_value("x" * 500)}
    assert len(variants.fill("{brand}", long) or "") == variants.VALUE_MAX
