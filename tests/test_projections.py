"""Projection framework: replay-from-zero equals live state; readers never skip an event
that commits after a later position (ADR 0002)."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from django.db import connection

from adplatform.eventlog import projections, selectors
from adplatform.eventlog.models import ProjectionCheckpoint
from behaviour.models import ProductActivity, UserActivity
from behaviour.services import events_ingest

from .conftest import behaviour_event

pytestmark = pytest.mark.django_db(transaction=True)


def _snapshot() -> tuple[list[Any], list[Any]]:
    users = list(UserActivity.objects.order_by("user_key").values())
    products = list(ProductActivity.objects.order_by("product_id").values())
    return users, products


def _random_stream(rng: random.Random, n: int) -> list[dict[str, Any]]:
    base = datetime.now(UTC) - timedelta(days=1)
    out = []
    for _ in range(n):
        type_ = rng.choice(["page_view", "product_view", "search", "add_to_cart", "purchase", "product_view"])
        pid = f"sku-{rng.randrange(20)}"
        props = {
            "page_view": {"url": "https://s/"},
            "product_view": {"product_id": pid},
            "search": {"query": "q"},
            "add_to_cart": {"product_id": pid, "quantity": rng.randrange(1, 4), "price": "9.50"},
            "purchase": {
                "order_id": str(uuid.uuid4()),
                "items": [{"product_id": pid, "quantity": 2, "price": "4.25"}],
                "revenue": "8.50",
                "currency": "EUR",
            },
        }[type_]
        # timestamps deliberately out of order (late events)
        ts = base + timedelta(seconds=rng.randrange(86_000))
        extra = {"consent": False} if rng.random() < 0.1 else {}
        out.append(behaviour_event(type_, user_id=f"u-{rng.randrange(30)}", properties=props, timestamp=ts, **extra))
    return out


def test_activity_replay_from_zero_equals_live_state() -> None:
    # given a random stream ingested in batches, with re-sent (duplicate) batches and
    # the projection running between batches
    rng = random.Random(7)
    stream = _random_stream(rng, 600)
    projection = projections.get_projection("activity")
    for start in range(0, len(stream), 50):
        batch = stream[start : start + 50]
        events_ingest(raw_events=batch)
        if rng.random() < 0.3:
            events_ingest(raw_events=rng.sample(stream[: start + 50], 40))  # duplicates
        if rng.random() < 0.5:
            projections.catch_up(projection)
    projections.catch_up(projection)
    live = _snapshot()
    # when it is rebuilt from zero
    projections.rebuild(projection)
    # then the read model is identical, and matches the stream computed independently
    assert _snapshot() == live
    consenting = [e for e in stream if e.get("consent") is not False]
    assert sum(u["events"] for u in live[0]) == len(consenting)
    views = sum(1 for e in stream if e["type"] == "product_view")
    assert sum(p["views"] for p in live[1]) == views
    cp = ProjectionCheckpoint.objects.get(name="activity")
    assert cp.events_applied == len(stream)


def test_user_activity_first_and_last_seen_handle_late_events() -> None:
    t0 = datetime(2026, 1, 10, 12, tzinfo=UTC)
    events_ingest(raw_events=[behaviour_event(timestamp=t0)], now=t0 + timedelta(days=1))
    projections.catch_up(projections.get_projection("activity"))
    late = t0 - timedelta(days=3)
    events_ingest(raw_events=[behaviour_event("search", timestamp=late)], now=t0 + timedelta(days=1))
    projections.catch_up(projections.get_projection("activity"))
    row = UserActivity.objects.get(user_key="u-1")
    assert (row.first_seen, row.last_seen, row.events, row.searches) == (late, t0, 2, 1)


def _raw_connection() -> psycopg.Connection[Any]:
    params = connection.get_connection_params()
    for k in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(k, None)
    return psycopg.connect(**params)


def _insert_raw(conn: psycopg.Connection[Any], user: str, type_: str = "PageViewed") -> int:
    row = conn.execute(
        "INSERT INTO eventlog_event (event_id, stream, type, schema_version, occurred_at, user_key, data, meta) "
        "VALUES (%s, %s, %s, 1, now(), %s, '{\"url\": \"u\"}', '{}') RETURNING position",
        [uuid.uuid4(), f"user:{user}", type_, user],
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_reader_waits_for_an_earlier_position_that_commits_late() -> None:
    # given transaction A takes a position but has not committed yet
    a = _raw_connection()
    b = _raw_connection()
    try:
        pos_a = _insert_raw(a, "a")
        # and transaction B takes a later position and commits
        pos_b = _insert_raw(b, "b")
        b.commit()
        assert pos_b > pos_a
        # when a reader reads now, it must not move past A's position
        seen_before = selectors.events_after(tx_id=0, position=0)
        assert seen_before == []
        a.commit()
        # then after A commits both are read, A first: no event is skipped
        seen_after = selectors.events_after(tx_id=0, position=0)
        assert [e.position for e in seen_after] == [pos_a, pos_b]
    finally:
        a.close()
        b.close()


def test_rebuild_unknown_projection_is_an_error() -> None:
    with pytest.raises(KeyError):
        projections.get_projection("nope")


class _Recorder(projections.Projection):
    """Reads only RecorderTarget rows (not registered: exists only in this test)."""

    name = "test_recorder"
    event_types = frozenset({"RecorderTarget"})

    def __init__(self) -> None:
        self.seen: list[int] = []

    def apply(self, events: list[selectors.StoredEvent]) -> None:
        self.seen.extend(e.position for e in events)

    def reset(self) -> None:
        self.seen.clear()


def test_type_filtered_projection_moves_its_checkpoint_past_other_types_without_skipping() -> None:
    rec = _Recorder()
    a = _raw_connection()
    b = _raw_connection()
    try:
        # given a matching event whose transaction is still open
        late = _insert_raw(a, "t", "RecorderTarget")
        # and committed events of other types after it
        for _ in range(5):
            _insert_raw(b, "t", "Other")
        b.commit()
        # when the projection runs, it cannot move past the open transaction
        assert projections.run_batch(rec) == 0
        cp = ProjectionCheckpoint.objects.get(name=rec.name)
        assert cp.last_position < late
        a.commit()
        early_done = _insert_raw(b, "t", "Other")
        b.commit()
        # then the late event is applied, and the checkpoint moves past the other types
        assert projections.run_batch(rec) == 1
        assert rec.seen == [late]
        cp = ProjectionCheckpoint.objects.get(name=rec.name)
        assert cp.last_position == early_done
        # and an idle run neither applies nor rewinds anything
        assert projections.run_batch(rec) == 0
        assert ProjectionCheckpoint.objects.get(name=rec.name).last_position == early_done
        matching = _insert_raw(b, "t", "RecorderTarget")
        b.commit()
        assert projections.run_batch(rec) == 1
        assert rec.seen == [late, matching]
    finally:
        a.close()
        b.close()
