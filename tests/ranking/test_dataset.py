"""Training data is point in time: an example's features are what was known at its
impression (the logged decision features when they exist), labels join within the window."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from catalog.services import ProductInput, products_upsert
from ranking import training
from ranking.dataset import LogEvent, build_examples, time_split
from ranking.events import AD_DECISION_MADE, decision_candidates, pack_f4
from ranking.selectors import CandidateItem

from .conftest import SMALL, Seeded, import_days, seed_world

LAM = math.log(2) / (14 * 86400)
T0 = datetime(2026, 10, 1, 12, tzinfo=UTC)


@pytest.mark.django_db(transaction=True)
def test_future_events_cannot_change_a_past_examples_features() -> None:
    # given the first three days of history in the log, and the examples built from it
    s: Seeded = seed_world(SMALL, days=3)
    before = training.examples_from_log()
    assert len(before) > 500
    # when the later days arrive (behaviour, impressions, clicks) and a product changes
    import_days(s, s.days[3:])
    p = s.world.products[0]
    products_upsert(
        products=[
            ProductInput(
                product_id=p.product_id,
                title="changed",
                category_path=("Other", "Changed"),
                brand="NewBrand",
                price=Decimal("999.00"),
                currency="USD",
                url=p.url,
                image_url=p.image_url,
                in_stock=True,
            )
        ],
        actor="test",
    )
    after = training.examples_from_log()
    # then every earlier example is there with exactly the same features and labels
    assert len(after) > len(before)
    index = {rid: i for i, rid in enumerate(after.request_id)}
    for i, rid in enumerate(before.request_id):
        j = index[rid]
        assert after.features[j] == before.features[i]
        assert after.click[j] == before.click[i]
    # and the later data did add behaviour the new examples see
    assert max(after.at) > max(before.at)


def _ev(type_: str, at: datetime, data: dict, user: str = "u1", pos: int = 0) -> LogEvent:
    return LogEvent(type_, at, user, data, {}, pos)


def _item(cid: int) -> CandidateItem:
    return CandidateItem(cid, 1, 1, f"p{cid}", ("Shoes", "Running"), "Acme", 50.0)


def test_features_use_only_behaviour_before_the_impression_and_logged_decisions_win() -> None:
    imp = {
        "request_id": "r1",
        "creative_id": 1,
        "campaign_id": 1,
        "advertiser_id": 1,
        "placement": "home_top",
        "position": 2,
        "page_type": "home",
    }
    logged = {"creative": "1", "cat": "Running", "position": "1", "user": "u1", "page_type": "home"}
    events = [
        _ev("ProductViewed", T0 - timedelta(minutes=5), {"product_id": "p1"}, pos=1),
        _ev("AdImpressed", T0, imp, pos=2),
        # committed before the impression's position but happened after it
        _ev("ProductViewed", T0 + timedelta(seconds=30), {"product_id": "p9"}, pos=0),
        _ev("AdClicked", T0 + timedelta(seconds=40), imp, pos=3),
        _ev(
            "AdDecisionMade",
            T0 + timedelta(seconds=50),
            AD_DECISION_MADE.upcast({"request_id": "r2", "candidates": [{"creative_id": 1, "features": logged}]}, 1),
            pos=4,
        ),
        _ev("AdImpressed", T0 + timedelta(seconds=51), {**imp, "request_id": "r2", "position": 3}, pos=5),
        _ev("AdClicked", T0 + timedelta(hours=3), {**imp, "request_id": "r2"}, pos=6),  # outside the window
        _ev("PageViewed", T0 + timedelta(hours=5), {"url": "/"}, pos=7),
    ]
    ex = build_examples(events, creatives={1: _item(1)}, lam=LAM, click_window_seconds=3600)
    assert ex.request_id == ["r1", "r2"]
    first, second = ex.features
    assert first["seq_products"] == ["p1"]  # p9 (30 s later) is not visible
    assert first["position"] == "2" and first["cat"] == "Running" and first["user"] == "u1"
    assert second == {**logged, "position": "3"}
    assert ex.logged.tolist() == [False, True]
    assert ex.click.tolist() == [1.0, 0.0]


def test_time_split_orders_train_validation_test_without_shared_timestamps() -> None:
    at = np.repeat(np.arange(20, dtype=np.float64), 5)
    split = time_split(at, validation=0.2, test=0.2)
    assert at[split.train].max() < at[split.validation].min()
    assert at[split.validation].max() < at[split.test].min()
    assert len(split.train) + len(split.validation) + len(split.test) == len(at)
    assert (len(split.train), len(split.validation), len(split.test)) == (60, 20, 20)


def test_a_decision_logs_shared_features_once_and_training_rows_merge_them() -> None:
    # given a decision that logged the shared features once (v2, as stored then, lifted to
    # columns by the upcaster) and one that logged whole rows per candidate (v1)
    shared = {"user": "u1", "page_type": "home", "seq_products": ["p1"], "position": "1"}
    own = {"creative": "1", "cat": "Running"}
    v1 = AD_DECISION_MADE.upcast({"request_id": "r1", "candidates": [{"creative_id": 1, "features": own}]}, 1)
    v2 = AD_DECISION_MADE.upcast(
        {"request_id": "r2", "features_shared": shared, "candidates": [{"creative_id": 1, "features": own}]}, 2
    )
    imp = {"creative_id": 1, "campaign_id": 1, "advertiser_id": 1, "placement": "home_top", "position": 2}
    events = [
        _ev("AdDecisionMade", T0, v1, pos=1),
        _ev("AdImpressed", T0 + timedelta(seconds=1), {**imp, "request_id": "r1"}, pos=2),
        _ev("AdDecisionMade", T0 + timedelta(seconds=2), v2, pos=3),
        _ev("AdImpressed", T0 + timedelta(seconds=3), {**imp, "request_id": "r2"}, pos=4),
        _ev("PageViewed", T0 + timedelta(hours=5), {"url": "/"}, pos=5),
    ]
    # when
    ex = build_examples(events, creatives={1: _item(1)}, lam=LAM, click_window_seconds=3600)
    # then each example is the candidate's row as served, at its impression's position
    assert v1["features_shared"] == {} and v2["candidates"]["features"] == {"creative": ["1"], "cat": ["Running"]}
    assert ex.features == [{**own, "position": "2"}, {**shared, **own, "position": "2"}]
    assert ex.logged.tolist() == [True, True]


def test_packed_float_columns_read_as_the_plain_columns_did() -> None:
    # given the same decision logged with plain float columns (v3) and packed (v4)
    own = {"creative": ["1", "2"], "cat": ["Running", None]}
    plain = {**own, "price_log": [0.1, 2.5], "ann_distance": [None, 0.25]}
    packed = {
        **own,
        "price_log": pack_f4(np.array([0.1, 2.5], dtype=np.float32)),
        "ann_distance": pack_f4(np.array([np.nan, 0.25], dtype=np.float32)),
    }
    shared = {"user": "u1"}
    v3 = {"request_id": "r3", "features_shared": shared,
          "candidates": {"creative_id": [1, 2], "features": plain, "scores": {"p_click": [0.02, 0.5]}}}  # fmt: skip
    v4 = {"request_id": "r4", "features_shared": shared,
          "candidates": {"creative_id": [1, 2], "features": packed, "scores": {"p_click": pack_f4([0.02, 0.5])}},
          }  # fmt: skip
    # then the stored packed value is one base64 string per column
    assert set(v4["candidates"]["scores"]["p_click"]) == {"f4"}
    # and both read back as the same candidates (shortest float32 decimals, NaN as null)
    upcast = AD_DECISION_MADE.upcast(v3, 3)
    assert decision_candidates(upcast) == decision_candidates(v4)
    first = {"creative": "1", "cat": "Running", "price_log": 0.1}
    assert decision_candidates(v4)[0] == {"creative_id": 1, "features": first, "scores": {"p_click": 0.02}}
    # and training rows are the same
    imp = {"creative_id": 2, "campaign_id": 1, "advertiser_id": 1, "placement": "home_top", "position": 1}

    def training_row(d: dict[str, Any]) -> dict[str, Any]:
        events = [
            _ev("AdDecisionMade", T0, d, pos=1),
            _ev("AdImpressed", T0 + timedelta(seconds=1), {**imp, "request_id": d["request_id"]}, pos=2),
            _ev("PageViewed", T0 + timedelta(hours=5), {"url": "/"}, pos=3),
        ]
        [row] = build_examples(events, creatives={2: _item(2)}, lam=LAM, click_window_seconds=3600).features
        return row

    second = {"user": "u1", "creative": "2", "price_log": 2.5, "ann_distance": 0.25, "position": "1"}
    assert training_row(v3) == training_row(v4) == second
    # a value float32 cannot hold exactly reaches the model as the same float32 either way
    v3["candidates"]["features"]["price_log"] = [0.1, 0.1]
    v4["candidates"]["features"]["price_log"] = pack_f4([0.1, 0.1])
    got = [np.float32(training_row(d)["price_log"]) for d in (v3, v4)]
    assert got[0] == got[1] == np.float32(0.1)


@pytest.mark.django_db(transaction=True)  # the log is read up to its committed head
def test_training_keeps_only_decisions_something_was_shown_from(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db import transaction

    from adplatform.eventlog.services import NewEvent, append_events

    def decision(rid: str) -> NewEvent:
        cols = {"creative_id": [1], "features": {"creative": ["1"], "price_log": pack_f4([0.5])}}
        data = {"request_id": rid, "features_shared": {"user": "u1"}, "candidates": cols}
        return NewEvent(type="AdDecisionMade", stream=f"decision:{rid}", data=data, occurred_at=T0, user_key="u1")

    imp = {"request_id": "shown", "creative_id": 1, "campaign_id": 1, "advertiser_id": 1, "placement": "home_top",
           "position": 1}  # fmt: skip
    with transaction.atomic():
        append_events([
            decision("shown"), decision("never-shown"),
            NewEvent(type="AdImpressed", stream="decision:shown", data=imp, occurred_at=T0 + timedelta(seconds=1),
                     user_key="u1"),
            NewEvent(type="PageViewed", stream="user:u1", data={"url": "/"}, occurred_at=T0 + timedelta(hours=5),
                     user_key="u1"),
        ])  # fmt: skip
    passed: list[Any] = []
    real = training.build_examples

    def spy(events: list[Any], **kw: Any) -> Any:
        passed.extend(events)
        return real(events, **kw)

    monkeypatch.setattr(training, "build_examples", spy)
    monkeypatch.setattr(training, "creative_items", lambda: {1: _item(1)})
    ex = training.examples_from_log()
    # the never-shown decision is not held; the shown one's logged features are the example's
    assert [e.stream for e in passed if e.type == "AdDecisionMade"] == ["decision:shown"]
    assert ex.request_id == ["shown"] and ex.logged.tolist() == [True]
    assert ex.features[0] == {"user": "u1", "creative": "1", "price_log": 0.5, "position": "1"}
