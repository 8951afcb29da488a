"""`simulate` end to end over a live server: a tiny seeded world, two policies side by side,
everything through HTTP, and the simulator's totals equal what GET /reports shows once
the projections have settled."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.urls import Resolver404, resolve

from marketplace.services import world_seed
from marketplace.simulation import (
    SPEND_TOLERANCE,
    SimulationConfig,
    advertiser_tokens,
    campaign_advertisers,
    manifest_world,
    reports_by_advertiser,
    simulate_run,
    simulated_by_advertiser,
    sum_totals,
)
from tests.campaigns.conftest import settle

pytestmark = pytest.mark.django_db(transaction=True)


def _platform_serves_ads() -> bool:
    try:
        resolve("/api/v1/rank")
        resolve("/track/impression/x")
    except Resolver404:
        return False
    return True


@pytest.mark.skipif(not _platform_serves_ads(), reason="needs /api/v1/rank and /track/* (delivery, tracking)")
def test_simulated_totals_match_the_reports_projection(
    live_server: Any, make_key: Any, settings: Any, tmp_path: Path
) -> None:
    # given a tiny world seeded through the services (one day of history) and a storefront key
    settings.VAR_DIR = tmp_path
    seeded = world_seed(size="test", seed=21, days=1)
    manifest = json.loads(Path(seeded.manifest_path).read_text())
    world = manifest_world(manifest)
    key = make_key("events:write", "ads:rank")
    tokens = advertiser_tokens(manifest)
    today = datetime.now(UTC).date()
    span = {"day_from": (today - timedelta(days=2)).isoformat(), "day_to": (today + timedelta(days=1)).isoformat()}
    for name in ("attribution", "reports"):
        settle(name)
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        before = reports_by_advertiser(client, tokens, **span)

        # when the simulator runs random and popular side by side over HTTP
        cfg = SimulationConfig(
            base_url=live_server.url,
            api_key=key,
            policies=("random", "popular"),
            users=24,
            sessions=12,
            concurrency=2,
            seed=3,
            attribution_window_seconds=settings.ATTRIBUTION_WINDOW_SECONDS,
        )
        result = simulate_run(world=world, manifest=manifest, cfg=cfg)
        for name in ("attribution", "reports"):
            settle(name)
        after = reports_by_advertiser(client, tokens, **span)

    # then every session ran, every event was accepted, and ads were served
    assert result.sessions == 24 and result.http_errors == 0
    assert result.events_rejected == 0 and result.events_accepted == result.events_sent > 0
    expected = simulated_by_advertiser(result.tallies, campaign_advertisers(world, manifest))
    assert sum_totals(expected.values()).impressions > 0
    # and each advertiser's reports grew by exactly what the simulator counted for it:
    # counts and revenue equal, spend up to the API's 4-decimal rounding
    for advertiser_id, now in after.items():
        grew = now.minus(before[advertiser_id])
        want = expected.get(advertiser_id, sum_totals([]))
        assert (grew.impressions, grew.clicks, grew.conversions, grew.revenue) == (
            want.impressions,
            want.clicks,
            want.conversions,
            want.revenue,
        ), advertiser_id
        assert abs(grew.spend - want.spend) <= SPEND_TOLERANCE, (advertiser_id, grew.spend, want.spend)
