"""Training examples from the event log, point in time (pure: no Django, no torch).

One pass over the log's events sorted by the time they happened: behaviour events fold a
per-shopper state (the same decayed interests, mean price, recent products and devices the
profile projection keeps), catalog upserts fold product facts, and each AdImpressed becomes
an example whose features are
  * the ones logged in its AdDecisionMade when the decision exists (what serving saw), or
  * rebuilt by `features.request_features` from the state *at the impression time* (history
    imported without decisions): nothing that happened later can reach it.
Labels: an AdClicked of the same request and creative within the click window, and a
ConversionAttributed of the same request and creative. Impressions whose click window is
still open at the end of the log are left out (their label is not known yet).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from .events import cell, column_cells
from .features import SEQ_LEN, request_features
from .selectors import CandidateItem, ScoringRequest

BEHAVIOUR_TYPES = frozenset(
    {"PageViewed", "ProductViewed", "SearchPerformed", "CartItemAdded", "CartItemRemoved", "OrderPlaced"}
)
AD_TYPES = frozenset({"AdDecisionMade", "AdImpressed", "AdClicked", "ConversionAttributed"})
CATALOG_TYPES = frozenset({"ProductUpserted"})
DATASET_EVENT_TYPES = BEHAVIOUR_TYPES | AD_TYPES | CATALOG_TYPES
# interest weight per interaction, as in the profile fold (profiles.folding.WEIGHTS)
WEIGHTS = {"ProductViewed": 1.0, "CartItemAdded": 3.0, "OrderPlaced": 5.0}
_NO_DECISION: tuple[dict[str, Any], dict[str, Any], dict[int, int]] = ({}, {}, {})
# at equal timestamps: facts first, then the decision, its impression, click, conversion
_ORDER = {"ProductUpserted": 0, "AdDecisionMade": 2, "AdImpressed": 3, "AdClicked": 4, "ConversionAttributed": 5}


@dataclass(frozen=True)
class LogEvent:
    """The part of a stored event the dataset needs (eventlog StoredEvent fits)."""

    type: str
    occurred_at: datetime
    user_key: str | None
    data: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    position: int = 0


@dataclass(frozen=True)
class Facts:
    category_path: tuple[str, ...]
    brand: str
    price: float


@dataclass(frozen=True)
class ProfileView:
    """Duck-types the fields of profiles.selectors.ProfileSnapshot the features read."""

    user_id: str
    consent: bool
    categories: dict[str, float]
    brands: dict[str, float]
    recent_products: tuple[str, ...]
    devices: dict[str, int]
    frequency: int
    recency_days: float | None
    mean_price: float | None


class ShopperState:
    """Incremental fold of one shopper's behaviour (events arrive in time order)."""

    __slots__ = ("consent", "ref", "last", "frequency", "cats", "brands", "price_sum", "price_w", "recent", "devices")

    def __init__(self) -> None:
        self.consent = True
        self.ref: float | None = None
        self.last: float | None = None
        self.frequency = 0
        self.cats: dict[str, float] = {}
        self.brands: dict[str, float] = {}
        self.price_sum = 0.0
        self.price_w = 0.0
        self.recent: list[str] = []  # newest first, unique
        self.devices: dict[str, int] = {}

    def apply(self, ev: LogEvent, products: Mapping[str, Facts], lam: float) -> None:
        allowed = ev.meta.get("consent") is not False
        self.consent = allowed
        if not allowed:
            return
        t = ev.occurred_at.timestamp()
        if self.ref is not None and t > self.ref:
            f = math.exp(-lam * (t - self.ref))
            for d in (self.cats, self.brands):
                for k in d:
                    d[k] *= f
            self.price_sum *= f
            self.price_w *= f
        if self.ref is None or t > self.ref:
            self.ref = t
        self.last = t
        self.frequency += 1
        data = ev.data
        device = data.get("device")
        if isinstance(device, str) and device.strip():
            key = device.strip().lower()[:32]
            self.devices[key] = self.devices.get(key, 0) + 1
        lines: list[tuple[str, float | None]] = []
        if ev.type in ("ProductViewed", "CartItemAdded"):
            price = data.get("price")
            lines.append((str(data.get("product_id")), _float(price)))
        elif ev.type == "OrderPlaced":
            for item in data.get("items") or ():
                lines.append((str(item.get("product_id")), _float(item.get("price"))))
        w = WEIGHTS.get(ev.type, 0.0) * math.exp(-lam * (self.ref - t))
        for pid, price in lines:
            if pid in self.recent:
                self.recent.remove(pid)
            self.recent.insert(0, pid)
            del self.recent[SEQ_LEN:]
            facts = products.get(pid)
            if facts is not None:
                for c in dict.fromkeys(facts.category_path):
                    self.cats[c] = self.cats.get(c, 0.0) + w
                if facts.brand:
                    self.brands[facts.brand] = self.brands.get(facts.brand, 0.0) + w
            p = price if price is not None else (facts.price if facts is not None else None)
            if p is not None and p > 0:
                self.price_sum += w * p
                self.price_w += w

    def view(self, user_id: str, at: float, lam: float) -> ProfileView:
        if not self.consent:
            return ProfileView(user_id, False, {}, {}, (), {}, 0, None, None)
        f = math.exp(-lam * max(0.0, at - self.ref)) if self.ref is not None else 1.0
        return ProfileView(
            user_id=user_id,
            consent=True,
            categories={k: v * f for k, v in self.cats.items()},
            brands={k: v * f for k, v in self.brands.items()},
            recent_products=tuple(self.recent),
            devices=dict(sorted(self.devices.items(), key=lambda kv: (-kv[1], kv[0]))),
            frequency=self.frequency,
            recency_days=(at - self.last) / 86400.0 if self.last is not None else None,
            mean_price=self.price_sum / self.price_w if self.price_w > 0 else None,
        )


