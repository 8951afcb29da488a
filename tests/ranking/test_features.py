"""The shared feature function: what a candidate's features say about profile and context."""

from __future__ import annotations

import numpy as np

from ranking.dataset import ProfileView
from ranking.features import FeatureSpec, encode, encode_parts, request_feature_parts, request_features
from ranking.selectors import CandidateItem, ScoringRequest


def _profile(consent: bool = True) -> ProfileView:
    return ProfileView(
        user_id="u1",
        consent=consent,
        categories={"Shoes": 4.0, "Running": 2.0, "Books": 1.0},
        brands={"Acme": 3.0},
        recent_products=("p1", "p2"),
        devices={"mobile": 3},
        frequency=7,
        recency_days=1.5,
        mean_price=40.0,
    )


def _request(profile: ProfileView | None) -> ScoringRequest:
    return ScoringRequest(
        user_id="u1",
        profile=profile,
        context={"page_type": "category", "category_id": "Running", "hour": 14, "placement": "category_side"},
        candidates=[
            CandidateItem(1, 10, 100, "p3", ("Shoes", "Running"), "Acme", 80.0),
            CandidateItem(2, 20, 200, "p4", ("Books", "Fiction"), "Pulp", 10.0),
        ],
    )


class _Facts:
    def __init__(self, path: tuple[str, ...]) -> None:
        self.category_path, self.brand, self.price = path, "Acme", 30.0


def test_candidate_features_read_interest_price_context_and_sequence() -> None:
    rows = request_features(_request(_profile()), products={"p1": _Facts(("Shoes", "Running"))})
    shoe, book = rows
    assert shoe["cat"] == "Running" and shoe["top"] == "Shoes" and shoe["brand"] == "Acme"
    assert shoe["ctx_match"] == "2" and book["ctx_match"] == "0"
    assert shoe["share_cat"] == 0.5 and shoe["share_top"] == 1.0 and shoe["share_brand"] == 1.0
    assert abs(shoe["price_rel"] - np.log(2.0)) < 1e-12 and shoe["has_price_ref"] == 1.0
    assert shoe["seq_products"] == ["p1", "p2"] and shoe["seq_cats"] == ["Running", ""]
    assert shoe["seq_cat_hits"] == 1 / 20
    assert shoe["device"] == "mobile" and shoe["hour"] == "14" and shoe["position"] == "1"
    assert book["share_cat"] == 0.0 and book["int_brand"] == 0.0


def test_opted_out_shoppers_get_no_personal_features() -> None:
    rows = request_features(_request(_profile(consent=False)))
    assert rows[0]["user"] == "" and rows[0]["seq_products"] == [] and rows[0]["share_cat"] == 0.0
    assert rows[0]["known"] == 0.0 and rows[0]["has_price_ref"] == 0.0


def test_encoding_is_stable_and_shares_codes_between_target_and_sequence() -> None:
    spec = FeatureSpec(buckets=1 << 12)
    rows = request_features(_request(_profile()), products={"p1": _Facts(("Shoes", "Running"))})
    a, b = encode(rows, spec), encode(rows, spec)
    assert np.array_equal(a.sparse, b.sparse) and a.sparse.shape == (2, len(spec.sparse))
    assert a.sparse.min() >= 0 and a.sparse.max() < spec.buckets
    assert a.seq_cats[0, 0] == a.target_cat[0]  # "Running" in the sequence == the candidate's leaf
    assert a.seq_items[0, 2:].tolist() == [0] * 18  # padding


def test_serving_parts_encode_exactly_like_the_training_rows() -> None:
    # given a request with a behaviour sequence, scored the serving way (shared part once)
    spec = FeatureSpec(buckets=1 << 12)
    request = _request(_profile())
    facts = {"p1": _Facts(("Shoes", "Running"))}
    # when
    parts = request_feature_parts(request, products=facts)
    served, trained = encode_parts(parts, spec), encode(request_features(request, products=facts), spec)
    # then the rows training reads back are the served rows, and the arrays are identical
    assert parts.rows() == request_features(request, products=facts)
    assert "seq_products" in parts.shared and "seq_products" not in parts.columns
    again = encode_parts(request_feature_parts(request, products=facts), spec)  # memoised static codes
    for name in ("sparse", "dense", "seq_items", "seq_cats", "target_item", "target_cat"):
        assert np.array_equal(getattr(served, name), getattr(trained, name)), name
        assert np.array_equal(getattr(again, name), getattr(trained, name)), name
    assert served.seq_items[1, :2].tolist() == served.seq_items[0, :2].tolist() != [0, 0]
