"""Fixtures for the learning-pipeline tests: a small generated marketplace put into the log
through the public services (catalog, campaigns, behaviour ingestion, ad_exposures_import)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from behaviour.services import events_ingest
from campaigns import services as campaigns
from catalog.services import products_upsert
from marketplace.services import world_product_inputs
from marketplace.world import HistoryDay, World, WorldConfig, build_world, generate_history
from ranking import selectors
from ranking.services import AdExposure, ad_exposures_import

SMALL = WorldConfig(
    seed=3,
    n_users=70,
    n_products=50,
    n_advertisers=2,
    n_creatives=12,
    n_taste_groups=3,
    n_brands=10,
    days=6,
    activity_mean=1.6,
)


@dataclass
class Seeded:
    world: World
    days: list[HistoryDay]
    creative_ids: list[int]  # world creative index → platform creative id
    campaign_ids: list[int]
    advertiser_ids: list[int]


@pytest.fixture(autouse=True)
def _fast_training(settings: Any) -> Iterator[None]:
    settings.RANKING_TRAIN_EPOCHS = 2
    settings.RANKING_HASH_BUCKETS = 1 << 12
    settings.RANKING_MIN_EXAMPLES = 200
    settings.RANKING_CHAMPION_CHECK_SECONDS = 0.0
    settings.ML_DEVICE = "cpu"
    selectors.clear_champion_cache()
    yield
    selectors.clear_champion_cache()


def seed_catalog_and_creatives(world: World) -> tuple[list[int], list[int], list[int]]:
    products_upsert(products=world_product_inputs(world), actor="test")
    now = datetime.now(UTC)
    adv_ids = [
        campaigns.advertiser_create(name=a.name, currency="USD", timezone_name="UTC", actor="test")
        for a in world.advertisers
    ]
    camp_ids = []
    for c in world.campaigns:
        camp_ids.append(
            campaigns.campaign_create(
                advertiser_id=adv_ids[int(c.advertiser[1:])],
                spec={
                    "name": c.name,
                    "objective": "clicks",
                    "bid_model": "cpc",
                    "bid": Decimal("0.50"),
                    "daily_budget": Decimal("100.00"),
                    "total_budget": Decimal("1000.00"),
                    "start": now - timedelta(days=400),
                    "pacing": "even",
                },
                actor="test",
            )
        )
    creative_ids = []
    for ci, cr in enumerate(world.creatives):
        camp = int(world.creative_campaign[ci])
        adv = int(world.campaigns[camp].advertiser[1:])
        creative_ids.append(
            campaigns.creative_create(
                advertiser_id=adv_ids[adv],
                campaign_id=camp_ids[camp],
                spec={
                    "headline": cr.headline[:90],
                    "body": cr.body[:200],
                    "image_url": cr.image_url,
                    "landing_url": cr.landing_url,
                    "product_id": cr.product_id,
                },
                actor="test",
            )
        )
    return creative_ids, camp_ids, adv_ids


def import_days(s: Seeded, days: list[HistoryDay]) -> None:
    w = s.world
    for day in days:
        for start in range(0, len(day.events), 1000):
            result = events_ingest(raw_events=day.events[start : start + 1000], source="test")
            assert result.rejected == [], result.rejected[:3]
        exposures = []
        for x in day.exposures:
            camp = int(w.creative_campaign[x.creative_idx])
            exposures.append(
                AdExposure(
                    exposure_key=x.exposure_key,
                    user_id=w.shoppers[x.user_idx].user_id,
                    at=x.at,
                    creative_id=s.creative_ids[x.creative_idx],
                    campaign_id=s.campaign_ids[camp],
                    advertiser_id=s.advertiser_ids[int(w.campaigns[camp].advertiser[1:])],
                    placement=x.placement,
                    position=x.position,
                    page_type=x.page_type,
                    clicked_at=x.clicked_at,
                    order_id=x.order_id,
                    converted_at=x.converted_at,
                    revenue=Decimal(x.revenue) if x.revenue else None,
                    context={"category_id": w.categories[x.context_leaf][1]} if x.context_leaf >= 0 else {},
                )
            )
        ad_exposures_import(exposures=exposures, source="test")


def seed_world(cfg: WorldConfig = SMALL, *, days: int | None = None) -> Seeded:
    world = build_world(cfg)
    history = list(generate_history(world))
    creative_ids, camp_ids, adv_ids = seed_catalog_and_creatives(world)
    s = Seeded(world, history, creative_ids, camp_ids, adv_ids)
    import_days(s, history[: days if days is not None else len(history)])
    return s


@pytest.fixture
def seeded(transactional_db: None) -> Seeded:
    return seed_world()
