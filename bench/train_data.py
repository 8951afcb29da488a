"""Generated marketplace history → the log events the training pipeline reads (the same
stored types and data fields the ingestion API and `ad_exposures_import` write), so the
benchmark builds its dataset with ranking.dataset exactly as `manage.py train` does."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marketplace.world import HistoryDay, World, generate_history
from ranking.dataset import Facts, LogEvent
from ranking.selectors import CandidateItem
from ranking.services import exposure_request_id

WIRE_TO_STORED = {
    "page_view": "PageViewed",
    "product_view": "ProductViewed",
    "search": "SearchPerformed",
    "add_to_cart": "CartItemAdded",
    "remove_from_cart": "CartItemRemoved",
    "purchase": "OrderPlaced",
}


def _ts(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def world_catalog(world: World) -> tuple[dict[int, CandidateItem], dict[str, Facts]]:
    """Creative id (index + 1) → candidate item; product facts."""
    products = {p.product_id: Facts(tuple(p.category_path), p.brand, float(p.price)) for p in world.products}
    creatives: dict[int, CandidateItem] = {}
    for ci, c in enumerate(world.creatives):
        p = world.products[int(world.creative_product[ci])]
        camp = int(world.creative_campaign[ci])
        adv = int(world.campaigns[camp].advertiser[1:])
        creatives[ci + 1] = CandidateItem(
            creative_id=ci + 1,
            campaign_id=camp + 1,
            advertiser_id=adv + 1,
            product_id=p.product_id,
            category_path=tuple(p.category_path),
            brand=p.brand,
            price=float(p.price),
            text=f"{c.headline} {c.body}",
        )
    return creatives, products


def history_events(world: World, days: list[HistoryDay]) -> tuple[list[LogEvent], dict[str, Any]]:
    """LogEvents for the days plus, per exposure key, the oracle p_click (for the oracle AUC)."""
    out: list[LogEvent] = []
    oracle: dict[str, Any] = {}
    pos = 0
    for day in days:
        for e in day.events:
            stored = WIRE_TO_STORED.get(e["type"])
            if stored is None:
                continue
            pos += 1
            out.append(LogEvent(stored, _ts(e["timestamp"]), e["user_id"], dict(e["properties"]), {}, pos))
        for x in day.exposures:
            rid = exposure_request_id(x.exposure_key)
            leaf = world.categories[x.context_leaf][1] if x.context_leaf >= 0 else None
            ci = x.creative_idx
            camp = int(world.creative_campaign[ci])
            base = {
                "request_id": rid,
                "creative_id": ci + 1,
                "campaign_id": camp + 1,
                "advertiser_id": int(world.campaigns[camp].advertiser[1:]) + 1,
                "placement": x.placement,
                "position": x.position,
                "page_type": x.page_type,
                "context": {"category_id": leaf} if leaf else {},
            }
            user = world.shoppers[x.user_idx].user_id
            pos += 1
            out.append(LogEvent("AdImpressed", x.at, user, base, {}, pos))
            oracle[rid] = x.p_click
            if x.clicked_at is not None:
                pos += 1
                out.append(LogEvent("AdClicked", x.clicked_at, user, base, {}, pos))
                if x.converted_at is not None:
                    pos += 1
                    out.append(LogEvent("ConversionAttributed", x.converted_at, user, base, {}, pos))
    return out, oracle


def generate(world: World) -> list[HistoryDay]:
    return list(generate_history(world))
