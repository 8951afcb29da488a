"""Explanations for `explain=true`: why an ad was shown (reason codes with a readable
detail) and the breakdown of its score and price."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from decimal import Decimal
from typing import Any

from campaigns.selectors import DeliveryCampaign

from . import candidates as src
from .auction import Win

REASON_MATCHED_INTEREST = "matched_interest"
REASON_SIMILAR_TO_VIEWED = "similar_to_viewed_product"
REASON_SEGMENT = "segment"
REASON_EXPLORATION = "exploration"
REASON_CONTEXT = "context_match"
REASON_POPULAR = "popular"
REASON_REQUESTED = "requested_candidate"

_FORMULA = {
    "cpc": "ecpm = bid × p_click × 1000",
    "cpm": "ecpm = bid",
    "cpa": "ecpm = bid × p_conversion × 1000",
}


def reasons(
    *,
    sources: Collection[str],
    categories: Collection[str],
    interests: Mapping[str, float],
    context_categories: Collection[str],
    campaign: DeliveryCampaign,
    segment: str | None,
    segment_name: str | None,
    exploratory: bool,
    distance: float | None,
) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    matched = sorted((c for c in categories if c in interests), key=lambda c: (-interests[c], c))
    if src.SOURCE_INTEREST in sources:
        detail = "close to the shopper's interests"
        if distance is not None:
            detail += f" (cosine similarity {1 - distance:.2f})"
        out.append({"code": REASON_MATCHED_INTEREST, "detail": detail})
    if matched:
        out.append(
            {"code": REASON_MATCHED_INTEREST, "detail": f"interest in {matched[0]} ({interests[matched[0]]:.2f})"}
        )
    if src.SOURCE_VIEWED in sources:
        out.append({"code": REASON_SIMILAR_TO_VIEWED, "detail": "same or similar product to one the shopper viewed"})
    if campaign.targeting.segments and segment is not None:
        out.append({"code": REASON_SEGMENT, "detail": f"targets segment {segment_name or segment}"})
    ctx = sorted(set(categories).intersection(context_categories))
    if src.SOURCE_CONTEXT_PRODUCT in sources:
        out.append({"code": REASON_CONTEXT, "detail": "advertises the product on this page"})
    elif ctx:
        out.append({"code": REASON_CONTEXT, "detail": f"matches the page's category {ctx[-1]}"})
    if src.SOURCE_QUERY in sources:
        out.append({"code": REASON_CONTEXT, "detail": "similar to the search query"})
    if exploratory:
        out.append({"code": REASON_EXPLORATION, "detail": "new creative shown to learn its click rate"})
    if src.SOURCE_REQUESTED in sources:
        out.append({"code": REASON_REQUESTED, "detail": "in the request's candidate list"})
    if not out and src.SOURCE_POPULAR in sources:
        out.append({"code": REASON_POPULAR, "detail": "performs well across shoppers"})
    return out


def breakdown(
    win: Win,
    *,
    model_p_click: float,
    model_p_conversion: float,
    calibration: float,
    floor_cpm: Decimal,
    throttle: float,
) -> dict[str, Any]:
    b = win.bid
    out: dict[str, Any] = {
        "bid_model": b.bid_model,
        "bid": str(b.bid),
        "p_click": model_p_click,
        # the live calibration multiplier already in p_click (ADR 0062; 1.0: none)
        "calibration": round(calibration, 6),
        "p_conversion": model_p_conversion,
        "formula": _FORMULA[b.bid_model],
        "ecpm": round(b.ecpm, 6),
        "value": round(b.value, 6),  # p_conversion × order value × 1000 (ADR 0044)
        # ecpm + λ × value + μ × p_click × 1000 (auto, ADR 0044/0045; baselines: ecpm)
        "rank_score": round(win.score, 6),
        "clearing_ecpm": round(win.clearing_ecpm, 6),
        "floor_cpm": str(floor_cpm),
        "price": str(win.price),
        "pacing_throttle": round(throttle, 4),
        "exploratory": b.exploratory,
    }
    if b.exploratory:
        out["sampled_p_click"] = b.p_click
    return out
