"""Synthetic marketplace with a hidden ground truth (pure numpy, no Django).

`build_world(cfg)` plants a category tree, brands, products, advertisers, campaigns,
creatives and shoppers with latent tastes; `World.p_click` / `World.p_purchase_given_click`
are the oracle (the true probabilities the simulated shoppers act on);
`generate_history(world)` yields one `HistoryDay` per simulated day: SPEC wire behaviour
events (deterministic uuid5 ids) and ad exposures, each list in time order.

Everything is a function of `WorldConfig` (seed included): the same config gives the same
world and the same history, byte for byte. The ground-truth model is documented in
docs/marketplace.md.
"""

from __future__ import annotations

import bisect
import math
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

# ---------------------------------------------------------------------------------------
# vocabulary

TAXONOMY: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = (
    (
        "Electronics",
        (("Headphones", 90), ("Smartphones", 520), ("Laptops", 950), ("Cameras", 640), ("Smartwatches", 240)),
    ),
    ("Home & Kitchen", (("Coffee Makers", 120), ("Cookware", 85), ("Blenders", 70), ("Bedding", 60), ("Lamps", 45))),
    ("Fashion", (("Sneakers", 95), ("Jackets", 140), ("Dresses", 75), ("Handbags", 160), ("Sunglasses", 55))),
    (
        "Sports & Outdoors",
        (("Hiking Boots", 130), ("Tents", 210), ("Yoga Mats", 35), ("Bicycles", 620), ("Running Shorts", 30)),
    ),
    ("Beauty", (("Skincare", 28), ("Perfume", 70), ("Makeup", 22), ("Hair Care", 18))),
    ("Toys & Games", (("Board Games", 35), ("Puzzles", 20), ("Building Sets", 60), ("Dolls", 30))),
    ("Books", (("Fiction", 15), ("Cookbooks", 25), ("Travel Guides", 20), ("Children's Books", 12))),
    ("Grocery", (("Coffee Beans", 16), ("Tea", 9), ("Snacks", 6), ("Olive Oil", 14))),
    ("Pets", (("Dog Food", 40), ("Cat Toys", 12), ("Pet Beds", 45))),
    ("Garden", (("Planters", 25), ("Garden Tools", 38), ("Grills", 290))),
)
ADJECTIVES = (
    "Classic",
    "Pro",
    "Ultralight",
    "Premium",
    "Everyday",
    "Compact",
    "Deluxe",
    "Eco",
    "Smart",
    "Vintage",
    "Urban",
    "Essential",
    "Advanced",
    "Soft",
    "Rugged",
    "Signature",
    "Modern",
    "Travel",
)
SYL_A = ("Al", "Nor", "Bri", "Ves", "Kor", "Lum", "Tar", "Mer", "Zen", "Ori", "Cal", "Dra", "Fen", "Hal", "Ix", "Jor")
SYL_B = (
    "pen",
    "dkap",
    "ster",
    "ova",
    "ix",
    "ara",
    "wood",
    "line",
    "tek",
    "mont",
    "vale",
    "ford",
    "lux",
    "stone",
    "ia",
    "ko",
)
GEOS = ("US", "GB", "DE", "FR", "NL", "ES", "IT", "SE", "PL", "CA")
GEO_WEIGHTS = (0.34, 0.14, 0.13, 0.1, 0.06, 0.06, 0.06, 0.04, 0.03, 0.04)
DEVICES = ("mobile", "desktop", "tablet")
DEVICE_WEIGHTS = (0.6, 0.32, 0.08)
DEVICE_EFFECT = np.array([0.1, 0.0, -0.05])
PAGE_TYPES = ("home", "category", "product", "search", "cart")
PAGE_TYPE_EFFECT = np.array([-0.3, 0.0, 0.2, 0.35, -0.2])
# Demo placements: key -> (page_type, slots, floor_cpm)
PLACEMENTS: dict[str, tuple[str, int, str]] = {
    "home_top": ("home", 2, "0.50"),
    "category_side": ("category", 3, "0.50"),
    "product_below": ("product", 2, "0.50"),
    "search_top": ("search", 2, "0.50"),
    "cart_below": ("cart", 2, "0.50"),
}
PLACEMENT_BY_PAGE = {pt: key for key, (pt, _s, _f) in PLACEMENTS.items()}
CURRENCY = "USD"
SHOP_URL = "https://shop.example"
_NS = uuid.UUID("a8d3f1f6-39a4-4d5c-9d2b-6e0b6f5a4c11")

