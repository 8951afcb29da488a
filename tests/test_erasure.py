"""DELETE /api/v1/users/<id>: afterwards no personal data of that shopper is readable in
any table, the log stays replayable, and aggregates (product counters) are unchanged."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from adplatform.eventlog import events as event_types
from adplatform.eventlog import projections
from adplatform.eventlog.models import Event
from adplatform.eventlog.projections import Projection
from behaviour.models import ProductActivity, UserActivity

from .conftest import auth, behaviour_event

pytestmark = pytest.mark.django_db(transaction=True)

VICTIM = "erase-me-7f3a91"


def _tables_mentioning(needle: str) -> dict[str, int]:
    """Every table in the schema whose rows, rendered as text, contain `needle`."""
    found = {}
    with connection.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        for (table,) in cur.fetchall():
            cur.execute(f'SELECT count(*) FROM "{table}" t WHERE t::text LIKE %s', [f"%{needle}%"])
            n = cur.fetchone()[0]
            if n:
                found[table] = n
    return found


def _seed(http: Any, key: str) -> None:
    batch = [
        behaviour_event("search", user_id=VICTIM, properties={"query": "secret-query-xyz"}, session_id="sess-victim"),
        behaviour_event("page_view", user_id=VICTIM, properties={"url": "https://shop/account?email=v@x"}),
        behaviour_event("product_view", user_id=VICTIM, properties={"product_id": "sku-9"}),
        behaviour_event(
            "purchase",
            user_id=VICTIM,
            properties={
                "order_id": "order-victim-1",
                "items": [{"product_id": "sku-9", "quantity": 1, "price": "10"}],
                "revenue": "10",
                "currency": "EUR",
                "shipping_name": "Jane Victim",
            },
        ),
        behaviour_event("product_view", user_id="bystander", properties={"product_id": "sku-9"}),
    ]
    assert http.post("/api/v1/events", json={"events": batch}, headers=auth(key)).json()["accepted"] == 5


def _seed_profiles_vectors_and_segments() -> None:
    """Shopper vectors (learned and content) and a segment membership for both shoppers."""
    from profiles import services as profile_services
    from profiles import vectors

    for kind in ("user_learned", "user_content"):
        vectors.version_register(kind=kind, version="erasure-test", dim=4)
        vectors.vectors_write(
            kind=kind, version="erasure-test", rows=[(VICTIM, [1, 0, 0, 0], ""), ("bystander", [0, 1, 0, 0], "")]
        )
    profile_services.segments_recompute(k=1)


def test_erasure_removes_personal_data_everywhere_and_keeps_aggregates(http: Any, make_key: Any) -> None:
    # given a shopper with history, applied by the projections
    _seed(http, make_key("events:write"))
    projections.catch_up_all()
    _seed_profiles_vectors_and_segments()
    assert set(_tables_mentioning(VICTIM)) >= {"profiles_profile", "profiles_embedding", "profiles_segment_membership"}
    products_before = list(ProductActivity.objects.values())
    # when the shop erases them
    r = http.delete(f"/api/v1/users/{VICTIM}", headers=auth(make_key("users:erase")))
    assert r.status_code == 200 and r.json()["events_redacted"] == 4
    projections.catch_up_all()
    # then no table holds their id or their free text
    assert _tables_mentioning(VICTIM) == {}
    for secret in ("secret-query-xyz", "email=v@x", "order-victim-1", "Jane Victim", "sess-victim"):
        assert _tables_mentioning(secret) == {}, secret
    assert not UserActivity.objects.filter(user_key=VICTIM).exists()
    assert UserActivity.objects.filter(user_key="bystander").exists()
    # and business facts survive, so a replay from zero gives the same aggregates
    assert list(ProductActivity.objects.values()) == products_before
    for projection in projections.registry().values():
        projections.rebuild(projection)
    assert list(ProductActivity.objects.values()) == products_before
    assert _tables_mentioning(VICTIM) == {}
    assert Event.objects.filter(type="UserErased").count() == 1


def test_erasure_is_idempotent_and_needs_the_scope(http: Any, make_key: Any) -> None:
    _seed(http, make_key("events:write"))
    denied = http.delete(f"/api/v1/users/{VICTIM}", headers=auth(make_key("events:write")))
    assert denied.status_code == 403
    assert Event.objects.filter(user_key=VICTIM).count() == 4
    eraser = make_key("users:erase")
    assert http.delete(f"/api/v1/users/{VICTIM}", headers=auth(eraser)).json()["events_redacted"] == 4
    assert http.delete(f"/api/v1/users/{VICTIM}", headers=auth(eraser)).json()["events_redacted"] == 0


def test_every_projection_reading_personal_events_implements_forget_user() -> None:
    personal = {name for name, et in event_types.all_types().items() if et.personal}
    for projection in projections.registry().values():
        reads_personal = projection.event_types is None or bool(set(projection.event_types) & personal)
        if reads_personal:
            assert type(projection).forget_user is not Projection.forget_user, projection.name
