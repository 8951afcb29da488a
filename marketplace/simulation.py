"""Closed-loop storefront simulator: shoppers of a seeded world browse a storefront that
talks to the platform over HTTP only (POST /events, POST /rank, the tracking beacons,
GET /reports), and act on the world's ground truth.

Pure parts (no I/O, unit-tested): `session_pages` (where a shopper goes, per her latent
tastes, the same behaviour model as the history generator), `ad_outcomes` (oracle
click / purchase draws), `PolicyTally` (what the platform should report, counting
conversions with the same last-click rule as its attribution), `policy_report`
(confidence intervals) and `fairness_report` (how impressions spread over advertisers,
categories and new creatives). `simulate_run` wires them to an httpx client.
"""

from __future__ import annotations

import bisect
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import numpy as np

from .stats import Interval, gini, ratio_ci, ratio_diff_ci, rows_statistic_ci, top_share, wilson
from .world import (
    CURRENCY,
    MAX_PRODUCT_VIEWS,
    P_PURCHASE_AFTER_CART,
    PAGE_TYPES,
    PLACEMENT_BY_PAGE,
    PLACEMENTS,
    SEARCH_P_PLAIN_QUERY,
    SESSION_P_HOME,
    SESSION_P_SEARCH,
    SHOP_URL,
    World,
    build_world,
    p_add_to_cart,
    preset,
)

POLICIES = ("auto", "random", "popular")
BASELINES = ("random", "popular")  # each later policy is compared with each of these
EVENT_BATCH = 200
_SIM_NS = uuid.UUID("5d6f0a8e-2a51-4c3b-8f0e-7c2b9d4e1a33")