# ground-truth coefficients (docs/marketplace.md)
CLICK_BIAS = -4.0
CLICK_W_AFFINITY = 0.55
CLICK_W_BRAND = 0.45
CLICK_W_PRICE = 0.5
CLICK_W_CONTEXT = 0.6
BUY_BIAS = -2.3
BUY_W_AFFINITY = 0.3
BUY_W_PRICE = 0.9
POSITION_DECAY = 0.7
# organic session model (shared by the history generator and the simulator)
SESSION_P_HOME = 0.5  # a session starts on the home page
SESSION_P_SEARCH = 0.3  # the shopper searches (else opens the category page)
SEARCH_P_PLAIN_QUERY = 0.6  # the query is the leaf name (else brand + leaf name)
MAX_PRODUCT_VIEWS = 4  # 1..4 product views per session
CART_BIAS = -2.2
CART_W_AFFINITY = 0.35
CART_W_PRICE = 0.6
P_PURCHASE_AFTER_CART = 0.4


def position_bias(position: Any) -> np.ndarray:
    """Examination probability of a slot: 1 at position 1, position ** -0.7 below."""
    return np.power(np.maximum(np.asarray(position, dtype=np.float64), 1.0), -POSITION_DECAY)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# ---------------------------------------------------------------------------------------
# configuration


@dataclass(frozen=True)
class WorldConfig:
    seed: int = 7
    n_users: int = 300
    n_products: int = 200
    n_advertisers: int = 8
    n_creatives: int = 40
    n_taste_groups: int = 6
    n_brands: int = 60
    days: int = 14
    start: datetime = datetime(2026, 10, 1, tzinfo=UTC)
    activity_mean: float = 1.2  # sessions per shopper per day (mean)
    drift_scale: float = 0.8  # std of the per-shopper category drift over `days`
    campaigns_per_advertiser: int = 2


PRESETS: dict[str, WorldConfig] = {
    "test": WorldConfig(),
    "demo": WorldConfig(
        n_users=1500,
        n_products=1500,
        n_advertisers=30,
        n_creatives=300,
        n_taste_groups=8,
        n_brands=120,
        days=5,
        activity_mean=0.5,
    ),
    "full": WorldConfig(
        n_users=100_000,
        n_products=50_000,
        n_advertisers=500,
        n_creatives=10_000,
        n_taste_groups=12,
        n_brands=600,
        days=7,
        activity_mean=0.35,
    ),
}
PRESETS["tiny"] = PRESETS["test"]


def preset(name: str, *, seed: int | None = None, **changes: Any) -> WorldConfig:
    cfg = PRESETS[name]
    if seed is not None:
        changes["seed"] = seed
    return replace(cfg, **changes) if changes else cfg


# ---------------------------------------------------------------------------------------
# world


@dataclass(frozen=True)
class Product:
    product_id: str
    title: str
    category_path: tuple[str, str]
    brand: str
    price: str
    currency: str
    url: str
    image_url: str
    in_stock: bool


@dataclass(frozen=True)
class Advertiser:
    key: str
    name: str
    brands: tuple[str, ...]


@dataclass(frozen=True)
class Campaign:
    key: str
    advertiser: str
    name: str
    objective: str
    bid_model: str
    bid: str
    daily_budget: str
    total_budget: str
    targeting: dict[str, list[str]]


@dataclass(frozen=True)
class Creative:
    key: str
    campaign: str
    product_id: str
    headline: str
    body: str
    image_url: str
    landing_url: str
    variants: tuple[dict[str, str], ...]


@dataclass(frozen=True)
class Shopper:
    user_id: str
    taste_group: int
    device: str
    geo: str
    activity: float
    price_sensitivity: float