def _facts_of(d: Mapping[str, Any]) -> Facts:
    return Facts(tuple(d.get("category_path") or ()), str(d.get("brand") or ""), _float(d.get("price")) or 0.0)


def _float(v: Any) -> float | None:
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


@dataclass
class Examples:
    """Rows in impression-time order."""

    features: list[dict[str, Any]]
    click: np.ndarray  # float32 0/1
    conversion: np.ndarray  # float32 0/1
    at: np.ndarray  # float64 epoch seconds of the impression
    user: list[str]
    creative: np.ndarray  # int64
    logged: np.ndarray  # bool: features came from the decision log
    request_id: list[str] = field(default_factory=list)
    last_position: int = 0  # newest log position read

    def __len__(self) -> int:
        return len(self.features)

    def subset(self, idx: np.ndarray) -> Examples:
        return Examples(
            features=[self.features[i] for i in idx],
            click=self.click[idx],
            conversion=self.conversion[idx],
            at=self.at[idx],
            user=[self.user[i] for i in idx],
            creative=self.creative[idx],
            logged=self.logged[idx],
            request_id=[self.request_id[i] for i in idx],
            last_position=self.last_position,
        )


def _sort_key(ev: LogEvent) -> tuple[datetime, int, int]:
    return (ev.occurred_at, _ORDER.get(ev.type, 1), ev.position)


