"""rank_decide end to end on real Postgres: eligibility outcomes, dedup, variants,
explain, re-ranking, policies and the decision log."""

from __future__ import annotations

from typing import Any

import pytest

from adplatform.eventlog import selectors as eventlog
from ranking.events import AD_DECISION_MADE

from .conftest import rank


def decisions() -> list[Any]:
    return list(eventlog.iter_all(types=[AD_DECISION_MADE.name])) if hasattr(eventlog, "iter_all") else []


def test_serves_an_eligible_creative_with_tracking_urls_and_logs_the_decision(world: Any) -> None:
    # given one running campaign with one approved creative and a placement
    world.placement("home_top", slots=2)
    world.product("sku-1")
    adv = world.advertiser()
    camp = world.campaign(adv)
    cr = world.creative(adv, camp)
    # when the storefront asks for ads
    result = rank(limit=2)
    # then the creative is served with its tracking URLs, priced at the floor-equivalent
    assert [a.creative_id for a in result.ads] == [cr]
    ad = result.ads[0]
    assert ad.position == 1 and ad.pricing_model == "cpc"
    assert ad.impression_url.startswith("/track/impression/") and ad.click_url.startswith("/track/click/")
    assert ad.p_click == pytest.approx(0.02) and ad.ecpm == pytest.approx(10.0)
    assert result.model_version == "prior-0"