@dataclass
class World:
    cfg: WorldConfig
    categories: list[tuple[str, str]]  # leaf category paths
    leaf_top: np.ndarray  # leaf -> top category index
    top_categories: list[str]
    brands: list[str]
    products: list[Product]
    product_leaf: np.ndarray
    product_brand: np.ndarray
    product_price: np.ndarray
    product_price_rel: np.ndarray  # log(price / leaf median)
    product_quality: np.ndarray
    product_popularity: np.ndarray
    advertisers: list[Advertiser]
    campaigns: list[Campaign]
    creatives: list[Creative]
    creative_product: np.ndarray
    creative_campaign: np.ndarray
    creative_appeal: np.ndarray
    shoppers: list[Shopper]
    user_group: np.ndarray
    user_device: np.ndarray
    user_activity: np.ndarray
    user_price_sens: np.ndarray
    user_leaf_aff: np.ndarray  # (users, leaves) base affinity
    user_drift: np.ndarray  # (users, top categories) total drift over cfg.days
    group_brand_aff: np.ndarray  # (groups, brands)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def taste_groups(self) -> np.ndarray:
        return self.user_group

    def leaf_affinity(self, user_idx: Any, leaf_idx: Any, day: Any) -> np.ndarray:
        """Shopper's affinity for a leaf category on `day` (drifts linearly with time)."""
        u = np.asarray(user_idx)
        leaf = np.asarray(leaf_idx)
        t = np.asarray(day, dtype=np.float64) / max(self.cfg.days, 1)
        return self.user_leaf_aff[u, leaf] + self.user_drift[u, self.leaf_top[leaf]] * t

    def _click_logit(self, u: np.ndarray, c: np.ndarray, page_type: Any, day: Any, context_leaf: Any) -> np.ndarray:
        p = self.creative_product[c]
        leaf = self.product_leaf[p]
        pt = _page_type_codes(page_type)
        logit = (
            CLICK_BIAS
            + self.creative_appeal[c]
            + CLICK_W_AFFINITY * self.leaf_affinity(u, leaf, day)
            + CLICK_W_BRAND * self.group_brand_aff[self.user_group[u], self.product_brand[p]]
            - CLICK_W_PRICE * self.user_price_sens[u] * self.product_price_rel[p]
            + PAGE_TYPE_EFFECT[pt]
            + DEVICE_EFFECT[self.user_device[u]]
        )
        if context_leaf is not None:
            ctx = np.asarray(context_leaf)
            same_leaf = (ctx >= 0) & (ctx == leaf)
            same_top = (ctx >= 0) & (self.leaf_top[np.maximum(ctx, 0)] == self.leaf_top[leaf])
            logit = logit + CLICK_W_CONTEXT * (same_leaf.astype(np.float64) + 0.5 * same_top.astype(np.float64))
        return np.asarray(logit, dtype=np.float64)

    def p_click(
        self,
        user_idx: Any,
        creative_idx: Any,
        position: Any = 1,
        page_type: Any = "home",
        day: Any = 0,
        context_leaf: Any = None,
    ) -> np.ndarray:
        """Oracle click probability: examination (position) × attraction (user, creative,
        context). Vectorised: every argument broadcasts. `page_type` is a name or an array
        of indexes into PAGE_TYPES; `context_leaf` the leaf category shown (-1: none)."""
        u = np.asarray(user_idx)
        c = np.asarray(creative_idx)
        return position_bias(position) * _sigmoid(self._click_logit(u, c, page_type, day, context_leaf))

    def p_purchase_given_click(self, user_idx: Any, creative_idx: Any, day: Any = 0) -> np.ndarray:
        """Oracle probability that a click on the creative ends in buying its product."""
        u = np.asarray(user_idx)
        c = np.asarray(creative_idx)
        p = self.creative_product[c]
        logit = (
            BUY_BIAS
            + self.product_quality[p]
            + BUY_W_AFFINITY * self.leaf_affinity(u, self.product_leaf[p], day)
            - BUY_W_PRICE * self.user_price_sens[u] * self.product_price_rel[p]
        )
        return np.asarray(_sigmoid(logit), dtype=np.float64)

    # lookups -------------------------------------------------------------------------

    def product_index(self, product_id: str) -> int:
        return int(product_id[1:])

    def user_index(self, user_id: str) -> int:
        return int(user_id[1:])

    def creative_index(self, key: str) -> int:
        return int(key[1:])

    def creatives_by_leaf(self) -> list[list[int]]:
        if "by_leaf" not in self._cache:
            out: list[list[int]] = [[] for _ in self.categories]
            for ci, p in enumerate(self.creative_product.tolist()):
                out[int(self.product_leaf[p])].append(ci)
            self._cache["by_leaf"] = out
        return list(self._cache["by_leaf"])

    def to_json(self) -> dict[str, Any]:
        """Everything the platform may see plus the planted latent variables."""
        return {
            "config": {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.cfg.__dict__.items()},
            "categories": [list(c) for c in self.categories],
            "brands": self.brands,
            "products": [p.__dict__ | {"category_path": list(p.category_path)} for p in self.products],
            "advertisers": [a.__dict__ | {"brands": list(a.brands)} for a in self.advertisers],
            "campaigns": [c.__dict__ for c in self.campaigns],
            "creatives": [c.__dict__ | {"variants": list(c.variants)} for c in self.creatives],
            "shoppers": [s.__dict__ for s in self.shoppers],
            "latent": {
                "creative_appeal": np.round(self.creative_appeal, 6).tolist(),
                "product_quality": np.round(self.product_quality, 6).tolist(),
                "group_brand_affinity": np.round(self.group_brand_aff, 6).tolist(),
                "user_leaf_affinity": np.round(self.user_leaf_aff, 4).tolist(),
                "user_drift": np.round(self.user_drift, 4).tolist(),
            },
        }


