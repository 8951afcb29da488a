"""The serving snapshot /rank decides on, cached per process with explicit staleness
bounds (docs/delivery.md):

- structure — running campaigns, their approved creatives, the creatives' products, a
  category/product index, popularity and serving statistics — reloaded at most every
  DELIVERY_CAMPAIGNS_TTL_SECONDS (a few queries for everything, none per candidate);
- spend and pacing throttles — reloaded every DELIVERY_SPEND_TTL_SECONDS.

Ages are measured on the caller's clock (`at`), so a simulation with an injected clock
refreshes exactly like production does in real time; a clock that goes backwards
reloads. Budgets are enforced exactly at billing (campaigns.budget_charge); the spend
TTL bounds how long an exhausted campaign can still be *selected*."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.conf import settings

from campaigns import selectors as campaigns
from campaigns.selectors import DeliveryCampaign, DeliveryCreative, PlacementInfo
from catalog import selectors as catalog
from catalog.selectors import ProductInfo
from ranking.selectors import CandidateItem

from .exploration import Counts
from .selectors import ServingStats, pacing_states, serving_stats

POPULARITY_PRIOR = (1.0, 50.0)  # Beta prior of the smoothed CTR used by "popular"


@dataclass(frozen=True)
class ServableCreative:
    creative: DeliveryCreative
    campaign_id: int
    product: ProductInfo | None
    categories: frozenset[str]  # every level of the product's category path
    item: CandidateItem  # what the scorer sees


@dataclass
class Structure:
    loaded_at: datetime
    campaigns: dict[int, DeliveryCampaign]
    creatives: dict[int, ServableCreative]
    by_category: dict[str, list[int]]  # most popular first
    by_product: dict[str, list[int]]
    popular: list[int]  # all creatives, most popular (smoothed CTR) first
    new_ids: list[int]  # creatives with fewer than DELIVERY_EXPLORATION_MIN_IMPRESSIONS, by id
    stats: ServingStats
    products: dict[str, ProductInfo]

    def popularity(self, creative_id: int) -> float:
        c = self.stats.by_creative.get(creative_id, Counts())
        return (c.clicks + POPULARITY_PRIOR[0]) / (c.impressions + POPULARITY_PRIOR[0] + POPULARITY_PRIOR[1])

    def is_new(self, creative_id: int) -> bool:
        c = self.stats.by_creative.get(creative_id)
        return c is None or c.impressions < settings.DELIVERY_EXPLORATION_MIN_IMPRESSIONS


@dataclass
class Dynamic:
    loaded_at: datetime
    spend: dict[int, tuple[Decimal, Decimal]]
    throttles: dict[int, float]
    pacing_ticks: dict[int, datetime] = field(default_factory=dict)


@dataclass
class Snapshot:
    structure: Structure
    dynamic: Dynamic

    def spend_of(self, campaign_id: int) -> tuple[Decimal, Decimal]:
        got = self.dynamic.spend.get(campaign_id)
        if got is not None:
            return got
        c = self.structure.campaigns[campaign_id]
        return c.spent_today, c.spent_total

    def throttle_of(self, campaign_id: int) -> float:
        return self.dynamic.throttles.get(campaign_id, 1.0)


def _item(cr: DeliveryCreative, product: ProductInfo | None) -> CandidateItem:
    return CandidateItem(
        creative_id=cr.creative_id,
        campaign_id=cr.campaign_id,
        advertiser_id=cr.advertiser_id,
        product_id=cr.product_id,
        category_path=product.category_path if product else (),
        brand=product.brand if product else None,
        price=float(product.price) if product else None,
        text=f"{cr.headline} {cr.body}".strip(),
    )


def load_structure(at: datetime) -> Structure:
    running = campaigns.delivery_campaigns(at=at)
    product_ids = {cr.product_id for c in running for cr in c.creatives if cr.product_id}
    products = catalog.products_by_id(product_ids) if product_ids else {}
    creatives: dict[int, ServableCreative] = {}
    for c in running:
        for cr in c.creatives:
            product = products.get(cr.product_id) if cr.product_id else None
            creatives[cr.creative_id] = ServableCreative(
                creative=cr,
                campaign_id=c.campaign_id,
                product=product,
                categories=frozenset(product.category_path) if product else frozenset(),
                item=_item(cr, product),
            )
    structure = Structure(
        loaded_at=at,
        campaigns={c.campaign_id: c for c in running},
        creatives=creatives,
        by_category={},
        by_product={},
        popular=[],
        new_ids=[],
        stats=serving_stats(),
        products=products,
    )
    structure.popular = sorted(creatives, key=lambda cid: (-structure.popularity(cid), cid))
    structure.new_ids = sorted(cid for cid in creatives if structure.is_new(cid))
    for cid in structure.popular:
        sc = creatives[cid]
        for cat in sc.categories:
            structure.by_category.setdefault(cat, []).append(cid)
        if sc.creative.product_id:
            structure.by_product.setdefault(sc.creative.product_id, []).append(cid)
    return structure


def load_dynamic(structure: Structure, at: datetime) -> Dynamic:
    spend = campaigns.spend_by_campaign(timezones={cid: c.timezone for cid, c in structure.campaigns.items()}, at=at)
    even = [cid for cid, c in structure.campaigns.items() if c.pacing == "even" and c.daily_budget is not None]
    rows = pacing_states(campaign_ids=even) if even else {}
    today = {cid: campaigns.local_day(at, structure.campaigns[cid].timezone) for cid in even}
    throttles = {cid: r.throttle for cid, r in rows.items() if r.day == today[cid]}
    ticks = {cid: r.tick_at for cid, r in rows.items()}
    return Dynamic(loaded_at=at, spend=spend, throttles=throttles, pacing_ticks=ticks)


_lock = threading.Lock()
_snapshot: Snapshot | None = None


def _stale(loaded_at: datetime, at: datetime, ttl: float) -> bool:
    age = (at - loaded_at).total_seconds()
    return age < 0 or age >= ttl


def snapshot(at: datetime) -> Snapshot:
    """The current snapshot for a decision at `at`, reloading what is older than its TTL."""
    global _snapshot
    snap = _snapshot
    if (
        snap is not None
        and not _stale(snap.structure.loaded_at, at, settings.DELIVERY_CAMPAIGNS_TTL_SECONDS)
        and not _stale(snap.dynamic.loaded_at, at, settings.DELIVERY_SPEND_TTL_SECONDS)
    ):
        return snap
    with _lock:
        snap = _snapshot
        if snap is None or _stale(snap.structure.loaded_at, at, settings.DELIVERY_CAMPAIGNS_TTL_SECONDS):
            structure = load_structure(at)
            snap = Snapshot(structure=structure, dynamic=load_dynamic(structure, at))
        elif _stale(snap.dynamic.loaded_at, at, settings.DELIVERY_SPEND_TTL_SECONDS):
            snap = Snapshot(structure=snap.structure, dynamic=load_dynamic(snap.structure, at))
        _snapshot = snap
        return snap


def refresh_dynamic(at: datetime) -> Snapshot:
    """Re-read spend and throttles now (after this process moved the pacing controller)."""
    global _snapshot
    with _lock:
        assert _snapshot is not None
        _snapshot = Snapshot(structure=_snapshot.structure, dynamic=load_dynamic(_snapshot.structure, at))
        return _snapshot


def clear_cache() -> None:
    global _snapshot, _placements
    with _lock:
        _snapshot = None
        _placements = {}


_placements: dict[str, tuple[datetime, PlacementInfo | None]] = {}


def placement(key: str, at: datetime) -> PlacementInfo | None:
    """placement_get, cached like the campaign structure."""
    hit = _placements.get(key)
    if hit is not None and not _stale(hit[0], at, settings.DELIVERY_CAMPAIGNS_TTL_SECONDS):
        return hit[1]
    info = campaigns.placement_get(key=key)
    if len(_placements) > 1000:
        _placements.clear()
    _placements[key] = (at, info)
    return info
