"""The serving snapshot /rank decides on, cached per process with explicit staleness
bounds (docs/delivery.md):

- structure — running campaigns, their approved creatives, the creatives' products, a
  category/product index, popularity and serving statistics — reloaded every
  DELIVERY_CAMPAIGNS_TTL_SECONDS, and sooner when `campaigns.delivery_fingerprint` moves
  (checked every DELIVERY_SPEND_TTL_SECONDS × 5); the reload runs in a background thread
  while requests keep the previous structure (synchronously only when none exists or it
  is twice its TTL old, e.g. with a TTL of 0 in tests);
- spend and pacing throttles — reloaded every DELIVERY_SPEND_TTL_SECONDS, together with
  the per-context cache of the time/spend/placement/device/geo rules.

Ages are measured on the caller's clock (`at`), so a simulation with an injected clock
refreshes exactly like production does in real time; a clock that goes backwards
reloads. Budgets are enforced exactly at billing (campaigns.budget_charge); the spend
TTL bounds how long an exhausted campaign can still be *selected*."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings

from campaigns import selectors as campaigns
from campaigns.selectors import DeliveryCampaign, DeliveryCreative, PlacementInfo
from catalog import selectors as catalog
from catalog.selectors import ProductInfo
from ranking import selectors as ranking
from ranking.selectors import CandidateItem

from .exploration import Counts
from .selectors import ServingStats, pacing_states, serving_stats

logger = logging.getLogger(__name__)

POPULARITY_PRIOR = (1.0, 50.0)  # Beta prior of the smoothed CTR used by "popular"
PRODUCTS_RELOAD = 30  # structure reloads between full reads of the creatives' products
FINGERPRINT_EVERY = 5  # spend reloads between fingerprint checks


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
    by_campaign: dict[int, tuple[int, ...]]  # servable creative ids per campaign
    fingerprint: tuple[Any, ...]
    popular: list[int]  # all creatives, most popular (smoothed CTR) first
    new_ids: list[int]  # creatives with fewer than DELIVERY_EXPLORATION_MIN_IMPRESSIONS, by id
    stats: ServingStats
    products: dict[str, ProductInfo]
    product_loads: int = 0  # structure reloads since the products were fully read
    # (placement, page_type, device, geo) → the campaigns passing the placement rules by what
    # is left to check, and {id: reason} of the others: services._static_plan, filled lazily
    targeting: dict[tuple[str, str, str | None, str | None], Any] = field(default_factory=dict)
    # campaigns with frequency caps, by id: their longest cap window, seconds
    cap_windows: dict[int, int] = field(default_factory=dict)

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
    # (placement, page_type, device, geo) → the campaign pass (services._StaticPlan), filled lazily
    static: dict[tuple[str, str, str | None, str | None], Any] = field(default_factory=dict)
    # {id: reason} of the campaigns out by schedule, daypart or budget (services._static_plan)
    timed_out: dict[int, str] | None = None
    # the even campaigns' pacing ticks: (any missing, earliest, latest) (services._pacing_due)
    tick_range: tuple[bool, datetime | None, datetime | None] | None = None


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


def load_structure(at: datetime, previous: Structure | None = None) -> Structure:
    fingerprint = campaigns.delivery_fingerprint()
    running = campaigns.delivery_campaigns(at=at)
    product_ids = {cr.product_id for c in running for cr in c.creatives if cr.product_id}
    # product facts are reused from the previous structure (title/price edits show with
    # the next full product reload, every PRODUCTS_RELOAD reloads)
    known = previous.products if previous is not None and previous.product_loads < PRODUCTS_RELOAD else {}
    missing = product_ids.difference(known)
    products = {pid: known[pid] for pid in product_ids if pid in known}
    if missing:
        products.update(catalog.products_by_id(missing))
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
        by_campaign={c.campaign_id: tuple(cr.creative_id for cr in c.creatives) for c in running},
        fingerprint=fingerprint,
        popular=[],
        new_ids=[],
        # a new champion between reloads serves uncalibrated until the next one: it has
        # no tracked impressions of its own yet
        stats=serving_stats(model_version=ranking.champion_name()),
        products=products,
        product_loads=0 if not known else previous.product_loads + 1 if previous else 0,
        cap_windows={
            c.campaign_id: max(cap.window_seconds for cap in c.frequency_caps)
            for c in sorted(running, key=lambda c: c.campaign_id)
            if c.frequency_caps
        },
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
    # one local day per time zone, not per campaign (zoneinfo arithmetic, ~4 µs each)
    days = {tz: campaigns.local_day(at, tz) for tz in {structure.campaigns[cid].timezone for cid in even}}
    throttles = {cid: r.throttle for cid, r in rows.items() if r.day == days[structure.campaigns[cid].timezone]}
    ticks = {cid: r.tick_at for cid, r in rows.items()}
    return Dynamic(loaded_at=at, spend=spend, throttles=throttles, pacing_ticks=ticks)


_lock = threading.Lock()
_snapshot: Snapshot | None = None
_reloading = threading.Event()
_dynamic_loads = [0]


def _stale(loaded_at: datetime, at: datetime, ttl: float) -> bool:
    age = (at - loaded_at).total_seconds()
    return age < 0 or age >= ttl


def _reload_in_background(previous: Structure, at: datetime) -> None:
    """Load a new structure off the request path and swap it in."""
    from django.db import connection

    def run() -> None:
        global _snapshot
        try:
            structure = load_structure(at, previous)
            dynamic = load_dynamic(structure, at)
            with _lock:
                _snapshot = Snapshot(structure=structure, dynamic=dynamic)
        finally:
            _reloading.clear()
            connection.close()  # this thread's own connection

    if not _reloading.is_set():
        _reloading.set()
        threading.Thread(target=run, name="delivery-structure-reload", daemon=True).start()


def snapshot(at: datetime, *, live: bool = False) -> Snapshot:
    """The current snapshot for a decision at `at`, reloading what is older than its TTL.
    `live` (at is the real clock): spend older than its TTL but younger than twice it is
    re-read in the background instead of on the request path."""
    global _snapshot
    ttl = settings.DELIVERY_CAMPAIGNS_TTL_SECONDS
    spend_ttl = settings.DELIVERY_SPEND_TTL_SECONDS
    snap = _snapshot
    if (
        snap is not None
        and not _stale(snap.dynamic.loaded_at, at, spend_ttl)
        and not _stale(snap.structure.loaded_at, at, ttl)
    ):
        return snap
    with _lock:
        snap = _snapshot
        if snap is None or _stale(snap.structure.loaded_at, at, 2 * ttl) or ttl <= 0:
            structure = load_structure(at, snap.structure if snap else None)
            snap = Snapshot(structure=structure, dynamic=load_dynamic(structure, at))
            _snapshot = snap
            return snap
        if _stale(snap.structure.loaded_at, at, ttl):
            _reload_in_background(snap.structure, at)
        if _stale(snap.dynamic.loaded_at, at, spend_ttl):
            if live and not _stale(snap.dynamic.loaded_at, at, 2 * spend_ttl):
                # serving on the live clock: keep deciding on the spend read < 2 TTLs ago
                # while one thread per process re-reads it (budgets are exact at billing)
                _wake_refresher()
                return snap
            snap = _next_dynamic(snap, at)
            _snapshot = snap
        return snap


def _next_dynamic(snap: Snapshot, at: datetime) -> Snapshot:
    _dynamic_loads[0] += 1
    if _dynamic_loads[0] % FINGERPRINT_EVERY == 0 and campaigns.delivery_fingerprint() != snap.structure.fingerprint:
        _reload_in_background(snap.structure, at)
    return Snapshot(structure=snap.structure, dynamic=load_dynamic(snap.structure, at))


_refresh_wanted = threading.Event()
_refresher_stopping = threading.Event()
_refresher: list[threading.Thread] = []
_lock_refresher = threading.Lock()


def _wake_refresher() -> None:
    if not _refresher or not _refresher[0].is_alive():
        with _lock_refresher:
            if not _refresher or not _refresher[0].is_alive():
                t = threading.Thread(target=_refresh_forever, name="delivery-spend-refresh", daemon=True)
                _refresher[:] = [t]
                t.start()
    _refresh_wanted.set()


def _refresh_forever() -> None:
    """The per-process spend/throttle refresher: one reload at a time, off the request path."""
    global _snapshot
    from django.db import connection
    from django.utils import timezone

    while True:
        _refresh_wanted.wait()
        if _refresher_stopping.is_set():
            connection.close()  # this thread's own connection
            return
        try:
            snap = _snapshot
            at = timezone.now()
            if snap is not None and _stale(snap.dynamic.loaded_at, at, settings.DELIVERY_SPEND_TTL_SECONDS):
                new = _next_dynamic(snap, at)
                with _lock:
                    if _snapshot is not None and _snapshot.structure is snap.structure:
                        _snapshot = new
        except Exception:
            logger.exception("spend refresh failed; the next request retries")
            connection.close()
        finally:
            _refresh_wanted.clear()


def refresher_stop(timeout: float = 10.0) -> None:
    """End this process's spend refresher and close its connection (test teardown: the
    connection must not outlive the test database); the next live request starts a new one."""
    with _lock_refresher:
        if _refresher and _refresher[0].is_alive():
            _refresher_stopping.set()
            _refresh_wanted.set()
            _refresher[0].join(timeout)
        _refresher_stopping.clear()
        _refresh_wanted.clear()


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
    catalog.clear_facts_cache()


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
