"""Fixtures for the campaigns tests: state is set up through the services."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from adplatform.eventlog import projections
from adplatform.eventlog import selectors as eventlog
from adplatform.eventlog.models import ProjectionCheckpoint
from campaigns import services

ACTOR = "test"


def campaign_spec(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    spec: dict[str, Any] = {
        "name": "Spring sale",
        "objective": "clicks",
        "bid_model": "cpc",
        "bid": Decimal("0.50"),
        "daily_budget": Decimal("10.00"),
        "total_budget": Decimal("100.00"),
        "start": now - timedelta(days=1),
        "end": now + timedelta(days=30),
        "timezone": "Europe/Berlin",
        "dayparts": [{"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "20:00"}],
        "pacing": "even",
        "frequency_caps": [{"scope": "campaign", "max": 3, "window_seconds": 86400}],
        "targeting": {"categories": ["shoes"], "devices": ["mobile"]},
    }
    spec.update(overrides)
    return spec


def creative_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "headline": "Run faster",
        "body": "Light shoes for long runs",
        "image_url": "https://cdn.shop.example/shoe.jpg",
        "landing_url": "https://shop.example/shoes/1",
        "product_id": "sku-1",
        "variants": [{"headline": "Best {category} deals", "body": None}],
    }
    spec.update(overrides)
    return spec


@pytest.fixture
def make_advertiser(db: None) -> Callable[..., int]:
    def make(name: str = "Acme", currency: str = "EUR", timezone_name: str = "Europe/Berlin") -> int:
        return services.advertiser_create(name=name, currency=currency, timezone_name=timezone_name, actor=ACTOR)

    return make


@pytest.fixture
def make_campaign(db: None) -> Callable[..., int]:
    def make(advertiser_id: int, status: str = "active", **overrides: Any) -> int:
        return services.campaign_create(
            advertiser_id=advertiser_id, spec=campaign_spec(**overrides), actor=ACTOR, status=status
        )

    return make


@pytest.fixture
def make_creative(db: None) -> Callable[..., int]:
    def make(advertiser_id: int, campaign_id: int, approve: bool = True, **overrides: Any) -> int:
        cid = services.creative_create(
            advertiser_id=advertiser_id, campaign_id=campaign_id, spec=creative_spec(**overrides), actor=ACTOR
        )
        if approve:
            services.creative_review(creative_id=cid, decision="approve", actor=ACTOR)
        return cid

    return make


def settle(name: str, *, rebuild: bool = False, timeout: float = 30.0) -> None:
    """Run (or rebuild) a projection until it has applied every committed event of its
    types. Readers of the log wait for transactions older than an event to finish, and
    with `pytest -n 2` the other worker's transactions (same Postgres cluster) can hold a
    reader back for a moment: a single catch_up could stop short."""
    projection = projections.get_projection(name)
    if rebuild:
        projections.rebuild(projection)
    deadline = time.monotonic() + timeout
    while True:
        projections.catch_up(projection)
        applied = ProjectionCheckpoint.objects.filter(name=name).values_list("events_applied", flat=True).first()
        if (applied or 0) >= eventlog.count_events(types=projection.event_types):
            return
        assert time.monotonic() < deadline, f"projection {name} did not catch up"
        time.sleep(0.05)
