"""Retrieval training data: point in time (no leakage), consent, sessions, and the
hand-computed co-visitation case."""

from __future__ import annotations

import types
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from ranking.retrieval.covisitation import covisitation_fit
from ranking.retrieval.dataset import (
    FEATURE_FIELDS,
    CatalogItem,
    Interaction,
    build_dataset,
    interactions_from_events,
    sessions_of,
    shopper_features,
)

T0 = datetime(2026, 10, 1, tzinfo=UTC)
CATALOG = {
    "a": CatalogItem("a", ("Sports", "Tents"), "Trek", 200.0),
    "b": CatalogItem("b", ("Sports", "Boots"), "Trek", 120.0),
    "c": CatalogItem("c", ("Home", "Mugs"), "Cozy", 10.0),
    "d": CatalogItem("d", ("Home", "Pans"), "Chefmate", 40.0),
}


def stored(type_: str, user: str, at: datetime, session: str = "", consent: bool = True, **data: Any) -> Any:
    meta: dict[str, Any] = {"session_id": session} if session else {}
    if not consent:
        meta["consent"] = False
    return types.SimpleNamespace(type=type_, user_key=user, occurred_at=at, data=data, meta=meta)


def x(user: str, pid: str, minutes: float, session: str) -> Interaction:
    return Interaction(user, pid, (T0 + timedelta(minutes=minutes)).timestamp(), 0, session, "unknown", int(minutes))


def test_interactions_keep_product_events_in_time_order_without_opted_out_events() -> None:
    # given views, a cart add, a two-line order, a page view and an opted-out view
    events = [
        stored("OrderPlaced", "u1", T0 + timedelta(minutes=3), items=[{"product_id": "a"}, {"product_id": "b"}]),
        stored("ProductViewed", "u1", T0, product_id="a"),
        stored("CartItemAdded", "u1", T0 + timedelta(minutes=1), product_id="a", quantity=1, price="1"),
        stored("PageViewed", "u1", T0, url="https://shop/"),
        stored("ProductViewed", "u2", T0, consent=False, product_id="c"),
    ]
    # when they become interactions
    got = interactions_from_events(events)
    # then: time order, one per order line, kinds view/cart/purchase, opted-out left out
    assert [(i.user_id, i.product_id, i.kind) for i in got] == [
        ("u1", "a", 0),
        ("u1", "a", 1),
        ("u1", "a", 2),
        ("u1", "b", 2),
    ]


def test_sessions_split_by_session_id_or_a_30_minute_gap() -> None:
    xs = [x("u", "a", 0, ""), x("u", "b", 10, ""), x("u", "c", 45, ""), x("v", "a", 1, "s1"), x("v", "b", 2, "s2")]
    got = [[i.product_id for i in s] for s in sessions_of(sorted(xs, key=lambda i: i.at))]
    assert got == [["a", "b"], ["a"], ["b"], ["c"]]


def _features_row(f: Any, i: int) -> list[Any]:
    return [getattr(f, name)[i].tolist() for name in FEATURE_FIELDS]


def test_a_future_event_cannot_change_a_past_example_or_query() -> None:
    # given a shopper's history with a split after the first session
    base = [x("u", "a", 0, "s1"), x("u", "b", 1, "s1"), x("u", "c", 100, "s2"), x("u", "d", 101, "s2")]
    split = (T0 + timedelta(minutes=50)).timestamp()
    before = build_dataset(base, CATALOG, split_at=split)
    # when events are added after the query time (in the same session and later)
    later = [*base, x("u", "a", 102, "s2"), x("u", "c", 300, "s3")]
    after = build_dataset(later, CATALOG, split_at=split)
    # then the training examples and the first query's features are unchanged
    assert len(before.train_targets) == len(after.train_targets) == 2
    assert [_features_row(before.train_features, i) for i in range(2)] == [
        _features_row(after.train_features, i) for i in range(2)
    ]
    assert before.queries[0].at == after.queries[0].at
    assert _features_row(before.query_features, 0) == _features_row(after.query_features, 0)
    # and they equal the features folded from the events strictly before the query only
    q = before.queries[0]
    direct = shopper_features(base[:2], CATALOG, before.vocab, at=q.at)["u"]
    assert _features_row(direct, 0) == _features_row(before.query_features, 0)
    # and the query holds the session's products (relevant) and earlier products (recent)
    assert (q.relevant, q.recent, q.history) == (("c", "d"), ("b", "a"), 2)
    # and the sequence of the query knows only a and b (newest first), nothing of c/d
    idx = before.vocab.item_index
    assert before.query_features.seq_items[0, :3].tolist() == [idx["b"], idx["a"], 0]
    # and the new session in the extended data is a second query
    assert [qq.relevant for qq in after.queries] == [("c", "d", "a"), ("c",)]


