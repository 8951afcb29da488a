"""Fixtures for the delivery tests: advertisers, campaigns, creatives, placements and
products set up through the other apps' services; the serving caches are cleared and
their TTLs set to 0 so every decision sees the state the test just wrote."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from campaigns import services as campaigns
from catalog.services import ProductInput, products_upsert
from delivery import candidates, state
from delivery.services import RankRequest, rank_decide
from profiles import selectors as profiles

from ..campaigns.conftest import campaign_spec as campaigns_campaign_spec
from ..campaigns.conftest import creative_spec as campaigns_creative_spec

ACTOR = "test"
NOW = datetime.now(UTC).replace(microsecond=0)  # campaign validation compares with the real clock


@pytest.fixture(autouse=True)
def _fresh_serving_state(settings: Any) -> Iterator[None]:
    settings.DELIVERY_CAMPAIGNS_TTL_SECONDS = 0
    settings.DELIVERY_SPEND_TTL_SECONDS = 0
    settings.DELIVERY_EXPLORATION_RATE = 0.0
    settings.DELIVERY_VALUE_WEIGHT = 0.05  # hand-computed prices below; tests that need another λ set it
    settings.DELIVERY_CLICK_VALUE = 0.0  # likewise μ
    settings.AUTO_APPROVE_CREATIVES = False
    state.clear_cache()
    profiles.clear_caches()
    candidates._text_model_state.update(loading=True, ready=False)  # no MiniLM load in these tests
    yield
    state.clear_cache()


def campaign_spec(**overrides: Any) -> dict[str, Any]:
    """The campaigns tests' spec without any restriction (no dayparts, caps or targeting),
    budgets large enough not to matter, asap, pinned to NOW: each test adds the rule it tests."""
    plain: dict[str, Any] = {
        "daily_budget": Decimal("100.00"),
        "total_budget": Decimal("1000.00"),
        "start": NOW - timedelta(days=1),
        "end": NOW + timedelta(days=30),
        "timezone": "UTC",
        "dayparts": [],
        "pacing": "asap",
        "frequency_caps": [],
        "targeting": {},
    }
    return campaigns_campaign_spec(**(plain | overrides))


def creative_spec(**overrides: Any) -> dict[str, Any]:
    return campaigns_creative_spec(**({"variants": []} | overrides))


@pytest.fixture
def world(db: None) -> Any:
    """`world.advertiser()`, `world.campaign(adv, **spec)`, `world.creative(adv, camp, **spec)`,
    `world.placement(key, ...)`, `world.product(pid, path, brand, price)`."""

    class World:
        def advertiser(self, name: str = "Acme") -> int:
            return campaigns.advertiser_create(name=name, currency="EUR", timezone_name="UTC", actor=ACTOR)

        def campaign(self, advertiser_id: int, status: str = "active", **overrides: Any) -> int:
            return campaigns.campaign_create(
                advertiser_id=advertiser_id, spec=campaign_spec(**overrides), actor=ACTOR, status=status
            )

        def creative(self, advertiser_id: int, campaign_id: int, approve: bool = True, **overrides: Any) -> int:
            cid = campaigns.creative_create(
                advertiser_id=advertiser_id, campaign_id=campaign_id, spec=creative_spec(**overrides), actor=ACTOR
            )
            if approve:
                campaigns.creative_review(creative_id=cid, decision="approve", actor=ACTOR)
            return cid

        def placement(
            self, key: str = "home_top", slots: int = 2, floor_cpm: str = "0.00", page_types: tuple[str, ...] = ()
        ) -> str:
            campaigns.placement_upsert(
                spec={
                    "key": key,
                    "page_types": list(page_types or ("home", "category", "product", "search", "cart")),
                    "slots": slots,
                    "floor_cpm": Decimal(floor_cpm),
                },
                actor=ACTOR,
            )
            return key

        def product(self, pid: str, path: tuple[str, ...] = ("shoes", "running"), brand: str = "Fleet",
                    price: str = "79.90", title: str = "") -> str:  # fmt: skip
            products_upsert(
                products=[
                    ProductInput(
                        product_id=pid,
                        title=title or f"{brand} {pid}",
                        category_path=path,
                        brand=brand,
                        price=Decimal(price),
                        currency="EUR",
                        url=f"https://shop.example/p/{pid}",
                        image_url="",
                        in_stock=True,
                    )
                ],
                actor=ACTOR,
            )
            return pid

    return World()


def rank(
    *, user_id: str = "u-1", placement: str = "home_top", page_type: str = "home", limit: int = 2,
    at: datetime = NOW, seed: int = 1, **kw: Any,
) -> Any:  # fmt: skip
    import random

    return rank_decide(
        request=RankRequest(user_id=user_id, placement=placement, page_type=page_type, limit=limit, **kw),
        now=at,
        rng=random.Random(seed),
    )
