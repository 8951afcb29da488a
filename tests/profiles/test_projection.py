"""The profile projection: exact time decay, late events, duplicates, consent, cart,
replay-from-zero == live."""

from __future__ import annotations

import math
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adplatform.eventlog import projections
from profiles.models import Profile
from profiles.selectors import profile_get

from .conftest import apply_profiles, ev, ingest, product, seed_catalog

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
NOW = T0 + timedelta(days=30)
DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
def _catalog(settings: Any) -> None:
    settings.PROFILES_HALF_LIFE_DAYS = 14.0
    seed_catalog(
        product("tent-1", ["Sports", "Outdoor", "Tents"], "Trek", "200"),
        product("shoe-1", ["Sports", "Running"], "Swift", "80"),
        product("mug-1", ["Home", "Kitchen"], "Cozy", "10"),
    )


def test_interest_scores_decay_exactly_along_the_category_path() -> None:
    # given a view of a tent at T0 and an add-to-cart of it 7 days later (half-life 14 days)
    ingest(
        ev("product_view", T0, product_id="tent-1"),
        ev("add_to_cart", T0 + 7 * DAY, product_id="tent-1", quantity=1, price="200"),
        now=NOW,
    )
    apply_profiles()
    # when the profile is read 14 days after the first event
    p = profile_get(user_id="u-1", as_of=T0 + 14 * DAY)
    # then every level of the path scores 1·2^(-14/14) + 3·2^(-7/14)
    assert p is not None
    expected = 1 * 0.5 + 3 * 2 ** (-0.5)
    assert p.categories == pytest.approx({"Sports": expected, "Outdoor": expected, "Tents": expected}, rel=1e-12)
    assert p.brands == pytest.approx({"Trek": expected}, rel=1e-12)
    assert p.cart == ("tent-1",)
    assert p.frequency == 2 and p.recency_days == pytest.approx(7.0)
    # and a read 14 days later halves every score
    later = profile_get(user_id="u-1", as_of=T0 + 28 * DAY)
    assert later is not None and later.categories["Tents"] == pytest.approx(expected / 2, rel=1e-12)


def test_late_event_lands_in_its_place_in_time() -> None:
    # given the newer event is applied first
    ingest(ev("product_view", T0 + 10 * DAY, product_id="shoe-1"), now=NOW)
    apply_profiles()
    # when an older event for another product arrives late
    ingest(ev("product_view", T0, product_id="tent-1"), now=NOW)
    apply_profiles()
    # then it is decayed from its own time, and recency lists keep time order
    p = profile_get(user_id="u-1", as_of=T0 + 10 * DAY)
    assert p is not None
    assert p.categories["Running"] == pytest.approx(1.0, rel=1e-12)
    assert p.categories["Tents"] == pytest.approx(2 ** (-10 / 14), rel=1e-12)
    assert p.categories["Sports"] == pytest.approx(1.0 + 2 ** (-10 / 14), rel=1e-12)
    assert p.recent_products == ("shoe-1", "tent-1")
    assert p.last_event_at == T0 + 10 * DAY
    # and a late cart removal older than the add does not empty the cart
    ingest(ev("add_to_cart", T0 + 5 * DAY, product_id="mug-1", quantity=1, price="10"), now=NOW)
    ingest(ev("remove_from_cart", T0 + 4 * DAY, product_id="mug-1"), now=NOW)
    apply_profiles()
    p = profile_get(user_id="u-1", as_of=T0 + 10 * DAY)
    assert p is not None and p.cart == ("mug-1",)


def test_duplicate_events_change_nothing() -> None:
    batch = [
        ev("product_view", T0, product_id="tent-1"),
        ev("search", T0 + DAY, query="  Two Person  TENT "),
        ev(
            "purchase",
            T0 + 2 * DAY,
            order_id="o-1",
            items=[{"product_id": "tent-1", "quantity": 1, "price": "200"}],
            revenue="200",
            currency="EUR",
        ),
    ]
    ingest(*batch, now=NOW)
    apply_profiles()
    before = list(Profile.objects.values())
    # when the same events are sent again (same event ids), also after being applied
    ingest(*batch, now=NOW)
    ingest(*reversed(batch), now=NOW)
    apply_profiles()
    # then the profile row is unchanged
    assert list(Profile.objects.values()) == before
    p = profile_get(user_id="u-1", as_of=T0 + 2 * DAY)
    assert p is not None
    assert (p.frequency, p.orders, p.monetary, p.recent_queries) == (3, 1, 200.0, ("two person tent",))


