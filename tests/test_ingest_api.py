"""POST /api/v1/events over real HTTP against the embedded Postgres."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adplatform.eventlog.selectors import count_events
from behaviour import events as behaviour_events

from .conftest import auth, behaviour_event

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_batch_sent_twice_is_stored_once(http: Any, make_key: Any) -> None:
    # given a key with events:write and a batch of every event type
    key = make_key("events:write")
    batch = [behaviour_event(t) for t in behaviour_events.WIRE_TO_STORED]
    # when the batch is sent twice
    first = http.post("/api/v1/events", json={"events": batch}, headers=auth(key))
    second = http.post("/api/v1/events", json={"events": batch}, headers=auth(key))
    # then the first stores all, the second none
    assert first.status_code == 202
    assert first.json() == {"accepted": 8, "duplicates": 0, "rejected": []}
    assert second.json() == {"accepted": 0, "duplicates": 8, "rejected": []}
    assert count_events() == 8


def test_concurrent_duplicate_batches_store_each_event_once(http: Any, make_key: Any, live_server: Any) -> None:
    key = make_key("events:write")
    batch = [behaviour_event(user_id=f"u-{i}") for i in range(200)]
    results: list[dict[str, Any]] = []
    lock = threading.Lock()

    def send() -> None:
        import httpx

        with httpx.Client(base_url=live_server.url, timeout=30) as client:
            r = client.post("/api/v1/events", json={"events": batch}, headers=auth(key))
            with lock:
                results.append({"status": r.status_code, **r.json()})

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r["status"] for r in results] == [202] * 6
    assert sum(r["accepted"] for r in results) == 200
    assert sum(r["duplicates"] for r in results) == 5 * 200
    assert count_events() == 200


def test_duplicates_inside_one_batch_count_once(http: Any, make_key: Any) -> None:
    key = make_key("events:write")
    ev = behaviour_event()
    r = http.post("/api/v1/events", json={"events": [ev, ev, ev]}, headers=auth(key))
    assert r.json() == {"accepted": 1, "duplicates": 2, "rejected": []}
    assert count_events() == 1


def test_mixed_batch_stores_exactly_the_valid_events(http: Any, make_key: Any) -> None:
    key = make_key("events:write")
    now = datetime.now(UTC)
    good = [behaviour_event("search"), behaviour_event("purchase"), behaviour_event("page_view")]
    batch = [
        good[0],
        behaviour_event("add_to_cart", properties={"product_id": "p", "quantity": 0, "price": "-1"}),
        good[1],
        behaviour_event(timestamp=now + timedelta(minutes=10)),
        {**behaviour_event(), "type": "teleport"},
        {**behaviour_event(), "event_id": "not-a-uuid"},
        {**behaviour_event(), "user_id": "x" * 129},
        good[2],
        "not an object",
        {**behaviour_event(), "timestamp": "2026-01-01T00:00:00"},  # no time zone
        {**behaviour_event(), "surprise": 1},
        behaviour_event("purchase", properties={"order_id": "o", "items": [], "revenue": 1, "currency": "euro"}),
    ]
    r = http.post("/api/v1/events", json={"events": batch}, headers=auth(key))
    assert r.status_code == 202
    body = r.json()
    assert body["accepted"] == 3 and body["duplicates"] == 0
    rejected = {item["index"]: item["errors"] for item in body["rejected"]}
    assert rejected == {
        1: {
            "properties.quantity": [behaviour_events.ERR_INT.format(lo=1, hi=100_000)],
            "properties.price": [behaviour_events.ERR_MONEY],
        },
        3: {"timestamp": [behaviour_events.ERR_FUTURE]},
        4: {"type": [behaviour_events.ERR_TYPE]},
        5: {"event_id": [behaviour_events.ERR_UUID]},
        6: {"user_id": [behaviour_events.ERR_TOO_LONG.format(n=128)]},
        8: {"non_field_errors": [behaviour_events.ERR_NOT_OBJECT]},
        9: {"timestamp": [behaviour_events.ERR_TIMESTAMP]},
        10: {"surprise": [behaviour_events.ERR_UNKNOWN_FIELD]},
        11: {
            "properties.items": [behaviour_events.ERR_LIST.format(n=behaviour_events.MAX_ITEMS)],
            "properties.currency": [behaviour_events.ERR_CURRENCY],
        },
    }
    assert body["rejected"][0]["event_id"] == batch[1]["event_id"]
    assert count_events() == 3


def test_late_events_are_accepted_and_unknown_properties_kept(http: Any, make_key: Any) -> None:
    key = make_key("events:write")
    old = behaviour_event(timestamp=datetime.now(UTC) - timedelta(days=30), properties={"product_id": "p", "x": [1]})
    r = http.post("/api/v1/events", json={"events": [old]}, headers=auth(key))
    assert r.json()["accepted"] == 1
    from adplatform.eventlog.models import Event

    stored = Event.objects.get()
    assert stored.data == {"product_id": "p", "x": [1]}
    assert stored.type == "ProductViewed" and stored.user_key == "u-1" and stored.stream == "user:u-1"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "field"),
    [
        (b"{not json", "application/json", 400, "body"),
        (b'{"events": []}', "application/json", 400, "events"),
        (b'{"events": {"a": 1}}', "application/json", 400, "events"),
        (b"[1, 2]", "application/json", 400, "events"),
        (b'"\\ud800"', "application/json", 400, "body"),
        (b"\xff\xfe", "application/json", 400, "body"),
        (b"[" * 10000, "application/json", 400, "body"),
    ],
)
def test_malformed_bodies_get_400_and_store_nothing(
    http: Any, make_key: Any, body: bytes, content_type: str, status: int, field: str
) -> None:
    key = make_key("events:write")
    r = http.post("/api/v1/events", content=body, headers={**auth(key), "Content-Type": content_type})
    assert r.status_code == status
    assert r.json()["error"]["code"] == "invalid"
    assert field in r.json()["error"]["fields"]
    assert count_events() == 0


def test_more_than_1000_events_is_413(http: Any, make_key: Any) -> None:
    key = make_key("events:write")
    r = http.post("/api/v1/events", json={"events": [behaviour_event() for _ in range(1001)]}, headers=auth(key))
    assert r.status_code == 413
    assert r.json()["error"]["status"] == 413
    assert count_events() == 0


def test_oversized_body_is_413(http: Any, make_key: Any) -> None:
    key = make_key("events:write")
    huge = behaviour_event(properties={"product_id": "p", "blob": "x" * (5 * 1024 * 1024)})
    r = http.post("/api/v1/events", json={"events": [huge]}, headers=auth(key))
    assert r.status_code == 413
    assert count_events() == 0


def test_huge_strings_inside_limits_are_rejected_per_field(http: Any, make_key: Any) -> None:
    key = make_key("events:write")
    batch = [
        behaviour_event("search", properties={"query": "q" * 513}),
        behaviour_event(properties={"product_id": "p", "blob": "x" * 20_000}),
    ]
    r = http.post("/api/v1/events", json={"events": batch}, headers=auth(key))
    rejected = {item["index"]: item["errors"] for item in r.json()["rejected"]}
    assert rejected == {
        0: {"properties.query": [behaviour_events.ERR_TOO_LONG.format(n=512)]},
        1: {"properties": [behaviour_events.ERR_PROPERTIES_TOO_LARGE.format(n=behaviour_events.MAX_PROPERTIES_BYTES)]},
    }
    assert count_events() == 0


def test_missing_invalid_and_wrong_scope_keys(http: Any, make_key: Any) -> None:
    batch = {"events": [behaviour_event()]}
    missing = http.post("/api/v1/events", json=batch)
    invalid = http.post("/api/v1/events", json=batch, headers=auth("adp_nope_nope"))
    wrong_scope = http.post("/api/v1/events", json=batch, headers=auth(make_key("ads:rank")))
    assert (missing.status_code, invalid.status_code, wrong_scope.status_code) == (401, 401, 403)
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert wrong_scope.json()["error"]["code"] == "permission_denied"
    assert count_events() == 0


def test_revoked_key_is_rejected(http: Any, make_key: Any) -> None:
    from adplatform.access import selectors
    from adplatform.access.models import ApiKey
    from adplatform.access.services import api_key_revoke

    key = make_key("events:write")
    api_key_revoke(key_id=ApiKey.objects.get().pk)
    selectors.clear_cache()
    r = http.post("/api/v1/events", json={"events": [behaviour_event()]}, headers=auth(key))
    assert r.status_code == 401


def test_every_accepted_event_is_durable_before_202(http: Any, make_key: Any) -> None:
    # Read through a separate connection right after the response: nothing pending.
    import psycopg
    from django.db import connection

    key = make_key("events:write")
    ids = [str(uuid.uuid4()) for _ in range(50)]
    r = http.post("/api/v1/events", json={"events": [behaviour_event(event_id=i) for i in ids]}, headers=auth(key))
    assert r.json()["accepted"] == 50
    params = connection.get_connection_params()
    for k in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(k, None)
    with psycopg.connect(**params) as other:
        stored = other.execute("SELECT count(*) FROM eventlog_event WHERE event_id = ANY(%s::uuid[])", [ids]).fetchone()
    assert stored == (50,)