def p_add_to_cart(world: World, user_idx: int, leaf: int, product_idx: int, day: float) -> float:
    """Organic add-to-cart probability after viewing a product:
    σ(−2.2 + 0.35·A_day[u, leaf] − 0.6·s_u·log(price / leaf median))."""
    aff = float(world.leaf_affinity(user_idx, leaf, day))
    sens = float(world.user_price_sens[user_idx]) * float(world.product_price_rel[product_idx])
    return 1.0 / (1.0 + math.exp(-(CART_BIAS + CART_W_AFFINITY * aff - CART_W_PRICE * sens)))


def _page_type_codes(page_type: Any) -> np.ndarray:
    if isinstance(page_type, str):
        return np.asarray(PAGE_TYPES.index(page_type))
    arr = np.asarray(page_type)
    if arr.dtype.kind in "US":
        return np.vectorize(PAGE_TYPES.index)(arr)
    return arr.astype(np.int64)


def _brand_names(n: int, rng: np.random.Generator) -> list[str]:
    names: list[str] = []
    seen: set[str] = set()
    combos = [a + b for a in SYL_A for b in SYL_B]
    order = rng.permutation(len(combos))
    i = 0
    while len(names) < n:
        base = combos[order[i % len(combos)]]
        name = base if i < len(combos) else f"{base} {SYL_A[(i // len(combos)) % len(SYL_A)]}"
        if name not in seen:
            seen.add(name)
            names.append(name)
        i += 1
    return names


def _money(x: float) -> str:
    return f"{x:.2f}"