def test_first_training_example_has_no_history() -> None:
    ds = build_dataset([x("u", "a", 0, "s1"), x("u", "b", 1, "s1")], CATALOG, split_at=1e12)
    assert ds.train_features.history.tolist() == [0, 1]
    assert ds.train_features.seq_items[0].sum() == 0
    assert float(ds.train_features.cat_w[1].sum()) == np.float32(1.0)


def test_covisitation_hand_computed() -> None:
    # given three sessions: {a, b, c}, {a, b}, {b, d}
    xs = sorted(
        [
            x("u", "a", 0, "s1"),
            x("u", "b", 1, "s1"),
            x("u", "c", 2, "s1"),
            x("u", "a", 3, "s1"),  # a repeat inside a session counts once
            x("v", "a", 0, "s2"),
            x("v", "b", 1, "s2"),
            x("w", "b", 0, "s3"),
            x("w", "d", 1, "s3"),
        ],
        key=lambda i: (i.at, i.seq),
    )
    # when co-visitation is fitted
    cv = covisitation_fit(xs)
    # then weights are c(a,b) / sqrt(n(a) n(b)): n(a)=2, n(b)=3, n(c)=1, n(d)=1
    nb = dict(cv.neighbours["a"])
    assert nb["b"] == 2 / np.sqrt(2 * 3)
    assert nb["c"] == 1 / np.sqrt(2 * 1)
    assert "d" not in nb
    assert dict(cv.neighbours["b"])["d"] == 1 / np.sqrt(3 * 1)
    # and a shopper's candidates sum their recent items' neighbours (newest weight 1, then 0.7)
    # recent = [d, a]: b = 1/sqrt(3) + 0.7 * 2/sqrt(6), c = 0.7 / sqrt(2)
    assert cv.recommend(["d", "a"], 3) == ["b", "c", "a"]  # a: popularity top-up (a and b 3 each, ties by id)
    assert cv.popular == ("a", "b", "c", "d")


def test_windowed_covisitation_spans_sessions_and_scores_recent_items() -> None:
    # given one shopper: a (0 min), b (2 days later), c (9.5 days later), in three sessions
    xs = [x("u", "a", 0, "s1"), x("u", "b", 2 * 1440, "s2"), x("u", "c", 9.5 * 1440, "s3"), x("v", "a", 0, "s4")]
    # when co-visitation uses a 7-day window with recent items scored themselves
    cv = covisitation_fit(xs, window_seconds=7 * 86400, self_weight=1.0)
    # then a-b co-occur across sessions (c is 7.5 days after b: outside), n(a)=2 shoppers
    assert dict(cv.neighbours["a"]) == {"b": 1 / np.sqrt(2 * 1)}
    assert "c" not in cv.neighbours
    # and recent items (a newest) score themselves plus neighbours:
    # a = 1 + 0.7/sqrt(2) = 1.495, b = 0.7 + 1/sqrt(2) = 1.407; with b newest the order flips
    assert cv.recommend(["a", "b"], 2) == ["a", "b"]
    assert cv.recommend(["b", "a"], 2) == ["b", "a"]


def test_session_targets_add_the_session_start_features_for_continuing_items() -> None:
    ds = build_dataset([x("u", "a", 0, "s1"), x("u", "b", 1, "s1")], CATALOG, split_at=1e12, session_targets=True)
    # b is a target twice: after a (history 1) and from the session's start (history 0)
    assert ds.train_features.history.tolist() == [0, 1, 0]
    idx = ds.vocab.item_index
    assert ds.train_targets.tolist() == [idx["a"], idx["b"], idx["b"]]
