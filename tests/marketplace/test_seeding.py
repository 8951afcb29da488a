"""Seeding (`marketplace.services.world_seed`): everything goes through the apps' services
into the event log, and a re-run seeds nothing twice."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import call_command

from adplatform.eventlog import selectors as eventlog
from campaigns import selectors as campaigns_selectors
from marketplace.models import SeededWorld
from marketplace.seeding import seeded_world
from marketplace.services import world_seed
from marketplace.world import PLACEMENTS, generate_history
from ranking.events import AD_CLICKED, AD_IMPRESSED, CONVERSION_ATTRIBUTED

NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
BEHAVIOUR = ("PageViewed", "ProductViewed", "SearchPerformed", "CartItemAdded", "OrderPlaced")


def _log_counts() -> dict[str, int]:
    types = (
        "ProductUpserted",
        "PlacementCreated",
        "AdvertiserCreated",
        "CampaignCreated",
        "CreativeCreated",
        "CreativeApproved",
        AD_IMPRESSED.name,
        AD_CLICKED.name,
        CONVERSION_ATTRIBUTED.name,
    )
    out = {t: eventlog.count_events(types=[t]) for t in types}
    out["behaviour"] = eventlog.count_events(types=list(BEHAVIOUR))
    return out


@pytest.mark.django_db
def test_world_seed_writes_the_world_through_services_once(settings: object, tmp_path: Path) -> None:
    # given the test world with two days of history, and its own var dir for the manifest
    settings.VAR_DIR = tmp_path  # type: ignore[attr-defined]
    _row, world = seeded_world(size="test", seed=3, days=2, now=NOW)
    days = list(generate_history(world))
    n_events = sum(len(d.events) for d in days)
    n_exposures = sum(len(d.exposures) for d in days)
    n_clicks = sum(x.clicked for d in days for x in d.exposures)
    n_orders = sum(e["type"] == "purchase" for d in days for e in d.events)
    n_conversions = sum(x.converted_at is not None for d in days for x in d.exposures)

    # when it is seeded
    first = world_seed(size="test", seed=3, days=2, now=NOW)

    # then every object and every history event is in the log, written by the services
    assert (first.products_created, first.advertisers_created, first.campaigns_created, first.creatives_created) == (
        200,
        8,
        16,
        40,
    )
    assert (first.events_accepted, first.events_duplicate, first.days_loaded) == (n_events, 0, 2)
    assert first.exposures_stored == n_exposures + n_clicks + n_conversions
    expected = {
        "ProductUpserted": 200,
        "PlacementCreated": len(PLACEMENTS),
        "AdvertiserCreated": 8,
        "CampaignCreated": 16,
        "CreativeCreated": 40,
        "CreativeApproved": 40,
        AD_IMPRESSED.name: n_exposures,
        AD_CLICKED.name: n_clicks,
        CONVERSION_ATTRIBUTED.name: n_conversions,
        "behaviour": n_events,
    }
    assert _log_counts() == expected
    assert eventlog.count_events(types=["OrderPlaced"]) == n_orders > 0
    assert campaigns_selectors.creative_list(advertiser_id=None).filter(status="approved").count() == 40
    # and the manifest maps every world key to its platform id, with an advertiser token each
    manifest = json.loads(Path(first.manifest_path).read_text())
    assert (len(manifest["advertisers"]), len(manifest["campaigns"]), len(manifest["creatives"])) == (8, 16, 40)
    assert all(a["token"] for a in manifest["advertisers"].values())
    assert manifest["start"] == "2026-11-18T00:00:00+00:00"  # the history ends the day before NOW

    # when seeded again, and once more after forgetting how far the history got
    second = world_seed(size="test", seed=3, days=2, now=NOW)
    SeededWorld.objects.filter(name=first.world).update(days_loaded=0)
    third = world_seed(size="test", seed=3, days=2, now=NOW)

    # then nothing is created twice: history events are recognised by their ids
    for again in (second, third):
        assert (again.products_created, again.advertisers_created, again.campaigns_created) == (0, 0, 0)
        assert (again.creatives_created, again.events_accepted, again.exposures_stored) == (0, 0, 0)
    assert (second.events_duplicate, third.events_duplicate) == (0, n_events)
    assert _log_counts() == expected
    assert json.loads(Path(second.manifest_path).read_text())["advertisers"] == manifest["advertisers"]


@pytest.mark.django_db
def test_seed_demo_command_without_history_prints_a_storefront_key(
    settings: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a fresh var dir
    settings.VAR_DIR = tmp_path  # type: ignore[attr-defined]

    # when the command seeds the catalogue and campaigns only, with a key
    call_command("seed_demo", "--size", "test", "--seed", "5", "--no-history", "--create-key")

    # then the objects exist, no history was loaded, and the key is alone on the last line
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("adp_")
    assert "200 products, 8 advertisers, 16 campaigns, 40 creatives created" in out[0]
    assert eventlog.count_events(types=[AD_IMPRESSED.name]) == 0
    assert eventlog.count_events(types=list(BEHAVIOUR)) == 0


@pytest.mark.django_db
def test_a_world_first_seeded_just_after_midnight_has_no_history_in_the_future() -> None:
    # given the first seeding five minutes after midnight UTC (late sessions spill past their day)
    now = datetime(2026, 12, 5, 0, 5, tzinfo=UTC)
    _, world = seeded_world(size="test", seed=22, days=1, now=now)
    # then every generated event and exposure lies before that moment
    for day in generate_history(world):
        assert max(e["timestamp"] for e in day.events) < now.isoformat().replace("+00:00", "Z")
        assert max(x.at for x in day.exposures) < now