def build_world(cfg: WorldConfig) -> World:
    """Deterministic under `cfg` (seed included)."""
    rng = np.random.default_rng(cfg.seed)
    top_categories = [t for t, _ in TAXONOMY]
    categories: list[tuple[str, str]] = []
    leaf_top_l: list[int] = []
    leaf_base_price: list[float] = []
    for ti, (top, leaves) in enumerate(TAXONOMY):
        for leaf, base in leaves:
            categories.append((top, leaf))
            leaf_top_l.append(ti)
            leaf_base_price.append(base)
    leaf_top = np.array(leaf_top_l)
    n_leaves, n_top = len(categories), len(top_categories)

    # brands: each lives in one top category
    brands = _brand_names(cfg.n_brands, rng)
    brand_top = np.arange(cfg.n_brands) % n_top
    brand_prestige = rng.normal(0, 0.25, cfg.n_brands)

    # products
    leaf_pop = rng.zipf(1.6, n_leaves).astype(np.float64)
    leaf_p = np.minimum(leaf_pop, 20.0)
    leaf_p /= leaf_p.sum()
    product_leaf = np.sort(rng.choice(n_leaves, cfg.n_products, p=leaf_p))
    product_leaf[: min(n_leaves, cfg.n_products)] = np.arange(min(n_leaves, cfg.n_products))  # every leaf stocked
    product_leaf = np.sort(product_leaf)
    product_brand = np.empty(cfg.n_products, dtype=np.int64)
    brands_by_top = [np.flatnonzero(brand_top == t) for t in range(n_top)]
    brand_pick = rng.random(cfg.n_products)
    for i in range(cfg.n_products):
        cand = brands_by_top[leaf_top[product_leaf[i]]]
        product_brand[i] = cand[int(brand_pick[i] * len(cand))]
    base_price = np.array(leaf_base_price)[product_leaf]
    product_price = np.round(
        base_price * np.exp(rng.normal(0, 0.45, cfg.n_products) + brand_prestige[product_brand]), 2
    )
    product_price = np.maximum(product_price, 1.0) - 0.01
    leaf_median = np.array(
        [
            float(np.median(product_price[product_leaf == lf])) if np.any(product_leaf == lf) else 1.0
            for lf in range(n_leaves)
        ]
    )
    product_price_rel = np.log(product_price / leaf_median[product_leaf])
    product_quality = rng.normal(0, 0.5, cfg.n_products)
    product_popularity = rng.lognormal(0, 1.0, cfg.n_products)
    adj = rng.integers(0, len(ADJECTIVES), cfg.n_products)
    model_no = rng.integers(1, 99, cfg.n_products) * 10
    products: list[Product] = []
    for i in range(cfg.n_products):
        top, leaf = categories[product_leaf[i]]
        pid = f"P{i:05d}"
        model = f"{chr(65 + i % 26)}{model_no[i]}"
        products.append(
            Product(
                product_id=pid,
                title=f"{brands[product_brand[i]]} {ADJECTIVES[adj[i]]} {leaf.rstrip('s')} {model}",
                category_path=(top, leaf),
                brand=brands[product_brand[i]],
                price=_money(float(product_price[i])),
                currency=CURRENCY,
                url=f"{SHOP_URL}/p/{pid}",
                image_url=f"{SHOP_URL}/img/{pid}.jpg",
                in_stock=bool(rng.random() > 0.03),
            )
        )

    # advertisers own brands (round robin), campaigns per advertiser
    n_adv = max(1, min(cfg.n_advertisers, cfg.n_brands))
    brand_owner = np.arange(cfg.n_brands) % n_adv
    advertisers = [
        Advertiser(
            key=f"A{a:04d}",
            name=f"{brands[a]} Group" if a < len(brands) else f"Advertiser {a}",
            brands=tuple(brands[b] for b in np.flatnonzero(brand_owner == a)),
        )
        for a in range(n_adv)
    ]
    campaigns: list[Campaign] = []
    adv_campaigns: list[list[int]] = []
    bid_models = rng.choice(3, n_adv * cfg.campaigns_per_advertiser, p=[0.7, 0.2, 0.1])
    for a in range(n_adv):
        own: list[int] = []
        for k in range(cfg.campaigns_per_advertiser):
            idx = len(campaigns)
            bm = ("cpc", "cpm", "cpa")[bid_models[idx]]
            bid = {"cpc": rng.uniform(0.2, 1.5), "cpm": rng.uniform(2, 10), "cpa": rng.uniform(5, 30)}[bm]
            objective = {"cpc": "clicks", "cpm": "reach", "cpa": "conversions"}[bm]
            daily = float(rng.choice([50, 100, 200, 500]))
            tops = sorted({top_categories[brand_top[b]] for b in np.flatnonzero(brand_owner == a)})
            campaigns.append(
                Campaign(
                    key=f"K{idx:05d}",
                    advertiser=advertisers[a].key,
                    name=f"{advertisers[a].name} — {('Always on', 'Seasonal', 'Launch', 'Clearance')[k % 4]}",
                    objective=objective,
                    bid_model=bm,
                    bid=_money(bid),
                    daily_budget=_money(daily),
                    total_budget=_money(daily * 60),
                    targeting={"categories": tops} if k % 2 == 1 else {},
                )
            )
            own.append(idx)
        adv_campaigns.append(own)

    # creatives: each promotes one product of its advertiser
    creative_product = rng.choice(cfg.n_products, cfg.n_creatives, replace=cfg.n_creatives > cfg.n_products)
    creative_campaign = np.empty(cfg.n_creatives, dtype=np.int64)
    creatives: list[Creative] = []
    appeal = rng.normal(0, 0.35, cfg.n_creatives)
    hl = rng.integers(0, 4, cfg.n_creatives)
    for ci in range(cfg.n_creatives):
        p = int(creative_product[ci])
        prod = products[p]
        own = adv_campaigns[int(brand_owner[product_brand[p]])]
        camp = own[ci % len(own)]
        creative_campaign[ci] = camp
        headline = (
            f"{prod.title}",
            f"New from {prod.brand}: {prod.category_path[1]}",
            f"{prod.brand} {prod.category_path[1]} from ${prod.price}",
            f"Top rated {prod.category_path[1].lower()}",
        )[hl[ci]]
        creatives.append(
            Creative(
                key=f"C{ci:05d}",
                campaign=campaigns[camp].key,
                product_id=prod.product_id,
                headline=headline[:90],
                body=f"{prod.title}. Free shipping on {prod.category_path[0].lower()}.",
                image_url=prod.image_url,
                landing_url=prod.url,
                variants=(
                    {"headline": "{brand} {category} for you", "body": "Now {price}"},
                    {"headline": "{product}", "body": "Shop {category} by {brand}"},
                ),
            )
        )

    # shoppers
    g = cfg.n_taste_groups
    group_top = rng.normal(0, 1.0, (g, n_top))
    for gi in range(g):
        favs = rng.choice(n_top, 2, replace=False)
        group_top[gi, favs] += 2.2
    group_leaf = rng.normal(0, 0.5, (g, n_leaves))
    group_brand_aff = rng.normal(0, 0.8, (g, cfg.n_brands))
    user_group = rng.integers(0, g, cfg.n_users)
    user_top = group_top[user_group] + rng.normal(0, 0.5, (cfg.n_users, n_top))
    user_leaf_aff = (
        user_top[:, leaf_top] + group_leaf[user_group] + rng.normal(0, 0.3, (cfg.n_users, n_leaves))
    ).astype(np.float64)
    user_drift = rng.normal(0, cfg.drift_scale, (cfg.n_users, n_top))
    user_device = rng.choice(3, cfg.n_users, p=DEVICE_WEIGHTS)
    user_geo = rng.choice(len(GEOS), cfg.n_users, p=GEO_WEIGHTS)
    user_activity = cfg.activity_mean * rng.lognormal(-0.5, 1.0, cfg.n_users)
    user_price_sens = rng.lognormal(0, 0.5, cfg.n_users)
    shoppers = [
        Shopper(
            user_id=f"U{u:06d}",
            taste_group=int(user_group[u]),
            device=DEVICES[user_device[u]],
            geo=GEOS[user_geo[u]],
            activity=round(float(user_activity[u]), 4),
            price_sensitivity=round(float(user_price_sens[u]), 4),
        )
        for u in range(cfg.n_users)
    ]
    return World(
        cfg=cfg,
        categories=categories,
        leaf_top=leaf_top,
        top_categories=top_categories,
        brands=brands,
        products=products,
        product_leaf=product_leaf,
        product_brand=product_brand,
        product_price=product_price,
        product_price_rel=product_price_rel,
        product_quality=product_quality,
        product_popularity=product_popularity,
        advertisers=advertisers,
        campaigns=campaigns,
        creatives=creatives,
        creative_product=creative_product,
        creative_campaign=creative_campaign,
        creative_appeal=appeal,
        shoppers=shoppers,
        user_group=user_group,
        user_device=user_device,
        user_activity=user_activity,
        user_price_sens=user_price_sens,
        user_leaf_aff=user_leaf_aff,
        user_drift=user_drift,
        group_brand_aff=group_brand_aff,
    )