def build_examples(
    events: Iterable[LogEvent],
    *,
    creatives: Mapping[int, CandidateItem],
    products: Mapping[str, Facts] | None = None,
    lam: float,
    click_window_seconds: float,
    since: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Examples:
    """Examples for every matured AdImpressed (at ≥ `since` when given). `creatives` maps a
    creative id to its candidate item (product facts filled in where known); `products` are
    facts known before the log starts (the log's ProductUpserted events update them)."""
    evs = sorted(events, key=_sort_key)
    facts: dict[str, Facts] = dict(products or {})
    # Before a product's first upsert its first known facts stand in (the catalog is often
    # loaded after the history it describes); later upserts apply from their own time on.
    for ev in evs:
        if ev.type == "ProductUpserted" and ev.data.get("product_id"):
            facts.setdefault(str(ev.data["product_id"]), _facts_of(ev.data))
    states: dict[str, ShopperState] = {}
    # request id → (the decision's shared features, its candidates' feature columns,
    # {creative id: column index}); AdDecisionMade v3 (ranking/events.py)
    decisions: dict[str, tuple[dict[str, Any], dict[str, Any], dict[int, int]]] = {}
    example_of: dict[tuple[str, int], int] = {}
    rows: list[dict[str, Any]] = []
    at_l: list[float] = []
    user_l: list[str] = []
    creative_l: list[int] = []
    logged_l: list[bool] = []
    rid_l: list[str] = []
    clicks: list[float] = []
    convs: list[float] = []
    last_position = 0
    t_end = evs[-1].occurred_at.timestamp() if evs else 0.0
    since_ts = since.timestamp() if since is not None else None
    view_cache: tuple[str, float, tuple[int, bool], ProfileView] | None = None
    total = len(evs)
    for n, ev in enumerate(evs):
        last_position = max(last_position, ev.position)
        if progress is not None and n % 50_000 == 0:
            progress(n, total)
        typ = ev.type
        if typ in BEHAVIOUR_TYPES:
            if ev.user_key:
                states.setdefault(ev.user_key, ShopperState()).apply(ev, facts, lam)
        elif typ == "ProductUpserted":
            if ev.data.get("product_id"):
                facts[str(ev.data["product_id"])] = _facts_of(ev.data)
        elif typ == "AdDecisionMade":
            cols = ev.data.get("candidates") or {}
            decisions[str(ev.data.get("request_id"))] = (
                ev.data.get("features_shared") or {},
                {name: column_cells(col) for name, col in (cols.get("features") or {}).items()},
                {int(cid): j for j, cid in enumerate(cols.get("creative_id") or ())},
            )
        elif typ == "AdImpressed":
            d = ev.data
            t = ev.occurred_at.timestamp()
            if t > t_end - click_window_seconds or (since_ts is not None and t < since_ts):
                continue
            request_id = str(d.get("request_id"))
            creative_id = int(d["creative_id"])
            if (request_id, creative_id) in example_of:
                continue
            user = ev.user_key or ""
            shared, columns, index = decisions.get(request_id, _NO_DECISION)
            j = index.get(creative_id)
            logged = {k: v for k, col in columns.items() if (v := cell(col, j)) is not None} if j is not None else None
            if logged:
                row = {**shared, **logged}
                row["position"] = str(int(d.get("position") or 1))
            else:
                state = states.get(user)
                version = (state.frequency, state.consent) if state is not None else (-1, True)
                if view_cache is not None and view_cache[:3] == (user, t, version):
                    profile = view_cache[3]
                elif state is not None:
                    profile = state.view(user, t, lam)
                    view_cache = (user, t, version, profile)
                else:
                    profile = None
                item = creatives.get(creative_id) or CandidateItem(
                    creative_id=creative_id,
                    campaign_id=int(d.get("campaign_id") or 0),
                    advertiser_id=int(d.get("advertiser_id") or 0),
                )
                if item.product_id and not item.category_path and item.product_id in facts:
                    f = facts[item.product_id]
                    item = CandidateItem(
                        item.creative_id,
                        item.campaign_id,
                        item.advertiser_id,
                        item.product_id,
                        f.category_path,
                        f.brand,
                        f.price,
                        item.text,
                    )
                ctx = dict(d.get("context") or {})
                ctx.setdefault("page_type", d.get("page_type"))
                ctx["placement"] = d.get("placement")
                ctx["position"] = d.get("position") or 1
                ctx["hour"] = ev.occurred_at.hour
                if not ctx.get("category_id") and ctx.get("product_id") in facts:
                    path = facts[ctx["product_id"]].category_path
                    ctx["category_id"] = path[-1] if path else None
                request = ScoringRequest(user_id=user, profile=profile, context=ctx, candidates=[item])
                row = request_features(request, products=facts)[0]
            example_of[(request_id, creative_id)] = len(rows)
            rows.append(row)
            at_l.append(t)
            user_l.append(user)
            creative_l.append(creative_id)
            logged_l.append(bool(logged))
            rid_l.append(request_id)
            clicks.append(0.0)
            convs.append(0.0)
        elif typ == "AdClicked":
            key = (str(ev.data.get("request_id")), int(ev.data["creative_id"]))
            i = example_of.get(key)
            if i is not None and ev.occurred_at.timestamp() - at_l[i] <= click_window_seconds:
                clicks[i] = 1.0
        elif typ == "ConversionAttributed":
            key = (str(ev.data.get("request_id")), int(ev.data["creative_id"]))
            i = example_of.get(key)
            if i is not None and clicks[i] > 0:
                convs[i] = 1.0
    return Examples(
        features=rows,
        click=np.asarray(clicks, dtype=np.float32),
        conversion=np.asarray(convs, dtype=np.float32),
        at=np.asarray(at_l, dtype=np.float64),
        user=user_l,
        creative=np.asarray(creative_l, dtype=np.int64),
        logged=np.asarray(logged_l, dtype=bool),
        request_id=rid_l,
        last_position=last_position,
    )


@dataclass(frozen=True)
class Split:
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    validation_from: float  # epoch seconds: first impression time of validation
    test_from: float
    test_to: float


def time_split(at: np.ndarray, *, validation: float = 0.15, test: float = 0.15) -> Split:
    """Split by impression time: the oldest share trains, then validation, the newest is the
    test holdout. Cuts fall on time boundaries (no timestamp is in two parts)."""
    n = len(at)
    order = np.argsort(at, kind="mergesort")
    s = at[order]

    def cut(frac: float) -> float:
        k = min(max(int(n * frac), 0), n - 1) if n else 0
        return float(s[k]) if n else 0.0

    v_from = cut(1.0 - validation - test)
    t_from = cut(1.0 - test)
    train = np.flatnonzero(at < v_from)
    val = np.flatnonzero((at >= v_from) & (at < t_from))
    tst = np.flatnonzero(at >= t_from)
    return Split(train, val, tst, v_from, t_from, float(s[-1]) if n else 0.0)
