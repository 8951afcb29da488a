"""Fixtures for the tracking tests: campaigns set up through the campaigns services, served
ads built like delivery builds them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tracking.services import ServedAd

from ..campaigns.conftest import make_advertiser, make_campaign, make_creative, settle  # noqa: F401

# served_at with whole milliseconds: the token keeps millisecond precision
SERVED_AT = datetime(2026, 3, 2, 12, 0, 0, 123000, tzinfo=UTC)


def served_ad(**overrides: Any) -> ServedAd:
    ad = ServedAd(
        request_id=str(uuid.uuid4()),
        user_id="shopper-1",
        creative_id=11,
        campaign_id=7,
        advertiser_id=3,
        placement="home-top",
        position=1,
        pricing_model="cpc",
        price=Decimal("0.40"),
        currency="EUR",
        landing_url="https://shop.example/shoes/1?utm_source=ads",
        served_at=SERVED_AT,
        segment="runners",
        variant=0,
        p_click=0.031250,
        model_version="din_esmm-3",
    )
    return replace(ad, **overrides)


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


@pytest.fixture
def campaign(request: pytest.FixtureRequest) -> Callable[..., ServedAd]:
    """A served ad of a fresh active campaign (its own advertiser and creative); overrides go
    to the campaign spec (bid_model, bid, budgets) or, for ServedAd fields, to the ad."""

    new_advertiser = request.getfixturevalue("make_advertiser")
    new_campaign = request.getfixturevalue("make_campaign")
    new_creative = request.getfixturevalue("make_creative")

    def make(**overrides: Any) -> ServedAd:
        ad_fields = {k: overrides.pop(k) for k in list(overrides) if k in ServedAd.__dataclass_fields__}
        adv = new_advertiser()
        bid_model = overrides.setdefault("bid_model", "cpc")
        overrides.setdefault("dayparts", [])
        cid = new_campaign(adv, **overrides)
        crid = new_creative(adv, cid)
        price = overrides.get("bid", Decimal("0.50"))
        return served_ad(
            **{
                "campaign_id": cid,
                "creative_id": crid,
                "advertiser_id": adv,
                "pricing_model": bid_model,
                "price": price,
                "served_at": datetime.now(UTC).replace(microsecond=0),
                **ad_fields,
            }
        )

    return make