# ---------------------------------------------------------------------------------------
# history


@dataclass(frozen=True)
class Exposure:
    """One ad shown in generated history (ground truth attached)."""

    exposure_key: str
    user_idx: int
    creative_idx: int
    at: datetime
    placement: str
    position: int
    page_type: str
    context_leaf: int
    clicked_at: datetime | None
    converted_at: datetime | None
    revenue: str | None
    order_id: str | None
    p_click: float
    p_purchase: float

    @property
    def clicked(self) -> bool:
        return self.clicked_at is not None


@dataclass(frozen=True)
class HistoryDay:
    day: int
    events: list[dict[str, Any]]  # SPEC §4 wire events, time-ordered
    exposures: list[Exposure]  # time-ordered


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")


class _DayBuilder:
    def __init__(self, world: World, day: int) -> None:
        self.w = world
        self.day = day
        self.rng = random.Random(f"{world.cfg.seed}/{day}")
        self.events: list[tuple[datetime, int, dict[str, Any]]] = []
        self.slots: list[tuple[int, int, datetime, str, int, int, int]] = []  # pending exposures
        self.counter = 0

    def emit(self, at: datetime, type_: str, user: int, session: str, props: dict[str, Any]) -> None:
        self.counter += 1
        eid = uuid.uuid5(_NS, f"{self.w.cfg.seed}/{self.day}/{self.counter}")
        self.events.append(
            (
                at,
                self.counter,
                {
                    "event_id": str(eid),
                    "type": type_,
                    "user_id": self.w.shoppers[user].user_id,
                    "session_id": session,
                    "timestamp": _ts(at),
                    "properties": props,
                },
            )
        )

    def show_ads(self, user: int, at: datetime, page_type: str, context_leaf: int) -> None:
        key = PLACEMENT_BY_PAGE[page_type]
        slots = PLACEMENTS[key][1]
        n_cr = len(self.w.creatives)
        pool = self.w.creatives_by_leaf()[context_leaf] if context_leaf >= 0 else []
        chosen: list[int] = []
        for _ in range(slots * 3):
            if len(chosen) == slots:
                break
            # logging policy: half contextual (same leaf), half uniformly random
            if pool and self.rng.random() < 0.5:
                c = pool[int(self.rng.random() * len(pool))]
            else:
                c = int(self.rng.random() * n_cr)
            if c not in chosen:
                chosen.append(c)
        pt = PAGE_TYPES.index(page_type)
        for pos, c in enumerate(chosen, start=1):
            self.slots.append((user, c, at, key, pos, pt, context_leaf))

    def session(
        self, user: int, j: int, leaf_cdf: list[float], product_cdfs: dict[int, tuple[list[float], list[int]]]
    ) -> None:
        w, rng = self.w, self.rng
        hour = min(23, max(0, int(rng.gauss(15, 4.5))))
        at = w.cfg.start + timedelta(days=self.day, hours=hour, seconds=int(rng.random() * 3600))
        sid = f"s-{w.shoppers[user].user_id}-{self.day}-{j}"
        step = lambda: timedelta(seconds=5 + int(rng.random() * 110))  # noqa: E731
        if rng.random() < SESSION_P_HOME:
            self.emit(at, "page_view", user, sid, {"url": f"{SHOP_URL}/"})
            self.show_ads(user, at, "home", -1)
            at += step()
        leaf = bisect.bisect_left(leaf_cdf, rng.random() * leaf_cdf[-1])
        leaf = min(leaf, len(leaf_cdf) - 1)
        top, name = w.categories[leaf]
        if rng.random() < SESSION_P_SEARCH:
            query = (
                name.lower()
                if rng.random() < SEARCH_P_PLAIN_QUERY
                else f"{w.brands[int(rng.random() * len(w.brands))].lower()} {name.lower()}"
            )
            self.emit(at, "search", user, sid, {"query": query})
            self.show_ads(user, at, "search", leaf)
        else:
            self.emit(at, "page_view", user, sid, {"url": f"{SHOP_URL}/c/{_slug(top)}/{_slug(name)}"})
            self.show_ads(user, at, "category", leaf)
        at += step()
        cdf, members = product_cdfs[leaf]
        viewed: list[int] = []
        for _ in range(1 + int(rng.random() * MAX_PRODUCT_VIEWS)):
            k = min(bisect.bisect_left(cdf, rng.random() * cdf[-1]), len(members) - 1)
            p = members[k]
            viewed.append(p)
            self.emit(at, "product_view", user, sid, {"product_id": w.products[p].product_id})
            self.show_ads(user, at, "product", leaf)
            at += step()
        # organic cart and purchase
        p = viewed[-1]
        if rng.random() < p_add_to_cart(w, user, leaf, p, self.day):
            prod = w.products[p]
            self.emit(at, "add_to_cart", user, sid, {"product_id": prod.product_id, "quantity": 1, "price": prod.price})
            self.show_ads(user, at, "cart", leaf)
            at += step()
            if rng.random() < P_PURCHASE_AFTER_CART:
                self.emit(
                    at,
                    "purchase",
                    user,
                    sid,
                    {
                        "order_id": f"O-{w.cfg.seed}-{self.day}-{self.counter}",
                        "items": [{"product_id": prod.product_id, "quantity": 1, "price": prod.price}],
                        "revenue": prod.price,
                        "currency": CURRENCY,
                    },
                )

    def resolve_ads(self) -> list[Exposure]:
        w = self.w
        if not self.slots:
            return []
        arr = np.array([(u, c, p, pt, ctx) for (u, c, _at, _k, p, pt, ctx) in self.slots], dtype=np.int64)
        pc = w.p_click(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], self.day, arr[:, 4])
        pb = w.p_purchase_given_click(arr[:, 0], arr[:, 1], self.day)
        nprng = np.random.default_rng([w.cfg.seed, self.day, 1])
        u1 = nprng.random(len(arr))
        u2 = nprng.random(len(arr))
        delay = nprng.integers(2, 60, len(arr))
        buy_delay = nprng.integers(60, 1800, len(arr))
        out: list[Exposure] = []
        for i, (u, c, at, key, pos, pt, ctx) in enumerate(self.slots):
            clicked_at = converted_at = None
            revenue = order_id = None
            if u1[i] < pc[i]:
                clicked_at = at + timedelta(seconds=int(delay[i]))
                prod = w.products[int(w.creative_product[c])]
                sid = f"s-{w.shoppers[u].user_id}-{self.day}-ad{i}"
                self.emit(clicked_at, "product_view", u, sid, {"product_id": prod.product_id, "via": "ad"})
                if u2[i] < pb[i]:
                    converted_at = clicked_at + timedelta(seconds=int(buy_delay[i]))
                    order_id = f"O-{w.cfg.seed}-{self.day}-ad{i}"
                    revenue = prod.price
                    item = {"product_id": prod.product_id, "quantity": 1, "price": prod.price}
                    self.emit(converted_at - timedelta(seconds=30), "add_to_cart", u, sid, dict(item))
                    self.emit(
                        converted_at,
                        "purchase",
                        u,
                        sid,
                        {"order_id": order_id, "items": [item], "revenue": prod.price, "currency": CURRENCY},
                    )
            out.append(
                Exposure(
                    exposure_key=f"gen:{w.cfg.seed}:{self.day}:{i}",
                    user_idx=u,
                    creative_idx=c,
                    at=at,
                    placement=key,
                    position=pos,
                    page_type=PAGE_TYPES[pt],
                    context_leaf=ctx,
                    clicked_at=clicked_at,
                    converted_at=converted_at,
                    revenue=revenue,
                    order_id=order_id,
                    p_click=round(float(pc[i]), 6),
                    p_purchase=round(float(pb[i]), 6),
                )
            )
        out.sort(key=lambda x: (x.at, x.exposure_key))
        return out