def test_events_without_consent_are_not_used_and_opt_out_hides_the_profile() -> None:
    # given a consenting view and an opted-out view of another product
    ingest(
        ev("product_view", T0, product_id="tent-1"),
        ev("product_view", T0 + DAY, product_id="shoe-1", consent=False),
        now=NOW,
    )
    apply_profiles()
    # then the shopper's newest signal is an opt-out: a non-personalised snapshot
    p = profile_get(user_id="u-1", as_of=T0 + 2 * DAY)
    assert p is not None
    assert (p.consent, p.categories, p.recent_products, p.frequency) == (False, {}, (), 0)
    # when they consent again later
    ingest(ev("search", T0 + 2 * DAY, query="mug"), now=NOW)
    apply_profiles()
    # then only consenting events are in the profile: the opted-out view never counted
    p = profile_get(user_id="u-1", as_of=T0 + 2 * DAY)
    assert p is not None and p.consent is True
    assert set(p.categories) == {"Sports", "Outdoor", "Tents"}
    assert (p.recent_products, p.frequency) == (("tent-1",), 2)
    # and a shopper who only ever opted out has nothing personal stored
    ingest(ev("product_view", T0, user="ghost", product_id="tent-1", consent=False), now=NOW)
    apply_profiles()
    row = Profile.objects.get(user_key="ghost")
    assert (row.consent, row.categories, row.frequency, row.recent_products) == (False, {}, 0, [])


def test_point_in_time_read_folds_the_log_up_to_as_of() -> None:
    ingest(
        ev("product_view", T0, product_id="tent-1"),
        ev("product_view", T0 + 5 * DAY, product_id="shoe-1"),
        now=NOW,
    )
    apply_profiles()
    p = profile_get(user_id="u-1", as_of=T0 + DAY)
    assert p is not None
    assert p.recent_products == ("tent-1",)
    assert p.categories == pytest.approx({"Sports": 2 ** (-1 / 14), "Outdoor": 2 ** (-1 / 14), "Tents": 2 ** (-1 / 14)})
    assert profile_get(user_id="u-1", as_of=T0 - DAY) is None
    assert profile_get(user_id="nobody") is None


def _random_stream(rng: random.Random, n: int) -> list[dict[str, Any]]:
    out = []
    pids = ["tent-1", "shoe-1", "mug-1", "unknown-9"]
    for _ in range(n):
        at = T0 + timedelta(seconds=rng.randrange(20 * 86400))  # out of order
        pid = rng.choice(pids)
        kind = rng.choice(["product_view", "product_view", "search", "add_to_cart", "remove_from_cart", "purchase"])
        props: dict[str, Any] = {
            "product_view": {"product_id": pid, "device": rng.choice(["mobile", "desktop"])},
            "search": {"query": rng.choice(["tent", "shoes", "mug"])},
            "add_to_cart": {"product_id": pid, "quantity": 1, "price": "12.5"},
            "remove_from_cart": {"product_id": pid},
            "purchase": {
                "order_id": str(uuid.uuid4()),
                "items": [{"product_id": pid, "quantity": 1, "price": "30"}],
                "revenue": "30",
                "currency": "EUR",
            },
        }[kind]
        if rng.random() < 0.1:
            props["consent"] = False
        out.append(ev(kind, at, user=f"u-{rng.randrange(12)}", **props))
    return out


def _rows() -> list[dict[str, Any]]:
    rows = list(Profile.objects.order_by("user_key").values())
    for r in rows:
        r.pop("updated_at")
    return rows


def _assert_same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    assert [r["user_key"] for r in a] == [r["user_key"] for r in b]
    for x, y in zip(a, b, strict=True):
        for key, value in x.items():
            if isinstance(value, dict) and key in ("categories", "brands", "products"):
                assert y[key] == pytest.approx(value, rel=1e-9), key
            elif isinstance(value, float):
                assert y[key] == pytest.approx(value, rel=1e-9), key
            else:
                assert y[key] == value, key


def test_replay_from_zero_equals_live() -> None:
    # given a random out-of-order stream ingested in batches, with duplicates re-sent and
    # the projection running between batches
    rng = random.Random(11)
    stream = _random_stream(rng, 400)
    projection = projections.get_projection("profiles")
    for start in range(0, len(stream), 40):
        ingest(*stream[start : start + 40], now=NOW)
        if rng.random() < 0.3:
            ingest(*rng.sample(stream[: start + 40], 20), now=NOW)
        if rng.random() < 0.5:
            projections.catch_up(projection)
    projections.catch_up(projection)
    live = _rows()
    # when rebuilt from zero in one pass
    projections.rebuild(projection)
    # then the rows are the same (floats up to summation order)
    _assert_same(live, _rows())
    consenting = [e for e in stream if "consent" not in e]
    assert sum(r["frequency"] for r in live) == len(consenting)
    assert not any(math.isnan(v) for r in live for v in r["categories"].values())
