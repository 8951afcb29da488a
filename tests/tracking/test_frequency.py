"""recent_impressions: written in the impression's transaction, read newest first since a
time, nothing for shoppers without consent, forgotten on erasure, rebuilt from the log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import patch

import pytest
from django.db import connection

from adplatform.eventlog import projections
from adplatform.eventlog import selectors as eventlog
from tracking import selectors, services
from tracking.models import RecentImpression
from tracking.selectors import RecentImpression as Recent
from tracking.tasks import frequency_prune as frequency_prune_task

from .conftest import settle, token_of

pytestmark = pytest.mark.django_db(transaction=True)


def beacon(ad: services.ServedAd, seconds: int = 1) -> None:
    impression_url, _ = services.tracking_urls(ad=ad)
    services.impression_record(token=token_of(impression_url), at=ad.served_at + timedelta(seconds=seconds))


def test_recent_impressions_are_current_after_the_beacon_newest_first(campaign: Callable) -> None:
    # given two ads of one campaign and one of another, shown to shopper-1, and one to shopper-2
    first = campaign(user_id="shopper-1")
    second = campaign(user_id="shopper-1", position=2)
    other = campaign(user_id="shopper-2")
    t0 = first.served_at
    # when the beacons fire 1 s, 5 s and 9 s after serving
    beacon(first, 1)
    beacon(second, 5)
    beacon(other, 9)
    # then shopper-1 sees exactly their two, newest first; `since` is inclusive
    rows = selectors.recent_impressions(user_id="shopper-1", since=t0)
    assert rows == [
        Recent(second.campaign_id, second.creative_id, second.served_at + timedelta(seconds=5)),
        Recent(first.campaign_id, first.creative_id, t0 + timedelta(seconds=1)),
    ]
    assert selectors.recent_impressions(user_id="shopper-1", since=t0 + timedelta(seconds=5)) == rows[:1]
    assert selectors.recent_impressions(user_id="shopper-1", since=t0 + timedelta(seconds=6)) == []
    assert selectors.recent_impressions(user_id="nobody", since=t0) == []


def test_no_frequency_rows_for_a_shopper_without_consent(campaign: Callable) -> None:
    # given an ad served to a shopper who did not consent
    ad = campaign(user_id="no-consent", consent=False)
    # when its beacon fires
    beacon(ad)
    # then the impression is recorded (and billed) but no frequency row exists
    assert eventlog.count_events(types=["AdImpressed"]) == 1
    assert selectors.recent_impressions(user_id="no-consent", since=ad.served_at) == []
    assert RecentImpression.objects.count() == 0
    # and a rebuild from the log does not create one either
    settle("tracking_frequency", rebuild=True)
    assert RecentImpression.objects.count() == 0


def test_frequency_replay_equals_live_and_forget_user(campaign: Callable) -> None:
    # given impressions for three shoppers, one of them twice (a repeated beacon)
    ads = [campaign(user_id=f"s-{i % 3}", position=i) for i in range(6)]
    for i, ad in enumerate(ads):
        beacon(ad, i)
    beacon(ads[0], 30)  # repeat: no-op
    live = list(RecentImpression.objects.order_by("event_id").values())
    assert len(live) == 6
    # when the projection is rebuilt from zero
    settle("tracking_frequency", rebuild=True)
    # then it is identical
    assert list(RecentImpression.objects.order_by("event_id").values()) == live
    # and forgetting a shopper removes exactly their rows
    projections.get_projection("tracking_frequency").forget_user("s-1")
    assert sorted(RecentImpression.objects.values_list("user_key", flat=True)) == ["s-0", "s-0", "s-2", "s-2"]


def test_recent_impressions_query_uses_its_index(db: None) -> None:
    # the hot-path query is an index (only) scan on (user_key, at desc), no sort
    with connection.cursor() as cur:
        cur.execute("SET enable_seqscan = off")
        cur.execute("EXPLAIN " + selectors._RECENT_SQL, ["shopper-1", "2026-01-01T00:00:00Z"])
        plan = "\n".join(r[0] for r in cur.fetchall())
        cur.execute("RESET enable_seqscan")
    assert "tracking_recent_user_at" in plan
    assert "Sort" not in plan


def test_prune_deletes_only_rows_older_than_the_cutoff(campaign: Callable, settings: Any) -> None:
    # given impressions 1 s .. 5 s after serving
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    ads = [campaign(user_id="p", position=i, served_at=t0) for i in range(5)]
    for i, ad in enumerate(ads):
        beacon(ad, i + 1)
    cutoff = ads[0].served_at + timedelta(seconds=3)
    # when rows before the cutoff are pruned (in batches of 2)
    settings.TRACKING_FREQUENCY_RETENTION_SECONDS = 0
    with patch.object(services, "PRUNE_BATCH_ROWS", 2):
        deleted = services.frequency_prune(before=cutoff)
    # then exactly the two older rows are gone
    assert deleted == 2
    assert sorted(r.at for r in selectors.recent_impressions(user_id="p", since=ads[0].served_at)) == [
        ads[0].served_at + timedelta(seconds=s) for s in (3, 4, 5)
    ]
    # and the task prunes everything before now with a zero retention
    assert frequency_prune_task() == 3
    assert RecentImpression.objects.count() == 0


def test_impressions_older_than_the_retention_write_no_row(campaign: Callable, settings: Any) -> None:
    # given an impression recorded 2 hours after it was served, with a 1 hour retention
    settings.TRACKING_FREQUENCY_RETENTION_SECONDS = 3600
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    beacon(campaign(user_id="old", served_at=t0), 1)
    beacon(campaign(user_id="old", served_at=t0 + timedelta(hours=2, minutes=30)), 1)
    # then only the recent one has a frequency row, live and after a rebuild
    assert RecentImpression.objects.count() == 1
    settle("tracking_frequency", rebuild=True)
    assert [r.at for r in RecentImpression.objects.all()] == [t0 + timedelta(hours=2, minutes=30, seconds=1)]
    assert eventlog.count_events(types=["AdImpressed"]) == 2