def _product_cdfs(world: World, group: int) -> dict[int, tuple[list[float], list[int]]]:
    out: dict[int, tuple[list[float], list[int]]] = {}
    weight = world.product_popularity * np.exp(world.group_brand_aff[group, world.product_brand])
    for leaf in range(len(world.categories)):
        members = np.flatnonzero(world.product_leaf == leaf)
        if len(members) == 0:
            members = np.array([0])
        out[leaf] = (np.cumsum(weight[members]).tolist(), members.tolist())
    return out


def generate_history(
    world: World,
    *,
    days: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[HistoryDay]:
    """Simulate `days` (default cfg.days) of shopping under a random/contextual logging
    policy. Yields one HistoryDay per day; `progress(n_sessions)` is called as it goes."""
    n_days = world.cfg.days if days is None else days
    group_cdfs = [_product_cdfs(world, gi) for gi in range(world.cfg.n_taste_groups)]
    for day in range(n_days):
        b = _DayBuilder(world, day)
        nprng = np.random.default_rng([world.cfg.seed, day, 0])
        sessions = nprng.poisson(world.user_activity)
        users = np.flatnonzero(sessions)
        aff = world.leaf_affinity(users[:, None], np.arange(len(world.categories))[None, :], day)
        leaf_w = np.exp(aff - aff.max(axis=1, keepdims=True))
        leaf_cdf = np.cumsum(leaf_w, axis=1)
        done = 0
        for row, u in enumerate(users.tolist()):
            cdf = leaf_cdf[row].tolist()
            for j in range(int(sessions[u])):
                b.session(u, j, cdf, group_cdfs[int(world.user_group[u])])
            done += int(sessions[u])
            if progress is not None and done >= 2000:
                progress(done)
                done = 0
        exposures = b.resolve_ads()
        if progress is not None and done:
            progress(done)
        b.events.sort(key=lambda e: (e[0], e[1]))
        yield HistoryDay(day=day, events=[e for _t, _n, e in b.events], exposures=exposures)


def expected_sessions(world: World, days: int | None = None) -> int:
    return int(round(float(world.user_activity.sum()) * (world.cfg.days if days is None else days)))