# --- shopper behaviour (pure) ----------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One storefront page a shopper opens, the behaviour event it sends and the ad slot
    it asks /rank to fill."""

    page_type: str
    leaf: int  # context leaf category (-1 on the home page)
    event_type: str
    properties: dict[str, Any]
    product_idx: int | None = None

    @property
    def placement(self) -> str:
        return PLACEMENT_BY_PAGE[self.page_type]

    @property
    def slots(self) -> int:
        return PLACEMENTS[self.placement][1]


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")


def session_pages(world: World, user_idx: int, rng: random.Random, day: float) -> Iterator[Page]:
    """The organic path of one session, the history generator's behaviour model: home page
    (50 %) → a leaf drawn by softmax of the shopper's (drifted) affinities → search (30 %)
    or category page → 1–4 product views (popularity × group brand taste) → add to cart
    with σ(−2.2 + 0.35·A − 0.6·s·log price rel) → purchase (40 %)."""
    w = world
    if rng.random() < SESSION_P_HOME:
        yield Page("home", -1, "page_view", {"url": f"{SHOP_URL}/"})
    aff = w.leaf_affinity(np.full(len(w.categories), user_idx), np.arange(len(w.categories)), day)
    weights = np.exp(aff - aff.max())
    cdf = np.cumsum(weights).tolist()
    leaf = min(bisect.bisect_left(cdf, rng.random() * cdf[-1]), len(cdf) - 1)
    top, name = w.categories[leaf]
    if rng.random() < SESSION_P_SEARCH:
        brand = w.brands[int(rng.random() * len(w.brands))].lower()
        query = name.lower() if rng.random() < SEARCH_P_PLAIN_QUERY else f"{brand} {name.lower()}"
        yield Page("search", leaf, "search", {"query": query})
    else:
        yield Page("category", leaf, "page_view", {"url": f"{SHOP_URL}/c/{_slug(top)}/{_slug(name)}"})
    members = np.flatnonzero(w.product_leaf == leaf)
    if len(members) == 0:
        return
    group = int(w.user_group[user_idx])
    pw = w.product_popularity[members] * np.exp(w.group_brand_aff[group, w.product_brand[members]])
    pcdf = np.cumsum(pw).tolist()
    viewed = 0
    for _ in range(1 + int(rng.random() * MAX_PRODUCT_VIEWS)):
        viewed = int(members[min(bisect.bisect_left(pcdf, rng.random() * pcdf[-1]), len(members) - 1)])
        yield Page("product", leaf, "product_view", {"product_id": w.products[viewed].product_id}, viewed)
    if rng.random() < p_add_to_cart(w, user_idx, leaf, viewed, day):
        prod = w.products[viewed]
        item = {"product_id": prod.product_id, "quantity": 1, "price": prod.price}
        yield Page("cart", leaf, "add_to_cart", item, viewed)
        if rng.random() < P_PURCHASE_AFTER_CART:
            yield Page(
                "cart",
                leaf,
                "purchase",
                {"items": [item], "revenue": prod.price, "currency": CURRENCY},
                viewed,
            )


def ad_outcomes(
    world: World,
    user_idx: int,
    creative_idxs: Sequence[int],
    positions: Sequence[int],
    page: Page,
    day: float,
    rng: random.Random,
) -> list[tuple[bool, bool]]:
    """(clicked, purchased) per rendered ad, drawn from the oracle: p_click(user, creative,
    position, page type, context leaf) and p_purchase_given_click."""
    if not creative_idxs:
        return []
    c = np.asarray(creative_idxs)
    pc = world.p_click(user_idx, c, np.asarray(positions), page.page_type, day, page.leaf)
    pb = world.p_purchase_given_click(user_idx, c, day)
    out = []
    for i in range(len(c)):
        clicked = rng.random() < float(pc[i])
        bought = clicked and rng.random() < float(pb[i])
        out.append((clicked, bought))
    return out


# --- tallies (pure) ---------------------------------------------------------------------


@dataclass
class ShopperTally:
    requests: int = 0
    impressions: int = 0
    clicks: int = 0
    conversions: int = 0
    revenue: Decimal = Decimal(0)
    spend: Decimal = Decimal(0)
    new_impressions: int = 0  # of creatives that were new when the run started
    by_advertiser: Counter[int] = field(default_factory=Counter)  # impressions
    by_category: Counter[str] = field(default_factory=Counter)  # impressions by the ad product's leaf
    by_creative: Counter[int] = field(default_factory=Counter)  # impressions


@dataclass(frozen=True)
class ClickMark:
    at: datetime
    campaign_id: int
    pricing_model: str
    charge: Decimal


@dataclass
class PolicyTally:
    """What one policy's shoppers did, per shopper (the bootstrap unit). Conversions follow
    the platform's attribution rule: an order counts for the shopper's last ad click of
    this run within `attribution_window` before it (CPA charged then); clicks of the
    seeded history carry their own conversions and are not attributed again."""

    attribution_window: timedelta
    shoppers: dict[str, ShopperTally] = field(default_factory=dict)
    last_click: dict[str, ClickMark] = field(default_factory=dict)
    by_campaign: dict[int, ShopperTally] = field(default_factory=dict)
    unknown_creatives: int = 0

    def _get(self, user_id: str) -> ShopperTally:
        return self.shoppers.setdefault(user_id, ShopperTally())

    def _camp(self, campaign_id: int) -> ShopperTally:
        return self.by_campaign.setdefault(campaign_id, ShopperTally())

    def request(self, user_id: str) -> None:
        self._get(user_id).requests += 1

    def impression(
        self,
        user_id: str,
        campaign_id: int,
        pricing_model: str,
        charge: Decimal,
        *,
        advertiser_id: int | None = None,
        creative_id: int | None = None,
        category: str | None = None,
        new: bool = False,
    ) -> None:
        t, ct = self._get(user_id), self._camp(campaign_id)
        t.impressions += 1
        ct.impressions += 1
        t.new_impressions += new
        if advertiser_id is not None:
            t.by_advertiser[advertiser_id] += 1
        if creative_id is not None:
            t.by_creative[creative_id] += 1
        if category is not None:
            t.by_category[category] += 1
        if pricing_model == "cpm":
            t.spend += charge / 1000
            ct.spend += charge / 1000

    def click(self, user_id: str, at: datetime, campaign_id: int, pricing_model: str, charge: Decimal) -> None:
        t, ct = self._get(user_id), self._camp(campaign_id)
        t.clicks += 1
        ct.clicks += 1
        if pricing_model == "cpc":
            t.spend += charge
            ct.spend += charge
        self.last_click[user_id] = ClickMark(at, campaign_id, pricing_model, charge)

    def order(self, user_id: str, at: datetime, revenue: Decimal) -> bool:
        mark = self.last_click.get(user_id)
        if mark is None or not (mark.at <= at <= mark.at + self.attribution_window):
            return False
        t, ct = self._get(user_id), self._camp(mark.campaign_id)
        t.conversions += 1
        ct.conversions += 1
        t.revenue += revenue
        ct.revenue += revenue
        if mark.pricing_model == "cpa":
            t.spend += mark.charge
            ct.spend += mark.charge
        return True

    def totals(self) -> ShopperTally:
        out = ShopperTally()
        for t in self.shoppers.values():
            out.requests += t.requests
            out.impressions += t.impressions
            out.clicks += t.clicks
            out.conversions += t.conversions
            out.revenue += t.revenue
            out.spend += t.spend
        return out


def _columns(tally: PolicyTally) -> dict[str, np.ndarray]:
    rows = list(tally.shoppers.values())
    return {
        "impressions": np.array([r.impressions for r in rows], dtype=np.float64),
        "clicks": np.array([r.clicks for r in rows], dtype=np.float64),
        "conversions": np.array([r.conversions for r in rows], dtype=np.float64),
        "revenue": np.array([float(r.revenue) for r in rows], dtype=np.float64),
        "spend": np.array([float(r.spend) for r in rows], dtype=np.float64),
        "shoppers": np.ones(len(rows), dtype=np.float64),
    }


# ratio metrics: name -> (numerator column, denominator column)
RATIOS = {
    "ctr": ("clicks", "impressions"),
    "cvr": ("conversions", "clicks"),
    "roas": ("revenue", "spend"),
    "revenue_per_shopper": ("revenue", "shoppers"),
}


TOP_ADVERTISERS_SHARE = 0.1


def fairness_report(
    tally: PolicyTally,
    *,
    advertisers: Sequence[int] | None = None,
    categories: int | None = None,
    draws: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """How one policy's impressions spread: distinct advertisers, creatives and categories
    (leaves) shown; Gini of impressions over `advertisers` (all of the world's, unserved
    ones count as 0) and the share of the top 10 % of them; share of impressions that went
    to creatives new at the start of the run. Shares and Gini get a 95 % shopper bootstrap;
    distinct counts are point figures (a resample can only lose distinct values)."""
    rows = list(tally.shoppers.values())
    seen_adv = sorted(set().union(*(r.by_advertiser for r in rows))) if rows else []
    universe = list(advertisers) if advertisers is not None else seen_adv
    col = {a: i for i, a in enumerate(universe)}
    matrix = np.zeros((len(rows), max(len(universe), 1)), dtype=np.float64)
    for i, r in enumerate(rows):
        for a, n in r.by_advertiser.items():
            if a in col:
                matrix[i, col[a]] += n
    shown_categories = set().union(*(r.by_category for r in rows)) if rows else set()
    imp = np.array([r.impressions for r in rows], dtype=np.float64)
    new = np.array([r.new_impressions for r in rows], dtype=np.float64)
    n_adv = len(universe)
    return {
        "advertisers": n_adv,
        "advertisers_shown": len([a for a in seen_adv if a in col]),
        "creatives_shown": len(set().union(*(r.by_creative for r in rows))) if rows else 0,
        "categories": categories,
        "categories_shown": len(shown_categories),
        "category_coverage": len(shown_categories) / categories if categories else None,
        "gini_advertisers": rows_statistic_ci(matrix[:, :n_adv], gini, draws=draws, seed=seed).as_dict(),
        "top10pct_advertisers_share": rows_statistic_ci(
            matrix[:, :n_adv], lambda x: top_share(x, TOP_ADVERTISERS_SHARE), draws=draws, seed=seed
        ).as_dict(),
        "new_creatives_share": ratio_ci(new, imp, draws=draws, seed=seed).as_dict(),
    }


def policy_report(
    tallies: dict[str, PolicyTally],
    *,
    baselines: Sequence[str] = BASELINES,
    draws: int = 1000,
    seed: int = 0,
    advertisers: Sequence[int] | None = None,
    categories: int | None = None,
) -> dict[str, Any]:
    """Totals, 95 % intervals (Wilson for CTR/CVR, shopper bootstrap for every ratio),
    each policy's difference vs each of `baselines` that precedes it there or is not one
    itself (`vs_random`, `vs_popular`: two-group shopper bootstrap) and its
    `fairness_report` over `advertisers` and `categories` (the world's)."""
    out: dict[str, Any] = {}
    cols = {name: _columns(t) for name, t in tallies.items()}
    for name, tally in tallies.items():
        tot = tally.totals()
        c = cols[name]
        entry: dict[str, Any] = {
            "shoppers": len(tally.shoppers),
            "requests": tot.requests,
            "impressions": tot.impressions,
            "clicks": tot.clicks,
            "conversions": tot.conversions,
            "revenue": str(tot.revenue.quantize(Decimal("0.01"))),
            "spend": str(tot.spend.quantize(Decimal("0.0001"))),
            "unknown_creatives": tally.unknown_creatives,
            # CVR is no proportion (a click may be followed by several attributed orders):
            # its interval is the bootstrap one below
            "wilson": {"ctr": wilson(tot.clicks, tot.impressions).as_dict()},
            "bootstrap": {k: ratio_ci(c[a], c[b], draws=draws, seed=seed).as_dict() for k, (a, b) in RATIOS.items()},
            "fairness": fairness_report(tally, advertisers=advertisers, categories=categories, draws=draws, seed=seed),
        }
        rank = list(baselines).index(name) if name in baselines else len(baselines)
        for baseline in [x for x in baselines[:rank] if x in tallies]:
            b = cols[baseline]
            entry["vs_" + baseline] = {
                k: ratio_diff_ci(c[x], c[y], b[x], b[y], draws=draws, seed=seed).as_dict()
                for k, (x, y) in RATIOS.items()
            }
        out[name] = entry
    return out


# --- assignment ------------------------------------------------------------------------


def assign_shoppers(n_world_users: int, n_users: int, policies: Sequence[str], seed: int) -> dict[str, list[int]]:
    """Draw `n_users` shoppers of the world (seeded) and split them into disjoint, equally
    sized groups, one per policy (user-level randomisation, like an A/B test)."""
    rng = np.random.default_rng([seed, 1])
    chosen = rng.permutation(n_world_users)[: min(n_users, n_world_users)]
    return {p: sorted(int(u) for u in chosen[i :: len(policies)]) for i, p in enumerate(policies)}


@dataclass(frozen=True)
class SessionPlan:
    index: int
    policy: str
    user_idx: int


def iter_session_plans(
    world: World, groups: dict[str, list[int]], sessions_per_policy: int | None, seed: int
) -> Iterator[SessionPlan]:
    """Each policy gets the same number of sessions, interleaved in time (round-robin), so
    time effects (pacing, budgets, retraining) hit every arm alike. Within an arm, shoppers
    are drawn in proportion to their activity. Endless with `sessions_per_policy=None`."""
    rng = np.random.default_rng([seed, 2])
    arms = []
    for p, members in groups.items():
        if members:
            idx = np.asarray(members, dtype=np.int64)
            act = world.user_activity[idx]
            arms.append((p, idx, np.cumsum(act) / act.sum()))
    index = 0
    round_ = 0
    while sessions_per_policy is None or round_ < sessions_per_policy:
        for p, users, cdf in arms:
            k = min(int(np.searchsorted(cdf, rng.random(), side="right")), len(users) - 1)
            yield SessionPlan(index, p, int(users[k]))
            index += 1
        round_ += 1
        if not arms:
            return


def session_plans(world: World, groups: dict[str, list[int]], sessions_per_policy: int, seed: int) -> list[SessionPlan]:
    return list(iter_session_plans(world, groups, sessions_per_policy, seed))


def manifest_world(manifest: dict[str, Any]) -> World:
    """Rebuild the seeded world (deterministic) from its manifest: size, seed, days, start."""
    cfg = preset(manifest["size"], seed=int(manifest["seed"]), days=int(manifest["days"]))
    return build_world(replace(cfg, start=datetime.fromisoformat(manifest["start"])))


# --- HTTP runner ------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulationConfig:
    base_url: str
    api_key: str
    policies: tuple[str, ...] = ("auto",)
    users: int = 200
    sessions: int | None = 100  # per policy; None: until `duration` runs out
    duration: float | None = None  # seconds
    rate: float | None = None  # sessions per second (all policies together)
    concurrency: int = 4
    seed: int = 0
    attribution_window_seconds: int = 7 * 86400
    timeout: float = 30.0


@dataclass
class SimulationResult:
    tallies: dict[str, PolicyTally]
    sessions: int
    events_sent: int
    events_accepted: int
    events_duplicates: int
    events_rejected: int
    http_errors: int
    elapsed: float


class _Storefront:
    """The shop's server side: one httpx client (thread safe), batched behaviour events."""

    def __init__(self, cfg: SimulationConfig) -> None:
        self.cfg = cfg
        self.client = httpx.Client(
            base_url=cfg.base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {cfg.api_key}"},
            timeout=cfg.timeout,
            limits=httpx.Limits(max_connections=cfg.concurrency * 2 + 2),
        )
        self.lock = threading.Lock()
        self.buffer: list[dict[str, Any]] = []
        self.sent = self.accepted = self.duplicates = self.rejected = self.errors = 0

    def event(self, ev: dict[str, Any]) -> None:
        batch: list[dict[str, Any]] = []
        with self.lock:
            self.buffer.append(ev)
            if len(self.buffer) >= EVENT_BATCH:
                batch, self.buffer = self.buffer, []
        if batch:
            self._post(batch)

    def flush(self) -> None:
        with self.lock:
            batch, self.buffer = self.buffer, []
        if batch:
            self._post(batch)

    def _post(self, batch: list[dict[str, Any]]) -> None:
        for attempt in range(3):
            try:
                r = self.client.post("/api/v1/events", json={"events": batch})
                if r.status_code == 202:
                    body = r.json()
                    with self.lock:
                        self.sent += len(batch)
                        self.accepted += int(body["accepted"])
                        self.duplicates += int(body["duplicates"])
                        self.rejected += len(body["rejected"])
                    return
                if r.status_code < 500:
                    raise RuntimeError(f"POST /api/v1/events: {r.status_code} {r.text[:300]}")
            except httpx.HTTPError:
                pass
            time.sleep(0.5 * (attempt + 1))
        with self.lock:
            self.errors += 1

    def rank(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            r = self.client.post("/api/v1/rank", json=body)
        except httpx.HTTPError:
            with self.lock:
                self.errors += 1
            return []
        if r.status_code != 200:
            if r.status_code in (401, 403, 400):
                raise RuntimeError(f"POST /api/v1/rank: {r.status_code} {r.text[:300]}")
            with self.lock:
                self.errors += 1
            return []
        return list(r.json().get("ads") or [])

    def beacon(self, url: str) -> bool:
        # absolute URL from the platform; a click is not followed to the external landing page
        try:
            r = self.client.get(url, follow_redirects=False)
        except httpx.HTTPError:
            with self.lock:
                self.errors += 1
            return False
        ok = r.status_code in (200, 204, 302, 303)
        if not ok:
            with self.lock:
                self.errors += 1
        return ok

    def close(self) -> None:
        self.client.close()


def _ts(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def ad_category(world: World, creative_idx: int) -> str:
    """The leaf category ("top/leaf") of the creative's product."""
    return "/".join(world.categories[int(world.product_leaf[int(world.creative_product[creative_idx])])])


def ad_categories(world: World) -> int:
    """How many leaf categories the world's creatives advertise in."""
    return len({ad_category(world, c) for c in range(len(world.creative_product))})


class _Runner:
    def __init__(
        self, world: World, manifest: dict[str, Any], cfg: SimulationConfig, new_creatives: frozenset[int] = frozenset()
    ) -> None:
        self.w = world
        self.cfg = cfg
        self.shop = _Storefront(cfg)
        self.new_creatives = new_creatives
        self.creative_idx = {int(pid): world.creative_index(key) for key, pid in manifest["creatives"].items()}
        self.day = float(world.cfg.days)  # the simulated present: the day after the history
        window = timedelta(seconds=cfg.attribution_window_seconds)
        self.tallies = {p: PolicyTally(attribution_window=window) for p in cfg.policies}
        self.tally_lock = threading.Lock()
        # one session at a time per shopper: her clicks and orders then reach the platform
        # in the order the tally saw them (attribution is by time)
        self.user_locks = [threading.Lock() for _ in world.shoppers]

    def _event(self, plan: SessionPlan, sid: str, n: int, type_: str, props: dict[str, Any], at: datetime) -> None:
        user_id = self.w.shoppers[plan.user_idx].user_id
        self.shop.event(
            {
                "event_id": str(uuid.uuid5(_SIM_NS, f"{self.cfg.seed}/{sid}/{n}")),
                "type": type_,
                "user_id": user_id,
                "session_id": sid,
                "timestamp": _ts(at),
                "properties": props,
            }
        )

    def session(self, plan: SessionPlan) -> None:
        w, cfg = self.w, self.cfg
        rng = random.Random(f"{cfg.seed}/{plan.index}")
        user_id = w.shoppers[plan.user_idx].user_id
        shopper = w.shoppers[plan.user_idx]
        sid = f"sim-{cfg.seed}-{plan.index}"
        tally = self.tallies[plan.policy]
        n = 0
        for page in session_pages(w, plan.user_idx, rng, self.day):
            n += 1
            now = datetime.now(UTC)
            props = dict(page.properties)
            if page.event_type == "purchase":
                props["order_id"] = f"sim-{cfg.seed}-{plan.index}-{n}"
                self._event(plan, sid, n, "purchase", props, now)
                with self.tally_lock:
                    tally.order(user_id, now, Decimal(props["revenue"]))
                continue
            self._event(plan, sid, n, page.event_type, props, now)
            context: dict[str, Any] = {"page_type": page.page_type, "device": shopper.device, "geo": shopper.geo}
            if page.leaf >= 0:
                context["category_id"] = w.categories[page.leaf][1]
            if page.product_idx is not None:
                context["product_id"] = w.products[page.product_idx].product_id
            if page.event_type == "search":
                context["query"] = props["query"]
            body = {
                "user_id": user_id,
                "session_id": sid,
                "placement": page.placement,
                "limit": page.slots,
                "context": context,
                "policy": plan.policy,
            }
            ads = self.shop.rank(body)
            with self.tally_lock:
                tally.request(user_id)
            shown: list[tuple[dict[str, Any], int]] = []
            for ad in ads:
                if not self.shop.beacon(ad["impression_url"]):
                    continue
                pricing = ad.get("pricing") or {}
                creative_id = int(ad["creative_id"])
                idx = self.creative_idx.get(creative_id)
                with self.tally_lock:
                    tally.impression(
                        user_id,
                        int(ad["campaign_id"]),
                        str(pricing.get("model")),
                        Decimal(pricing.get("charge") or 0),
                        advertiser_id=int(ad["advertiser_id"]),
                        creative_id=creative_id,
                        category=ad_category(w, idx) if idx is not None else None,
                        new=creative_id in self.new_creatives,
                    )
                if idx is None:
                    with self.tally_lock:
                        tally.unknown_creatives += 1
                    continue
                shown.append((ad, idx))
            positions = [int(a.get("position") or k + 1) for k, (a, _i) in enumerate(shown)]
            outcomes = ad_outcomes(w, plan.user_idx, [i for _a, i in shown], positions, page, self.day, rng)
            for (ad, idx), (clicked, bought) in zip(shown, outcomes, strict=True):
                if not clicked or not self.shop.beacon(ad["click_url"]):
                    continue
                at = datetime.now(UTC)
                pricing = ad.get("pricing") or {}
                with self.tally_lock:
                    charge = Decimal(pricing.get("charge") or 0)
                    tally.click(user_id, at, int(ad["campaign_id"]), str(pricing.get("model")), charge)
                prod = w.products[int(w.creative_product[idx])]
                n += 1
                self._event(plan, sid, n, "product_view", {"product_id": prod.product_id, "via": "ad"}, at)
                if bought:
                    item = {"product_id": prod.product_id, "quantity": 1, "price": prod.price}
                    n += 1
                    self._event(plan, sid, n, "add_to_cart", dict(item), at + timedelta(milliseconds=1))
                    n += 1
                    order_at = at + timedelta(milliseconds=2)
                    order = {
                        "order_id": f"sim-{cfg.seed}-{plan.index}-{n}",
                        "items": [item],
                        "revenue": prod.price,
                        "currency": CURRENCY,
                    }
                    self._event(plan, sid, n, "purchase", order, order_at)
                    with self.tally_lock:
                        tally.order(user_id, order_at, Decimal(prod.price))

    def run(self, plans: Iterator[SessionPlan], progress: Callable[[int], None] | None) -> SimulationResult:
        cfg = self.cfg
        started = time.monotonic()
        deadline = started + cfg.duration if cfg.duration else None
        gate = threading.Lock()
        next_slot = [started]
        done = [0]

        def take() -> tuple[SessionPlan, float] | None:
            with gate:
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                plan = next(plans, None)
                if plan is None:
                    return None
                # open-loop start times with --rate: one session every 1/rate seconds
                slot = next_slot[0]
                if cfg.rate:
                    next_slot[0] = max(slot, time.monotonic()) + 1.0 / cfg.rate
                return plan, slot

        def worker() -> None:
            while (got := take()) is not None:
                plan, slot = got
                delay = slot - time.monotonic()
                if cfg.rate and delay > 0:
                    time.sleep(delay)
                with self.user_locks[plan.user_idx]:
                    self.session(plan)
                with gate:
                    done[0] += 1
                if progress is not None:
                    progress(1)

        try:
            with ThreadPoolExecutor(max_workers=cfg.concurrency) as pool:
                for f in [pool.submit(worker) for _ in range(cfg.concurrency)]:
                    f.result()
            self.shop.flush()
        finally:
            self.shop.close()
        s = self.shop
        return SimulationResult(
            tallies=self.tallies,
            sessions=done[0],
            events_sent=s.sent,
            events_accepted=s.accepted,
            events_duplicates=s.duplicates,
            events_rejected=s.rejected,
            http_errors=s.errors,
            elapsed=time.monotonic() - started,
        )


def simulate_run(
    *,
    world: World,
    manifest: dict[str, Any],
    cfg: SimulationConfig,
    progress: Callable[[int], None] | None = None,
    new_creatives: frozenset[int] = frozenset(),
) -> SimulationResult:
    """Run the closed loop. With a `duration` and no `sessions`, plans enough sessions for
    the duration and stops starting new ones when it runs out. `new_creatives`: platform
    ids of the creatives counted as new (fairness figures)."""
    for p in cfg.policies:
        if p not in POLICIES:
            raise ValueError(f"unknown policy {p!r}; choose from {', '.join(POLICIES)}")
    if cfg.sessions is None and not cfg.duration:
        raise ValueError("give sessions, a duration, or both")
    groups = assign_shoppers(len(world.shoppers), cfg.users, cfg.policies, cfg.seed)
    plans = iter_session_plans(world, groups, cfg.sessions, cfg.seed)
    return _Runner(world, manifest, cfg, new_creatives).run(plans, progress)


# --- reconciliation over the reports API -------------------------------------------------


@dataclass(frozen=True)
class ReportTotals:
    impressions: int
    clicks: int
    conversions: int
    spend: Decimal
    revenue: Decimal

    def minus(self, other: ReportTotals) -> ReportTotals:
        return ReportTotals(
            self.impressions - other.impressions,
            self.clicks - other.clicks,
            self.conversions - other.conversions,
            self.spend - other.spend,
            self.revenue - other.revenue,
        )


def _report_totals(body: dict[str, Any]) -> ReportTotals:
    t = body["totals"]
    return ReportTotals(
        int(t["impressions"]), int(t["clicks"]), int(t["conversions"]), Decimal(t["spend"]), Decimal(t["revenue"])
    )


def reports_by_advertiser(
    client: httpx.Client, tokens: dict[int, str], *, day_from: str, day_to: str
) -> dict[int, ReportTotals]:
    """GET /api/v1/reports totals of each advertiser (its own token) over [day_from, day_to]."""
    out = {}
    for advertiser_id, token in tokens.items():
        r = client.get(
            "/api/v1/reports",
            params={"from": day_from, "to": day_to, "group_by": "campaign"},
            headers={"Authorization": f"Bearer {token}"},
        )
        r.raise_for_status()
        out[advertiser_id] = _report_totals(r.json())
    return out


def creative_impressions(client: httpx.Client, tokens: dict[int, str], *, day_from: str, day_to: str) -> dict[int, int]:
    """Impressions per creative over [day_from, day_to], from each advertiser's GET
    /api/v1/reports?group_by=creative (its own token); creatives never shown are absent."""
    out: dict[int, int] = {}
    for token in tokens.values():
        r = client.get(
            "/api/v1/reports",
            params={"from": day_from, "to": day_to, "group_by": "creative"},
            headers={"Authorization": f"Bearer {token}"},
        )
        r.raise_for_status()
        for row in r.json()["rows"]:
            out[int(row["creative_id"])] = int(row["impressions"])
    return out


def new_creatives_of(manifest: dict[str, Any], impressions: dict[int, int], threshold: int) -> frozenset[int]:
    """The world's creatives (platform ids) with fewer than `threshold` impressions."""
    return frozenset(int(pid) for pid in manifest["creatives"].values() if impressions.get(int(pid), 0) < threshold)


def sum_totals(items: Iterable[ReportTotals]) -> ReportTotals:
    out = ReportTotals(0, 0, 0, Decimal(0), Decimal(0))
    for t in items:
        out = ReportTotals(
            out.impressions + t.impressions,
            out.clicks + t.clicks,
            out.conversions + t.conversions,
            out.spend + t.spend,
            out.revenue + t.revenue,
        )
    return out


def simulated_by_advertiser(
    tallies: dict[str, PolicyTally], campaign_advertiser: dict[int, int]
) -> dict[int, ReportTotals]:
    """What each advertiser's reports should grow by during the run."""
    acc: dict[int, list[Any]] = {}
    for t in tallies.values():
        for campaign_id, ct in t.by_campaign.items():
            a = acc.setdefault(campaign_advertiser.get(campaign_id, 0), [0, 0, 0, Decimal(0), Decimal(0)])
            a[0] += ct.impressions
            a[1] += ct.clicks
            a[2] += ct.conversions
            a[3] += ct.spend
            a[4] += ct.revenue
    return {k: ReportTotals(*v) for k, v in acc.items()}


def simulated_totals(tallies: dict[str, PolicyTally]) -> ReportTotals:
    imp = clk = conv = 0
    spend = revenue = Decimal(0)
    for t in tallies.values():
        tot = t.totals()
        imp += tot.impressions
        clk += tot.clicks
        conv += tot.conversions
        spend += tot.spend
        revenue += tot.revenue
    return ReportTotals(imp, clk, conv, spend, revenue)


# The reports API prints money with 4 decimals (ROUND_HALF_UP): an advertiser's spend growth
# read as after − before carries two roundings, each at most half a unit of the 4th decimal.
SPEND_TOLERANCE = Decimal("0.0001")


def reconciles(expected: ReportTotals, reported: ReportTotals) -> bool:
    """Counts and revenue (2 decimals) equal; spend within the API's rounding."""
    return (
        (expected.impressions, expected.clicks, expected.conversions, expected.revenue)
        == (reported.impressions, reported.clicks, reported.conversions, reported.revenue)
    ) and abs(expected.spend - reported.spend) <= SPEND_TOLERANCE


def reports_settle(
    fetch: Callable[[], dict[int, ReportTotals]],
    *,
    baseline: dict[int, ReportTotals],
    expected: dict[int, ReportTotals],
    timeout: float = 60.0,
    before_poll: Callable[[], None] | None = None,
) -> dict[int, ReportTotals]:
    """Poll the reports until each advertiser's growth since `baseline` reconciles with
    `expected` (the projections run asynchronously) or `timeout` passes; returns the last
    growth seen per advertiser."""
    deadline = time.monotonic() + timeout
    zero = ReportTotals(0, 0, 0, Decimal(0), Decimal(0))
    while True:
        if before_poll is not None:
            before_poll()
        now = fetch()
        delta = {a: now[a].minus(baseline.get(a, zero)) for a in now}
        if all(reconciles(expected.get(a, zero), delta[a]) for a in delta) or time.monotonic() >= deadline:
            return delta
        time.sleep(0.5)


def _totals_json(t: ReportTotals) -> dict[str, Any]:
    return {
        "impressions": t.impressions,
        "clicks": t.clicks,
        "conversions": t.conversions,
        "spend": str(t.spend),
        "revenue": str(t.revenue),
    }


def campaign_advertisers(world: World, manifest: dict[str, Any]) -> dict[int, int]:
    """Platform campaign id → platform advertiser id, from the manifest."""
    adv = {k: int(v["id"]) for k, v in manifest["advertisers"].items()}
    camp = {k: int(v) for k, v in manifest["campaigns"].items()}
    return {camp[c.key]: adv[c.advertiser] for c in world.campaigns if c.key in camp and c.advertiser in adv}


def advertiser_tokens(manifest: dict[str, Any]) -> dict[int, str]:
    return {int(v["id"]): v["token"] for v in manifest["advertisers"].values() if v.get("token")}


def simulation_report(
    *,
    world: World,
    manifest: dict[str, Any],
    cfg: SimulationConfig,
    reconcile: bool = False,
    reconcile_timeout: float = 120.0,
    draws: int = 1000,
    progress: Callable[[int], None] | None = None,
    before_poll: Callable[[], None] | None = None,
    new_threshold: int = 200,
) -> dict[str, Any]:
    """Run the loop and build the report (JSON-ready); with `reconcile`, read the world's
    advertisers' GET /reports totals before the run and wait for each to grow by what the
    simulator counted for it (`before_poll` runs before each look: tests drive the
    projections with it; a running platform has its own consumer). Creatives with fewer
    than `new_threshold` impressions in the reports before the run count as new."""
    tokens = advertiser_tokens(manifest)
    today = datetime.now(UTC).date()
    span = {"day_from": (today - timedelta(days=1)).isoformat(), "day_to": (today + timedelta(days=1)).isoformat()}
    history_from = (datetime.fromisoformat(manifest["start"]).date() - timedelta(days=1)).isoformat()
    with httpx.Client(base_url=cfg.base_url.rstrip("/"), timeout=cfg.timeout) as client:
        before = reports_by_advertiser(client, tokens, **span) if reconcile else None
        shown = creative_impressions(client, tokens, day_from=history_from, day_to=span["day_to"])
        new = new_creatives_of(manifest, shown, new_threshold)
        result = simulate_run(world=world, manifest=manifest, cfg=cfg, progress=progress, new_creatives=new)
        report: dict[str, Any] = {
            "world": manifest["world"],
            "policies": policy_report(
                result.tallies,
                baselines=BASELINES,
                draws=draws,
                seed=cfg.seed,
                advertisers=sorted(int(v["id"]) for v in manifest["advertisers"].values()),
                categories=ad_categories(world),
            ),
            "new_creatives": {"threshold": new_threshold, "count": len(new), "of": len(manifest["creatives"])},
            "sessions": result.sessions,
            "events": {
                "sent": result.events_sent,
                "accepted": result.events_accepted,
                "duplicates": result.events_duplicates,
                "rejected": result.events_rejected,
            },
            "http_errors": result.http_errors,
            "elapsed_s": round(result.elapsed, 2),
            "sessions_per_s": round(result.sessions / result.elapsed, 2) if result.elapsed else None,
        }
        if before is not None:
            expected = simulated_by_advertiser(result.tallies, campaign_advertisers(world, manifest))
            delta = reports_settle(
                lambda: reports_by_advertiser(client, tokens, **span),
                baseline=before,
                expected=expected,
                timeout=reconcile_timeout,
                before_poll=before_poll,
            )
            sim, rep = sum_totals(expected.values()), sum_totals(delta.values())
            fields = ("impressions", "clicks", "conversions", "spend", "revenue")
            report["reconciliation"] = {
                k: {"simulated": str(getattr(sim, k)), "reported": str(getattr(rep, k))} for k in fields
            }
            zero = ReportTotals(0, 0, 0, Decimal(0), Decimal(0))
            report["reconciled"] = all(reconciles(expected.get(a, zero), delta[a]) for a in delta)
            report["reconciliation_by_advertiser"] = {
                str(a): {"simulated": _totals_json(expected.get(a, zero)), "reported": _totals_json(delta[a])}
                for a in sorted(delta)
            }
    return report


def interval_str(iv: dict[str, float], pct: bool = False) -> str:
    f = (lambda x: f"{100 * x:.2f}%") if pct else (lambda x: f"{x:.3f}")
    return f"{f(iv['value'])} [{f(iv['low'])}, {f(iv['high'])}]"


def as_interval(d: dict[str, float]) -> Interval:
    return Interval(d["value"], d["low"], d["high"])


__all__ = ["PAGE_TYPES", "POLICIES", "Page", "PolicyTally", "SimulationConfig", "simulate_run"]
